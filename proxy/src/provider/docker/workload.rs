//! What discovery produces: one [`Workload`] per swarm service or container, the
//! input of the label engine.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// One swarm service (or standalone container) as the label engine sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    /// Docker name: swarm service `stack_web`, or container name.
    pub name: String,
    /// Service labels (`deploy.labels`) or container labels.
    pub labels: BTreeMap<String, String>,
    /// Names of the attached networks, e.g. `["stack_default", "traefik-public"]`.
    pub networks: Vec<String>,
    /// Tasks or containers that may receive traffic (already filtered: running and healthy).
    pub endpoints: Vec<Endpoint>,
    /// The service's virtual IP per network name (swarm; used with `lbswarm`).
    pub vips: BTreeMap<String, IpAddr>,
    /// Ports the container image exposes (standalone containers).
    pub exposed_ports: Vec<u16>,
}

/// A task or container that may receive traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// Task or container id.
    pub id: String,
    /// Its address on each attached network, by network name.
    pub addresses: BTreeMap<String, IpAddr>,
}
