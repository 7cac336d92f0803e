//! Swarm end-to-end tests: wharf deployed with `deploy/wharf.yml` as a global swarm
//! service (image `wharf-test/wharf`, the binary under test), apps as swarm services
//! of `wharf-test/backend` with Traefik labels, requests through wharf's host-mode port.
//!
//! They need a Docker engine that is an active swarm manager; `tests/run` starts one
//! (`tests/swarm/dockerd.sh`) and sets `WHARF_E2E_DOCKER=1`, which turns a missing
//! Docker into a failure. Without that variable a machine without Docker skips them
//! with a notice. Figures are printed and collected in `target/swarm/figures.txt`.

mod daemon;
mod docker;
mod invalid;
mod lifecycle;
mod load;
mod rolling;
mod routing;
mod stack;
