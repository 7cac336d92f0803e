//! Swarm mode: services, their running tasks and networks turned into [`Workload`]s.
//!
//! - Labels are the service spec's labels (`deploy.labels`); container labels do not count.
//! - A task receives traffic when its desired state and its status are both
//!   `running`. Swarm keeps a task whose container has a health check in `starting`
//!   until the first check passes, and shuts down a task whose container turns
//!   unhealthy, so the task state is how the API exposes container health here:
//!   `new`, `pending`, `preparing`, `starting`, `shutdown`... get no traffic.
//! - A task's address on each network comes from its `NetworksAttachments`
//!   (`10.0.1.5/24` → `10.0.1.5`). bollard's `Task` model lacks that field, so tasks
//!   are read with [`SwarmTask`], which adds it to the model.
//! - Network IDs are resolved to names with the network list; the attachment's own
//!   copy of the network spec is the fallback. The ingress network is left out: a
//!   proxy cannot route through it, and keeping it would make every service with a
//!   published port look attached to two networks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use bollard::models::{
    Network, Service, ServiceUpdateStatusStateEnum as UpdateState, Task, TaskState,
};
use serde::Deserialize;

use crate::provider::labels::{Endpoint, Workload};

/// A task as the `/tasks` endpoint returns it: bollard's model plus its
/// `NetworksAttachments`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SwarmTask {
    /// Everything bollard models.
    #[serde(flatten)]
    pub task: Task,
    /// The task's address on each network.
    #[serde(rename = "NetworksAttachments", default)]
    pub networks_attachments: Option<Vec<NetworkAttachment>>,
}

/// One entry of a task's `NetworksAttachments`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetworkAttachment {
    /// The network.
    #[serde(rename = "Network", default)]
    pub network: Option<AttachedNetwork>,
    /// Addresses in CIDR notation (`10.0.1.5/24`).
    #[serde(rename = "Addresses", default)]
    pub addresses: Option<Vec<String>>,
}

/// The network of a [`NetworkAttachment`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AttachedNetwork {
    /// Network ID.
    #[serde(rename = "ID", default)]
    pub id: Option<String>,
    /// Its spec, as copied into the task.
    #[serde(rename = "Spec", default)]
    pub spec: Option<AttachedNetworkSpec>,
}

/// The part of a network spec that wharf reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AttachedNetworkSpec {
    /// Network name.
    #[serde(rename = "Name", default)]
    pub name: Option<String>,
    /// Whether this is the routing-mesh network.
    #[serde(rename = "Ingress", default)]
    pub ingress: Option<bool>,
}

/// Everything one swarm listing returns.
#[derive(Debug, Clone, Default)]
pub struct SwarmState {
    /// All services.
    pub services: Vec<Service>,
    /// Tasks (the listing asks for desired state `running`).
    pub tasks: Vec<SwarmTask>,
    /// All networks.
    pub networks: Vec<Network>,
}

/// Network names by ID, and the IDs of ingress networks.
#[derive(Debug, Default)]
struct Networks {
    names: HashMap<String, String>,
    ingress: HashSet<String>,
}

impl Networks {
    fn new(networks: &[Network]) -> Self {
        let mut out = Self::default();
        for n in networks {
            let (Some(id), Some(name)) = (&n.id, &n.name) else {
                continue;
            };
            if n.ingress == Some(true) {
                out.ingress.insert(id.clone());
            }
            out.names.insert(id.clone(), name.clone());
        }
        out
    }

    /// The name of a network given by ID (or already by name); `None` for ingress.
    fn name(&self, id_or_name: &str, fallback: Option<&AttachedNetworkSpec>) -> Option<String> {
        if self.ingress.contains(id_or_name) || fallback.and_then(|s| s.ingress) == Some(true) {
            return None;
        }
        self.names
            .get(id_or_name)
            .cloned()
            .or_else(|| fallback.and_then(|s| s.name.clone()))
            .or_else(|| {
                self.names
                    .values()
                    .any(|n| n == id_or_name)
                    .then(|| id_or_name.to_string())
            })
    }
}

impl SwarmState {
    /// One workload per service, with the endpoints of its serving tasks.
    pub fn workloads(&self) -> Vec<Workload> {
        let networks = Networks::new(&self.networks);
        let mut tasks: HashMap<&str, Vec<&SwarmTask>> = HashMap::new();
        for t in &self.tasks {
            if let Some(sid) = t.task.service_id.as_deref() {
                tasks.entry(sid).or_default().push(t);
            }
        }
        self.services
            .iter()
            .filter_map(|s| {
                let id = s.id.as_deref()?;
                Some(workload(
                    s,
                    tasks.get(id).map(Vec::as_slice).unwrap_or(&[]),
                    &networks,
                ))
            })
            .flatten()
            .collect()
    }

