//! `wharf check`: an offline linter for compose and stack files.
//!
//! Reads stack files as `docker stack deploy` does (compose interpolation, service
//! labels under `deploy.labels`), runs each service's labels through the label
//! engine, and reports the routers Traefik would build and every problem found.

pub mod compose;
pub mod envfile;
pub mod interpolate;
pub mod labels;
mod lines;
pub mod report;
mod tree;
mod yaml;
