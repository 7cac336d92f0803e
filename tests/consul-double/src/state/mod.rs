//! State shared by every incarnation of the double's HTTP server: the store (what Consul
//! keeps in Raft), change notifications for blocking queries, settings and request counters.

mod kv;
mod session;
mod store;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use kv::{DeleteOp, PutOp};
pub use session::{
    Behavior, ServiceCheck, Session, SessionSpec, TtlBounds, SERF_HEALTH, SESSION_TTL_MAX,
    SESSION_TTL_MULTIPLIER,
};
pub use store::DirEntry;
pub(crate) use store::Store;

use crate::duration::DurationError;

/// A write Consul refuses after parsing; the text is Consul's and is sent with status 500.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// `?acquire=` or `?release=` without a session ID.
    #[error("missing session")]
    MissingSession,
    /// `?acquire=` with a session that does not exist.
    #[error("invalid session {0:?}")]
    InvalidSession(String),
    /// Session create with an empty `Node`.
    #[error("Must provide Node")]
    MissingNodeName,
    /// Session create on a node that is not registered.
    #[error("Missing node registration")]
    MissingNode,
    /// Session create bound to a check that is not registered.
    #[error("Missing check '{0}' registration")]
    MissingCheck(String),
    /// Session create bound to a check in critical state.
    #[error("Check '{0}' is in critical state")]
    CriticalCheck(String),
    /// Session create with a `Behavior` other than release or delete.
    #[error("Invalid Behavior setting '{0}'")]
    InvalidBehavior(String),
    /// Session create with a `TTL` that is not a Go duration.
    #[error("Session TTL '{ttl}' invalid: {source}")]
    TtlSyntax {
        /// The TTL as written.
        ttl: String,
        /// Why it does not parse.
        #[source]
        source: DurationError,
    },
    /// Session create with a `TTL` outside [session_ttl_min, 24h].
    #[error(
        "Invalid Session TTL '{nanos}', must be between [{}={}]",
        crate::duration::format(*min),
        crate::duration::format(SESSION_TTL_MAX)
    )]
    TtlRange {
        /// The TTL in nanoseconds, as Consul prints it.
        nanos: i64,
        /// The configured minimum.
        min: Duration,
    },
}

/// One API endpoint, for the per-endpoint request counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// `GET /v1/kv/<key>`.
    KvGet,
    /// `PUT /v1/kv/<key>`.
    KvPut,
    /// `DELETE /v1/kv/<key>`.
    KvDelete,
    /// `PUT /v1/session/create`.
    SessionCreate,
    /// `PUT /v1/session/renew/<id>`.
    SessionRenew,
    /// `PUT /v1/session/destroy/<id>`.
    SessionDestroy,
    /// `GET /v1/session/info/<id>`.
    SessionInfo,
    /// `GET /v1/session/list`.
    SessionList,
    /// `GET /v1/session/node/<node>`.
    SessionNode,
    /// `GET /v1/status/leader`.
    StatusLeader,
    /// Any other path or method.
    Other,
}

/// Server settings that a real Consul takes from its agent configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// When set, every request must carry this ACL token (`X-Consul-Token`,
    /// `Authorization: Bearer` or `?token=`).
    pub token: Option<String>,
    /// Extra delay before each response is computed.
    pub latency: Duration,
    /// Smallest session TTL accepted (`session_ttl_min`, default 10s).
    pub session_ttl_min: Duration,
    /// Largest KV value accepted (`kv_max_value_size`, default 512 KiB).
    pub kv_max_value_size: usize,
    /// The datacenter's name; other `?dc=` values fail as unreachable.
    pub datacenter: String,
    /// The agent's node name, the default and only valid session node.
    pub node_name: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            token: None,
            latency: Duration::ZERO,
            session_ttl_min: Duration::from_secs(10),
            kv_max_value_size: 512 * 1024,
            datacenter: "dc1".to_owned(),
            node_name: "consul-double".to_owned(),
        }
    }
}

/// The double's data and settings. Clones share it; pass it to
/// [`ConsulDouble::start_with`](crate::ConsulDouble::start_with) to keep data across an outage.
#[derive(Clone)]
pub struct SharedState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Mutex<Store>,
    changes: watch::Sender<u64>,
    settings: Mutex<Settings>,
    counters: Mutex<BTreeMap<Endpoint, u64>>,
}

