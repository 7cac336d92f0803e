//! Container mode: the engine's running containers turned into [`Workload`]s, one
//! per container (the label engine merges same-named services, so the replicas of
//! a compose service share their servers).
//!
//! - Only `running` containers count, and not while their health check is
//!   `starting` or `unhealthy`. The health is read from the summary's `Health`
//!   (API 1.50+) or, from older engines, from its status text (`Up 3 s (health: starting)`).
//! - The name is Traefik's: `<service>_<project>` from the compose labels
//!   `com.docker.compose.service` and `com.docker.compose.project` when both are
//!   set, else the container name without its leading `/`.
//! - Addresses are per network name; a container in host network mode is reached
//!   at `127.0.0.1` (network `host`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use bollard::models::{
    ContainerSummary, ContainerSummaryHealthStatusEnum as Health, ContainerSummaryStateEnum,
};

use crate::provider::labels::{Endpoint, Workload};

/// Compose's label naming the service.
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
/// Compose's label naming the project.
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";

/// The workloads of the containers that may receive traffic.
pub fn workloads(containers: &[ContainerSummary]) -> Vec<Workload> {
    let mut out: Vec<Workload> = containers
        .iter()
        .filter(|c| serving(c))
        .filter_map(workload)
        .collect();
    out.sort_by(|a, b| {
        let id = |w: &Workload| w.endpoints.first().map(|e| e.id.clone());
        (&a.name, id(a)).cmp(&(&b.name, id(b)))
    });
    out
}

/// Whether a container may receive traffic: running, and not starting or unhealthy.
pub fn serving(c: &ContainerSummary) -> bool {
    if c.state != Some(ContainerSummaryStateEnum::RUNNING) {
        return false;
    }
    match c.health.as_ref().and_then(|h| h.status) {
        Some(Health::STARTING | Health::UNHEALTHY) => false,
        Some(_) => true,
        None => {
            let status = c.status.as_deref().unwrap_or("");
            !(status.contains("(health: starting)") || status.contains("(unhealthy)"))
        }
    }
}

/// Traefik's name for a container's workload.
pub fn workload_name(c: &ContainerSummary) -> Option<String> {
    let labels = c.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).filter(|v| !v.is_empty());
    if let (Some(service), Some(project)) = (label(COMPOSE_SERVICE), label(COMPOSE_PROJECT)) {
        return Some(format!("{service}_{project}"));
    }
    c.names
        .as_ref()?
        .first()
        .map(|n| n.trim_start_matches('/').to_string())
        .filter(|n| !n.is_empty())
}

fn workload(c: &ContainerSummary) -> Option<Workload> {
    let id = c.id.clone()?;
    let name = workload_name(c)?;
    let labels = c
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut addresses = BTreeMap::new();
    let mut networks = Vec::new();
    for (net, settings) in c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .into_iter()
        .flatten()
    {
        networks.push(net.clone());
        if let Some(ip) = settings
            .ip_address
            .as_deref()
            .and_then(|a| a.parse::<IpAddr>().ok())
        {
            addresses.insert(net.clone(), ip);
        }
    }
    let host_mode = c
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.as_deref())
        == Some("host");
    if host_mode {
        addresses.insert("host".into(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        if !networks.iter().any(|n| n == "host") {
            networks.push("host".into());
        }
    }
    networks.sort();
    let mut exposed_ports: Vec<u16> = c.ports.iter().flatten().map(|p| p.private_port).collect();
    exposed_ports.sort_unstable();
    exposed_ports.dedup();
    Some(Workload {
        name,
        labels,
        networks,
        endpoints: vec![Endpoint { id, addresses }],
        vips: BTreeMap::new(),
        exposed_ports,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::{
        ContainerSummaryHealth, ContainerSummaryHostConfig, ContainerSummaryNetworkSettings,
        EndpointSettings, PortSummary,
    };

    use super::*;

    fn container(
        id: &str,
        name: &str,
        labels: &[(&str, &str)],
        nets: &[(&str, &str)],
    ) -> ContainerSummary {
        ContainerSummary {
            id: Some(id.into()),
            names: Some(vec![format!("/{name}")]),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            state: Some(ContainerSummaryStateEnum::RUNNING),
            status: Some("Up 2 minutes".into()),
            network_settings: Some(ContainerSummaryNetworkSettings {
                networks: Some(
                    nets.iter()
                        .map(|(n, ip)| {
                            let settings = EndpointSettings {
                                ip_address: Some(ip.to_string()),
                                ..Default::default()
                            };
                            (n.to_string(), settings)
                        })
                        .collect::<HashMap<_, _>>(),
                ),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn names_addresses_and_ports() {
        let mut c = container(
            "c1",
            "web-1",
            &[("traefik.enable", "true")],
            &[("bridge", "172.17.0.2"), ("front", "")],
        );
        c.ports = Some(vec![
            PortSummary {
                private_port: 8080,
                ..Default::default()
            },
            PortSummary {
                private_port: 80,
                ..Default::default()
            },
            PortSummary {
                private_port: 80,
                public_port: Some(8000),
                ..Default::default()
            },
        ]);
        let w = workloads(&[c]);
        assert_eq!(w[0].name, "web-1");
        assert_eq!(w[0].networks, ["bridge", "front"]);
        assert_eq!(w[0].endpoints[0].id, "c1");
        assert_eq!(
            w[0].endpoints[0].addresses,
            BTreeMap::from([("bridge".to_string(), "172.17.0.2".parse().unwrap())])
        );
        assert_eq!(w[0].exposed_ports, [80, 8080]);
        assert_eq!(w[0].labels["traefik.enable"], "true");
    }

    #[test]
    fn compose_labels_name_the_workload() {
        let both = container(
            "c1",
            "app-web-1",
            &[(COMPOSE_SERVICE, "web"), (COMPOSE_PROJECT, "app")],
            &[],
        );
        assert_eq!(workload_name(&both).as_deref(), Some("web_app"));
        let only_service = container("c2", "x", &[(COMPOSE_SERVICE, "web")], &[]);
        assert_eq!(workload_name(&only_service).as_deref(), Some("x"));
    }

    #[test]
    fn stopped_starting_and_unhealthy_containers_get_no_traffic() {
        let ok = container("a", "a", &[], &[]);
        assert!(serving(&ok));
        let mut exited = ok.clone();
        exited.state = Some(ContainerSummaryStateEnum::EXITED);
        assert!(!serving(&exited));
        let mut starting = ok.clone();
        starting.status = Some("Up 3 seconds (health: starting)".into());
        assert!(!serving(&starting));
        let mut unhealthy = ok.clone();
        unhealthy.status = Some("Up 1 minute (unhealthy)".into());
        assert!(!serving(&unhealthy));
        let mut healthy = ok.clone();
        healthy.status = Some("Up 1 minute (healthy)".into());
        assert!(serving(&healthy));
        let mut new_api = ok.clone();
        new_api.health = Some(ContainerSummaryHealth {
            status: Some(Health::UNHEALTHY),
            ..Default::default()
        });
        assert!(!serving(&new_api));
        assert_eq!(
            workloads(&[ok, exited, starting, unhealthy, healthy, new_api]).len(),
            2
        );
    }

    #[test]
    fn host_network_mode_is_reached_on_loopback() {
        let mut c = container("h", "edge", &[], &[("host", "")]);
        c.host_config = Some(ContainerSummaryHostConfig {
            network_mode: Some("host".into()),
            ..Default::default()
        });
        let w = workloads(&[c]);
        assert_eq!(w[0].networks, ["host"]);
        assert_eq!(
            w[0].endpoints[0].addresses["host"],
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
    }
}
