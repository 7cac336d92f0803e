//! A test double of Consul's HTTP API: the KV store (check-and-set, locks held by
//! sessions, lock-delay, 512 KiB value limit), sessions (TTL, release/delete behaviour),
//! blocking queries with Consul's index rules, ACL token enforcement and outage
//! simulation (stop, then resume on the same address with the same data).
//!
//! It follows Consul's documented API and its server code paths closely enough that a
//! client tested against it behaves the same against a real Consul server. Time is real:
//! TTLs, lock-delays and waits elapse on the wall clock.

pub mod duration;
mod error;
mod http;
mod server;
mod state;

pub use error::Error;
pub use server::ConsulDouble;
pub use state::{
    Behavior, DirEntry, Endpoint, ServiceCheck, Session, Settings, SharedState, StoreError,
    SERF_HEALTH, SESSION_TTL_MAX, SESSION_TTL_MULTIPLIER,
};