impl Default for SharedState {
    fn default() -> Self {
        SharedState::new(Settings::default())
    }
}

impl SharedState {
    /// Empty state with the given settings.
    pub fn new(settings: Settings) -> Self {
        SharedState {
            inner: Arc::new(Inner {
                store: Mutex::new(Store::default()),
                changes: watch::Sender::new(0),
                settings: Mutex::new(settings),
                counters: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// A copy of the current settings.
    pub fn settings(&self) -> Settings {
        lock(&self.inner.settings).clone()
    }

    /// Changes settings in place (token, latency, TTL minimum, ...).
    pub fn update_settings(&self, change: impl FnOnce(&mut Settings)) {
        change(&mut lock(&self.inner.settings));
    }

    /// How many requests reached `endpoint` so far.
    pub fn requests(&self, endpoint: Endpoint) -> u64 {
        lock(&self.inner.counters)
            .get(&endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// Request counts of every endpoint that was called.
    pub fn request_counts(&self) -> BTreeMap<Endpoint, u64> {
        lock(&self.inner.counters).clone()
    }

    /// The current Raft index (last write).
    pub fn raft_index(&self) -> u64 {
        lock(&self.inner.store).raft_index
    }

    /// The stored entry for `key`, read directly (no HTTP, not counted).
    pub fn entry(&self, key: &str) -> Option<DirEntry> {
        lock(&self.inner.store).kvs.get(key).cloned()
    }

    /// IDs of the live sessions.
    pub fn session_ids(&self) -> Vec<String> {
        lock(&self.inner.store).sessions.keys().cloned().collect()
    }

    /// Invalidates a session now, as if its node check had failed.
    pub fn invalidate_session(&self, id: &str) {
        self.with_store(|store, now| store.session_destroy(id, now));
    }

    /// Turns the node's `serfHealth` check critical (invalidating every session bound to
    /// it and refusing new ones) or passing again.
    pub fn set_serf_health_critical(&self, critical: bool) {
        self.with_store(|store, now| store.set_serf_health_critical(critical, now));
    }

    /// Drops every delete tombstone, as Consul's tombstone GC does after
    /// `tombstone_ttl`: a prefix whose highest index came from a delete then reports a
    /// lower index, the case where blocking clients must reset their index.
    pub fn reap_tombstones(&self) {
        self.apply(|store, _| {
            store.next_index();
            store.tombstones.clear();
        });
    }

    /// Takes the cluster's leader away (`false`) or elects one again (`true`). Without a
    /// leader every request fails with 500 `No cluster leader` except `?stale` reads, and
    /// session timers stop; a new leader restarts them at full length.
    pub fn set_leader(&self, leader: bool) {
        self.apply(|store, now| {
            if leader && !store.leader {
                store.reset_session_timers(now);
            }
            store.leader = leader;
        });
    }

    /// Whether the cluster currently has a leader.
    pub fn has_leader(&self) -> bool {
        lock(&self.inner.store).leader
    }

    pub(crate) fn count(&self, endpoint: Endpoint) {
        *lock(&self.inner.counters).entry(endpoint).or_insert(0) += 1;
    }

    /// Runs `f` on the store after firing due session timers, then wakes blocking
    /// queries if anything was written. The lock is never held across an await.
    pub(crate) fn with_store<R>(&self, f: impl FnOnce(&mut Store, Instant) -> R) -> R {
        self.apply(|store, now| {
            store.expire_sessions(now);
            f(store, now)
        })
    }

    /// Runs `f` on the store and wakes blocking queries if anything was written.
    fn apply<R>(&self, f: impl FnOnce(&mut Store, Instant) -> R) -> R {
        let now = Instant::now();
        let mut store = lock(&self.inner.store);
        let before = store.raft_index;
        let result = f(&mut store, now);
        let after = store.raft_index;
        drop(store);
        if after != before {
            self.inner.changes.send_replace(after);
        }
        result
    }

    /// A receiver that sees every committed write, for blocking queries.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Restarts all session TTL timers, as a new leader does after an outage.
    pub(crate) fn reset_session_timers(&self) {
        // Not `with_store`: timers that ran out during the outage must not fire first.
        self.apply(|store, now| store.reset_session_timers(now));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
