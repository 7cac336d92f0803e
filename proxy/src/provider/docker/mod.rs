//! The Docker provider: routes from the labels of Swarm services (`providers.swarm`,
//! or `providers.docker` with `swarmMode`) or of containers (`providers.docker`).

pub mod config;
pub mod containers;
pub mod error;
mod tls;
pub mod transport;

pub use error::{DockerError, TransportError};
pub mod swarm;
pub mod workload;
