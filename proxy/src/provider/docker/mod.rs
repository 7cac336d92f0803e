//! The Docker provider: routes from the labels of Swarm services (`providers.swarm`,
//! or `providers.docker` with `swarmMode`) or of containers (`providers.docker`).

pub mod config;
