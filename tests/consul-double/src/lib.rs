//! A test double of Consul's HTTP API: the KV store (check-and-set, locks held by
//! sessions, lock-delay, 512 KiB value limit), sessions (TTL, release/delete behaviour),
//! blocking queries with Consul's index rules, ACL token enforcement and outage
//! simulation (stop, then resume on the same address with the same data).
//!
//! It follows Consul's API documentation and the server code paths behind it closely
//! enough that a client tested against it behaves the same against a real server. Time
//! is real: TTLs, lock-delays and waits elapse on the wall clock.
//!
//! ```no_run
//! # async fn demo() -> Result<(), consul_double::Error> {
//! use consul_double::{ConsulDouble, Settings, SharedState};
//! use std::time::Duration;
//!
//! let state = SharedState::new(Settings {
//!     session_ttl_min: Duration::from_secs(1), // Consul's `session_ttl_min`
//!     ..Settings::default()
//! });
//! let mut consul = ConsulDouble::start_with(state, "127.0.0.1:0".parse().unwrap()).await?;
//! let base_url = consul.url(); // point the client under test here
//! consul.stop().await; // outage: listener and connections closed
//! consul.resume().await?; // same address, same data, session timers restarted
//! # let _ = base_url;
//! # Ok(()) }
//! ```
//!
//! # Semantics worth knowing
//!
//! - Indexes: every write takes the next Raft index (a fresh server starts at 5). A key
//!   reports its `ModifyIndex`; a missing key the KV table's index; a prefix (recurse or
//!   keys) the highest index of its entries and of deletes under it; never less than 1.
//!   Rewriting an identical value changes nothing.
//! - Blocking: `?index=N` waits until the reported index exceeds N, at most `?wait`
//!   (default 5m, cap 10m) plus up to wait/16 of jitter; `index=0` never blocks, and a
//!   returned index lower than N means the client must reset to 0.
//! - Sessions: a TTL session is invalidated exactly 2×TTL after creation or its last
//!   renewal (Consul's leader timer); the TTL is only a lower bound. Stopping the server
//!   stops the timers; starting it restarts each at full length, as a newly elected
//!   leader does. Invalidation (TTL, destroy, failing `serfHealth`) releases or deletes
//!   held keys and blocks `acquire` on them for the lock-delay (capped at 60s); an
//!   explicit `?release` does not start a lock-delay.
//! - Locks: `acquire` succeeds when the key is free or held by the same session; only a
//!   new holder increments `LockIndex`. A plain or CAS write keeps the holder but, as in
//!   Consul, resets `LockIndex` to 0, so use `acquire` writes when `LockIndex` fences.
//! - ACL: with a token set, a request without one gets 403 `Permission denied` and one
//!   with another token 403 `ACL not found`.
//! - Errors are Consul's status codes and plain-text bodies; failures of the state
//!   store (invalid session, TTL out of range, ...) are 500s as in Consul.
//!
//! # Test hooks
//!
//! On [`ConsulDouble`] and [`SharedState`]: `stop`/`resume`/`restart` (outage),
//! `set_leader(false)` (election: 500 `No cluster leader`, only `?stale` reads answer),
//! `set_token`, `set_latency`, `requests(Endpoint)` counters, `invalidate_session`,
//! `set_serf_health_critical`, `reap_tombstones` (a prefix index going backwards), and
//! [`Settings`] for `session_ttl_min`, `kv_max_value_size`, datacenter and node name.

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