    /// Names of the services that have not reached their desired state yet.
    pub fn converging(&self) -> Vec<String> {
        let mut tasks: HashMap<&str, Vec<&SwarmTask>> = HashMap::new();
        for t in &self.tasks {
            if let Some(sid) = t.task.service_id.as_deref() {
                tasks.entry(sid).or_default().push(t);
            }
        }
        self.services
            .iter()
            .filter(|s| {
                let own =
                    s.id.as_deref()
                        .and_then(|id| tasks.get(id))
                        .map(Vec::as_slice)
                        .unwrap_or(&[]);
                converging(s, own)
            })
            .map(|s| service_name(s).unwrap_or("?").to_string())
            .collect()
    }
}

fn service_name(s: &Service) -> Option<&str> {
    s.spec.as_ref()?.name.as_deref()
}

/// The workload of one service; `None` without a name.
fn workload(service: &Service, tasks: &[&SwarmTask], networks: &Networks) -> Option<Workload> {
    let spec = service.spec.as_ref()?;
    let name = spec.name.clone()?;
    let labels = spec
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let attached = spec
        .task_template
        .as_ref()
        .and_then(|t| t.networks.as_ref())
        .or(spec.networks.as_ref());
    let mut net_names: Vec<String> = attached
        .iter()
        .flat_map(|v| v.iter())
        .filter_map(|n| networks.name(n.target.as_deref()?, None))
        .collect();
    let mut vips = BTreeMap::new();
    for vip in service
        .endpoint
        .as_ref()
        .and_then(|e| e.virtual_ips.as_ref())
        .into_iter()
        .flatten()
    {
        let (Some(id), Some(addr)) = (&vip.network_id, &vip.addr) else {
            continue;
        };
        if let (Some(name), Some(ip)) = (networks.name(id, None), strip_prefix(addr)) {
            vips.insert(name, ip);
        }
    }
    let mut endpoints: Vec<Endpoint> = tasks
        .iter()
        .filter(|t| serving(&t.task))
        .filter_map(|t| task_endpoint(t, networks))
        .collect();
    endpoints.sort_by(|a, b| a.id.cmp(&b.id));
    for e in &endpoints {
        for n in e.addresses.keys() {
            if !net_names.contains(n) {
                net_names.push(n.clone());
            }
        }
    }
    net_names.sort();
    net_names.dedup();
    Some(Workload {
        name,
        labels,
        networks: net_names,
        endpoints,
        vips,
        exposed_ports: Vec::new(),
    })
}

/// Whether a task may receive traffic: desired and actual state both `running`.
pub fn serving(task: &Task) -> bool {
    let state = task.status.as_ref().and_then(|s| s.state);
    task.desired_state == Some(TaskState::RUNNING) && state == Some(TaskState::RUNNING)
}

fn task_endpoint(t: &SwarmTask, networks: &Networks) -> Option<Endpoint> {
    let id = t.task.id.clone()?;
    let mut addresses = BTreeMap::new();
    for att in t.networks_attachments.iter().flatten() {
        let Some(net) = &att.network else { continue };
        let Some(net_id) = net.id.as_deref() else {
            continue;
        };
        let Some(name) = networks.name(net_id, net.spec.as_ref()) else {
            continue;
        };
        if let Some(ip) = att.addresses.iter().flatten().find_map(|a| strip_prefix(a)) {
            addresses.insert(name, ip);
        }
    }
    Some(Endpoint { id, addresses })
}

/// `10.0.1.5/24` → `10.0.1.5` (a bare address is accepted too).
pub fn strip_prefix(addr: &str) -> Option<IpAddr> {
    let ip = addr.split_once('/').map_or(addr, |(ip, _)| ip);
    ip.trim().parse().ok()
}

/// Whether a service is still on its way to its desired state: an update or a
/// rollback is in progress, a task wanted running is not running yet, or (replicated)
/// the number of running tasks differs from the replica count.
pub fn converging(service: &Service, tasks: &[&SwarmTask]) -> bool {
    let update = service.update_status.as_ref().and_then(|u| u.state);
    if matches!(
        update,
        Some(UpdateState::UPDATING | UpdateState::ROLLBACK_STARTED)
    ) {
        return true;
    }
    let wanted: Vec<&Task> = tasks
        .iter()
        .map(|t| &t.task)
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .collect();
    if wanted.iter().any(|t| !serving(t)) {
        return true;
    }
    let replicas = service
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas);
    match replicas {
        Some(n) => usize::try_from(n).is_ok_and(|n| n != wanted.len()),
        None => false,
    }
}

#[cfg(test)]
#[path = "swarm_tests.rs"]
mod tests;
