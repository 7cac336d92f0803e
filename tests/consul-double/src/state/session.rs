//! Sessions with the semantics of Consul's `Session` endpoint and state store: creation
//! checks, TTL timers (fired at 2×TTL after the last renewal, like Consul's leader),
//! invalidation that releases or deletes held keys and starts their lock-delay.

use std::time::{Duration, Instant};

use super::store::{Store, MAX_LOCK_DELAY};
use super::StoreError;

/// The node health check every session is bound to by default.
pub const SERF_HEALTH: &str = "serfHealth";

/// Consul multiplies a session's TTL by this before invalidating it
/// (`structs.SessionTTLMultiplier`): the TTL is a lower bound.
pub const SESSION_TTL_MULTIPLIER: u32 = 2;

/// Consul's upper bound for a session TTL (`structs.SessionTTLMax`).
pub const SESSION_TTL_MAX: Duration = Duration::from_secs(24 * 3600);

/// What happens to the keys a session holds when it is invalidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// The locks are released; the keys stay.
    Release,
    /// The keys are deleted.
    Delete,
}

impl Behavior {
    /// The spelling used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Behavior::Release => "release",
            Behavior::Delete => "delete",
        }
    }
}

/// A service check a session is bound to (`{"ID": ..., "Namespace": ...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCheck {
    /// The check's ID.
    pub id: String,
    /// The check's namespace (Enterprise; empty otherwise).
    pub namespace: String,
}

/// A validated session, as stored.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session's UUID.
    pub id: String,
    /// Free-form name.
    pub name: String,
    /// The node the session belongs to.
    pub node: String,
    /// Lock-delay applied to held keys on invalidation.
    pub lock_delay: Duration,
    /// Release or delete held keys on invalidation.
    pub behavior: Behavior,
    /// The TTL as the client wrote it ("" when none).
    pub ttl: String,
    /// The parsed TTL, if it is non-zero.
    pub(crate) ttl_duration: Option<Duration>,
    /// Node checks the session is bound to.
    pub node_checks: Vec<String>,
    /// Service checks the session is bound to.
    pub service_checks: Vec<ServiceCheck>,
    /// Index of the write that created the session.
    pub create_index: u64,
    /// Index of the last write to the session (same as create: sessions are immutable).
    pub modify_index: u64,
    /// When the leader's timer invalidates the session, for TTL sessions.
    pub(crate) expires_at: Option<Instant>,
}

/// A session creation request after defaults and body fields are applied, before checks.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// Free-form name.
    pub name: String,
    /// The node; defaults to the agent's node name.
    pub node: String,
    /// Lock-delay; defaults to 15s.
    pub lock_delay: Duration,
    /// Behavior as written ("" means release).
    pub behavior: String,
    /// TTL as written ("" means none).
    pub ttl: String,
    /// Node checks.
    pub node_checks: Vec<String>,
    /// Service checks.
    pub service_checks: Vec<ServiceCheck>,
}

/// Bounds the server applies to session TTLs (`session_ttl_min` is an agent setting).
#[derive(Debug, Clone, Copy)]
pub struct TtlBounds {
    /// Smallest TTL accepted (Consul's default: 10s).
    pub min: Duration,
}

impl Store {
    /// Creates a session (Consul's `Session.Apply` create path) and returns its ID.
    pub(crate) fn session_create(
        &mut self,
        spec: SessionSpec,
        agent_node: &str,
        bounds: TtlBounds,
        now: Instant,
    ) -> Result<String, StoreError> {
        if spec.node.is_empty() {
            return Err(StoreError::MissingNodeName);
        }
        let behavior = match spec.behavior.as_str() {
            "" | "release" => Behavior::Release,
            "delete" => Behavior::Delete,
            other => return Err(StoreError::InvalidBehavior(other.to_owned())),
        };
        let ttl_duration = validate_ttl(&spec.ttl, bounds)?;
        if spec.node != agent_node {
            return Err(StoreError::MissingNode);
        }
        for check in &spec.node_checks {
            if check != SERF_HEALTH {
                return Err(StoreError::MissingCheck(check.clone()));
            }
            if self.serf_health_critical {
                return Err(StoreError::CriticalCheck(check.clone()));
            }
        }
        if let Some(check) = spec.service_checks.first() {
            return Err(StoreError::MissingCheck(check.id.clone()));
        }
        let id = new_uuid();
        let idx = self.next_index();
        let session = Session {
            id: id.clone(),
            name: spec.name,
            node: spec.node,
            lock_delay: spec.lock_delay,
            behavior,
            ttl: spec.ttl,
            ttl_duration,
            node_checks: spec.node_checks,
            service_checks: spec.service_checks,
            create_index: idx,
            modify_index: idx,
            expires_at: ttl_duration.map(|ttl| now + ttl * SESSION_TTL_MULTIPLIER),
        };
        self.sessions.insert(id.clone(), session);
        self.sessions_index = idx;
        Ok(id)
    }

