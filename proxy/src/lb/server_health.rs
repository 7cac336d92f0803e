//! Health state of one upstream server, and the registry that keeps it across
//! route-table rebuilds.
//!
//! A server is *available* when it is actively healthy (it starts healthy; only
//! health checks change that) and not passively ejected. Passive ejection follows
//! connection failures reported by the request path: the first one ejects the server
//! for [`PASSIVE_EJECTION_BASE`], each further consecutive one (after the previous
//! ejection ended) doubles that, up to [`PASSIVE_EJECTION_MAX`]; a success resets it.
//! Failures reported while the server is already ejected (the other in-flight
//! requests of the same outage) do not lengthen the ejection.
//!
//! Times are stored as nanoseconds since a process-wide epoch in atomics, `0`
//! meaning "unset", so reading the state takes no lock.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long a first connection failure takes a server out of rotation.
pub const PASSIVE_EJECTION_BASE: Duration = Duration::from_secs(10);
/// The longest passive ejection, reached after repeated consecutive failures.
pub const PASSIVE_EJECTION_MAX: Duration = Duration::from_secs(60);

/// Health state of one upstream URL, shared (via `Arc`) by the balancers and health
/// checks of successive route tables.
#[derive(Debug)]
pub struct ServerHealth {
    /// Result of the last active health check; `true` until a check fails.
    healthy: AtomicBool,
    /// End of the current passive ejection, in ticks; `0` when not ejected.
    ejected_until: AtomicU64,
    /// Consecutive connection failures that started an ejection.
    failures: AtomicU32,
    /// Start of the last active check, in ticks; `0` when never checked.
    last_check: AtomicU64,
}

impl Default for ServerHealth {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerHealth {
    /// A server that is healthy, not ejected and never checked.
    pub fn new() -> Self {
        // Fix the epoch no later than the first health state, so every instant the
        // state is compared with comes after it.
        epoch();
        Self {
            healthy: AtomicBool::new(true),
            ejected_until: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            last_check: AtomicU64::new(0),
        }
    }

    /// Whether the last active health check passed (`true` before any check).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Records the result of an active health check; returns the previous value.
    pub fn set_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Ordering::Relaxed)
    }

    /// Whether the server is currently passively ejected.
    pub fn is_ejected(&self) -> bool {
        self.is_ejected_at(&LazyNow::new())
    }

    /// Whether the balancer may send requests to this server.
    pub fn is_available(&self) -> bool {
        self.is_healthy() && !self.is_ejected()
    }

    /// The server's status for the admin API's `serverStatus`: `"UP"` when it is
    /// available, `"DOWN"` when a health check failed or it is passively ejected.
    pub fn status(&self) -> &'static str {
        if self.is_available() {
            "UP"
        } else {
            "DOWN"
        }
    }

    pub(crate) fn is_ejected_at(&self, now: &LazyNow) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && until > now.ticks()
    }

    /// End of the current or last ejection in ticks, `0` if none.
    pub(crate) fn ejected_until(&self) -> u64 {
        self.ejected_until.load(Ordering::Relaxed)
    }

    /// Records a connection failure at `now`. Returns how long the server is now
    /// ejected for if this failure started a new ejection.
    pub(crate) fn record_connect_failure(&self, now: Instant) -> Option<Duration> {
        let now = ticks(now);
        let until = self.ejected_until.load(Ordering::Acquire);
        if until > now {
            return None;
        }
        let failures = self.failures.load(Ordering::Acquire).saturating_add(1);
        let duration = ejection_duration(failures);
        let new_until = now.saturating_add(nanos(duration));
        // Of concurrent failures, only the one that wins the exchange counts.
        self.ejected_until
            .compare_exchange(until, new_until, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        self.failures.store(failures, Ordering::Release);
        Some(duration)
    }

    /// Records a successful exchange: ends any ejection and resets the backoff.
    /// Cheap when there is nothing to reset, as it runs for most requests.
    pub(crate) fn record_success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0
            || self.ejected_until.load(Ordering::Relaxed) != 0
        {
            self.failures.store(0, Ordering::Release);
            self.ejected_until.store(0, Ordering::Release);
        }
    }

    /// Records that an active check started at `at`.
    pub(crate) fn mark_checked(&self, at: Instant) {
        self.last_check.store(ticks(at), Ordering::Relaxed);
    }

    /// When the last active check started, if any.
    pub(crate) fn last_checked(&self) -> Option<Instant> {
        match self.last_check.load(Ordering::Relaxed) {
            0 => None,
            t => Some(epoch() + Duration::from_nanos(t)),
        }
    }
}

