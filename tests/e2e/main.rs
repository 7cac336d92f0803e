//! End-to-end tests: each test starts the real `wharf` binary with its own static and
//! dynamic configuration on free ports, talks to it over loopback with real clients,
//! and points it at real HTTP, WebSocket and HTTP/2 servers running in this process.

mod acme;
mod admin;
mod backends;
mod balancing;
mod client;
mod cluster_worker;
mod dashboard;
mod dataplane;
mod harness;
mod middlewares_a;
mod middlewares_b;
mod observability;
mod reload;
mod routing;
mod selftest;
mod shutdown;
mod swarm;
mod tls;