    /// Renews a session's TTL timer; `None` when the session no longer exists.
    pub(crate) fn session_renew(&mut self, id: &str, now: Instant) -> Option<Session> {
        let session = self.sessions.get_mut(id)?;
        session.expires_at = session
            .ttl_duration
            .map(|ttl| now + ttl * SESSION_TTL_MULTIPLIER);
        Some(session.clone())
    }

    /// Destroys a session explicitly; destroying an unknown session is not an error.
    pub(crate) fn session_destroy(&mut self, id: &str, now: Instant) {
        let idx = self.next_index();
        self.invalidate(idx, id, now);
    }

    /// Reads one session; the index is the sessions table index.
    pub(crate) fn session_get(&self, id: &str) -> (u64, Option<Session>) {
        (self.sessions_index, self.sessions.get(id).cloned())
    }

    /// Lists sessions, optionally only those of one node, in ID order.
    pub(crate) fn session_list(&self, node: Option<&str>) -> (u64, Vec<Session>) {
        let sessions = self
            .sessions
            .values()
            .filter(|s| node.is_none_or(|n| s.node == n))
            .cloned()
            .collect();
        (self.sessions_index, sessions)
    }

    /// Invalidates every TTL session whose timer has fired by `now`.
    pub(crate) fn expire_sessions(&mut self, now: Instant) {
        if !self.leader {
            return;
        }
        let due: Vec<String> = self
            .sessions
            .values()
            .filter(|s| s.expires_at.is_some_and(|at| at <= now))
            .map(|s| s.id.clone())
            .collect();
        for id in due {
            let idx = self.next_index();
            self.invalidate(idx, &id, now);
        }
    }

    /// Restarts every TTL timer at its full length, as a newly elected leader does.
    pub(crate) fn reset_session_timers(&mut self, now: Instant) {
        for session in self.sessions.values_mut() {
            session.expires_at = session
                .ttl_duration
                .map(|ttl| now + ttl * SESSION_TTL_MULTIPLIER);
        }
    }

    /// Marks the node's `serfHealth` check critical or passing; going critical
    /// invalidates every session bound to it.
    pub(crate) fn set_serf_health_critical(&mut self, critical: bool, now: Instant) {
        self.serf_health_critical = critical;
        if !critical {
            return;
        }
        let bound: Vec<String> = self
            .sessions
            .values()
            .filter(|s| s.node_checks.iter().any(|c| c == SERF_HEALTH))
            .map(|s| s.id.clone())
            .collect();
        for id in bound {
            let idx = self.next_index();
            self.invalidate(idx, &id, now);
        }
    }

    /// Removes a session at `idx`, releasing or deleting its keys and starting their
    /// lock-delay (Consul's `sessionDestroyTxn`).
    fn invalidate(&mut self, idx: u64, id: &str, now: Instant) {
        let Some(session) = self.sessions.remove(id) else {
            return;
        };
        self.sessions_index = idx;
        let held: Vec<String> = self
            .kvs
            .values()
            .filter(|e| e.session.as_deref() == Some(id))
            .map(|e| e.key.clone())
            .collect();
        for key in &held {
            match session.behavior {
                Behavior::Release => {
                    if let Some(entry) = self.kvs.get_mut(key) {
                        entry.session = None;
                        entry.modify_index = idx;
                        self.kvs_index = idx;
                    }
                }
                Behavior::Delete => {
                    self.kvs_delete_entry(idx, key);
                }
            }
        }
        let delay = session.lock_delay.min(MAX_LOCK_DELAY);
        if !delay.is_zero() {
            for key in held {
                self.lock_delays.insert(key, now + delay);
            }
        }
    }
}

/// Checks a TTL string the way `Session.Apply` does and returns the non-zero TTL.
fn validate_ttl(ttl: &str, bounds: TtlBounds) -> Result<Option<Duration>, StoreError> {
    if ttl.is_empty() {
        return Ok(None);
    }
    let nanos = crate::duration::parse_nanos(ttl).map_err(|source| StoreError::TtlSyntax {
        ttl: ttl.to_owned(),
        source,
    })?;
    if nanos == 0 {
        return Ok(None);
    }
    let in_range = u64::try_from(nanos)
        .map(Duration::from_nanos)
        .ok()
        .filter(|d| *d >= bounds.min && *d <= SESSION_TTL_MAX);
    match in_range {
        Some(duration) => Ok(Some(duration)),
        None => Err(StoreError::TtlRange {
            nanos,
            min: bounds.min,
        }),
    }
}

/// A random UUID in Consul's 8-4-4-4-12 hex form.
fn new_uuid() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