/// The ejection after `failures` consecutive failures: base × 2^(failures-1), capped.
fn ejection_duration(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    PASSIVE_EJECTION_BASE
        .saturating_mul(1 << doublings)
        .min(PASSIVE_EJECTION_MAX)
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds from the epoch to `at`, at least 1 so that `0` can mean "unset".
fn ticks(at: Instant) -> u64 {
    nanos(at.saturating_duration_since(epoch())).max(1)
}

/// The current time, read from the clock only if something needs it: picking a
/// server only looks at the time when some server has an ejection recorded.
#[derive(Debug)]
pub(crate) struct LazyNow(Cell<u64>);

impl LazyNow {
    /// Reads the clock on first use.
    pub(crate) fn new() -> Self {
        Self(Cell::new(0))
    }

    /// A fixed time, for tests.
    #[cfg(test)]
    pub(crate) fn at(at: Instant) -> Self {
        Self(Cell::new(ticks(at)))
    }

    fn ticks(&self) -> u64 {
        match self.0.get() {
            0 => {
                let now = ticks(Instant::now());
                self.0.set(now);
                now
            }
            t => t,
        }
    }
}

/// Keeps one [`ServerHealth`] per (service name, server URL) across route-table
/// rebuilds. Only used when a table is built, so a mutex is fine here.
#[derive(Debug, Default)]
pub struct HealthRegistry {
    servers: Mutex<HashMap<(String, String), Arc<ServerHealth>>>,
}

impl HealthRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The health state of `url` in `service`, created healthy on first use.
    pub fn get(&self, service: &str, url: &str) -> Arc<ServerHealth> {
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            servers
                .entry((service.to_string(), url.to_string()))
                .or_default(),
        )
    }

    /// Forgets every server not in `live`, given as (service name, URL) pairs; call
    /// after a rebuild with the servers of the new table.
    pub fn retain(&self, live: &HashSet<(String, String)>) {
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        servers.retain(|key, _| live.contains(key));
    }

    /// How many servers are tracked.
    pub fn len(&self) -> usize {
        self.servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no server is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn starts_up_and_follows_active_checks() {
        let h = ServerHealth::new();
        assert!(h.is_available());
        assert_eq!(h.status(), "UP");
        assert!(h.set_healthy(false));
        assert!(!h.is_available());
        assert_eq!(h.status(), "DOWN");
        assert!(!h.set_healthy(true));
        assert_eq!(h.status(), "UP");
    }

    #[test]
    fn connect_failure_ejects_until_the_deadline() {
        let h = ServerHealth::new();
        let t0 = Instant::now();
        assert_eq!(h.record_connect_failure(t0), Some(PASSIVE_EJECTION_BASE));
        assert!(h.is_ejected_at(&LazyNow::at(t0 + 9 * SEC)));
        assert!(!h.is_ejected_at(&LazyNow::at(t0 + 10 * SEC)));
        // Ejection does not touch the active flag.
        assert!(h.is_healthy());
    }

    #[test]
    fn failures_during_an_ejection_do_not_extend_it() {
        let h = ServerHealth::new();
        let t0 = Instant::now();
        h.record_connect_failure(t0);
        assert_eq!(h.record_connect_failure(t0 + SEC), None);
        assert_eq!(h.record_connect_failure(t0 + 5 * SEC), None);
        assert!(!h.is_ejected_at(&LazyNow::at(t0 + 10 * SEC)));
    }

    #[test]
    fn repeated_failures_double_the_ejection_up_to_the_cap() {
        let h = ServerHealth::new();
        let mut now = Instant::now();
        let mut seen = Vec::new();
        for _ in 0..6 {
            let d = h.record_connect_failure(now).expect("not ejected");
            seen.push(d.as_secs());
            now += d; // probe again right when the ejection ends, and fail
        }
        assert_eq!(seen, [10, 20, 40, 60, 60, 60]);
    }

    #[test]
    fn success_ends_the_ejection_and_resets_backoff() {
        let h = ServerHealth::new();
        let t0 = Instant::now();
        h.record_connect_failure(t0);
        h.record_connect_failure(t0 + 10 * SEC);
        h.record_success();
        assert!(!h.is_ejected_at(&LazyNow::at(t0 + 11 * SEC)));
        assert_eq!(
            h.record_connect_failure(t0 + 12 * SEC),
            Some(PASSIVE_EJECTION_BASE)
        );
    }

    #[test]
    fn last_check_round_trips() {
        let h = ServerHealth::new();
        assert_eq!(h.last_checked(), None);
        let at = Instant::now();
        h.mark_checked(at);
        let back = h.last_checked().expect("checked");
        assert!(back.max(at) - back.min(at) < Duration::from_micros(1));
    }

    #[test]
    fn registry_keeps_state_per_service_and_url() {
        let reg = HealthRegistry::new();
        let a = reg.get("web", "http://a");
        a.set_healthy(false);
        assert!(!reg.get("web", "http://a").is_healthy());
        assert!(reg.get("api", "http://a").is_healthy());
        assert!(!Arc::ptr_eq(&a, &reg.get("web", "http://b")));
        assert_eq!(reg.len(), 3);
    }

    #[test]
    fn registry_retain_forgets_removed_servers() {
        let reg = HealthRegistry::new();
        reg.get("web", "http://a").set_healthy(false);
        reg.get("web", "http://b").set_healthy(false);
        let live = HashSet::from([("web".to_string(), "http://a".to_string())]);
        reg.retain(&live);
        assert_eq!(reg.len(), 1);
        assert!(!reg.get("web", "http://a").is_healthy());
        assert!(reg.get("web", "http://b").is_healthy(), "b starts afresh");
    }
}
