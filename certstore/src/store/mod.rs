//! Shared storage for certificates, accounts and ACME challenges, and the cluster-wide
//! locks that keep nodes from issuing the same certificate twice.
//!
//! Every wharf node talks to the same [`Store`] (used as `Arc<dyn Store>`). A backend
//! offers versioned entries with compare-and-swap, prefix listing, change
//! notifications and leased locks:
//!
//! * **Versions.** Every entry carries a version, a positive integer that grows with
//!   each write of the key and is never reused, even after the key is deleted and
//!   created again. [`Store::put`] and [`Store::delete`] take an [`Expect`]: a write
//!   whose expectation does not hold fails with [`StoreError::Conflict`] and changes
//!   nothing.
//! * **Keys** follow [`validate_key`]: `/`-separated segments of a limited charset.
//!   Prefixes for [`Store::list`] and [`Store::watch`] match whole segments.
//! * **Watches** report changes after the watch started, coalesced: a caller reloads
//!   what changed. Latency is the backend's (the file backend polls, every second by
//!   default).
//! * **Locks** are exclusive leases with a TTL, renewed in the background by the
//!   [`Lock`] value. Acquisition is unambiguous: `Ok(Lock)` only when held,
//!   [`LockError::Busy`] when the wait ran out, [`LockError::Store`] on failure. A
//!   timed-out or failed acquisition is never a success. Holders must still re-check
//!   the store after acquiring (another node may have finished the work meanwhile)
//!   and stop working when [`Lock::lost`] fires.
//!
//! Backends: [`FileStore`] (one file per entry on a shared POSIX filesystem) and
//! [`ConsulStore`] (Consul's KV store, sessions and blocking queries). Every
//! backend must pass the suite in `store::conformance` (feature `conformance`).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod consul;
mod error;
pub mod file;
mod key;
mod lock;
pub mod sealed;
mod status;

pub use consul::{ConsulError, ConsulStore, ConsulStoreOptions, ConsulTls};
pub use error::{LockError, StoreError};
pub use file::{FileStore, FileStoreOptions};
pub use key::{
    is_key_char, key_in_prefix, normalize_prefix, validate_key, MAX_KEY_LEN, MAX_SEGMENT_LEN,
};
pub use lock::{Lease, Lock};
pub use sealed::{ClusterKey, ClusterKeyError, SealedStore};
pub use status::StoreStatus;

/// The largest value a backend must accept, in bytes (Consul's limit).
pub const MAX_VALUE_LEN: usize = 512 * 1024;

/// The shortest lock TTL backends accept.
pub const MIN_LOCK_TTL: Duration = Duration::from_millis(100);

/// The longest lock TTL backends accept.
pub const MAX_LOCK_TTL: Duration = Duration::from_secs(24 * 3600);

/// A stored value and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The bytes stored.
    pub value: Vec<u8>,
    /// The version written with them (always at least 1).
    pub version: u64,
}

/// The condition a write checks before changing a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No condition.
    Any,
    /// The key has no entry.
    Absent,
    /// The key's entry has exactly this version.
    Version(u64),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Any => f.write_str("any version"),
            Expect::Absent => f.write_str("no entry"),
            Expect::Version(v) => write!(f, "version {v}"),
        }
    }
}

impl Expect {
    /// Whether a key whose current version is `current` (`None`: no entry)
    /// satisfies the expectation.
    pub fn holds(self, current: Option<u64>) -> bool {
        match self {
            Expect::Any => true,
            Expect::Absent => current.is_none(),
            Expect::Version(v) => current == Some(v),
        }
    }
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was created or written; `version` is its version now.
    Put {
        /// The key.
        key: String,
        /// Its new version.
        version: u64,
    },
    /// The key's entry was deleted.
    Deleted {
        /// The key.
        key: String,
    },
}

impl WatchEvent {
    /// The key that changed.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put { key, .. } | WatchEvent::Deleted { key } => key,
        }
    }
}

/// Change notifications for a prefix, from [`Store::watch`].
///
/// Events are coalesced: several writes between two looks at the store show as one
/// `Put` with the latest version, and a key created and deleted in between may not
/// show at all. Dropping the stream stops the backend's watcher. `recv` returns
/// `None` only if the watcher stopped.
#[derive(Debug)]
pub struct WatchStream {
    rx: mpsc::Receiver<WatchEvent>,
    task: Option<AbortHandle>,
}

impl WatchStream {
    /// A stream reading `rx`; `task`, the backend's watcher, is aborted on drop.
    pub fn new(rx: mpsc::Receiver<WatchEvent>, task: Option<AbortHandle>) -> Self {
        Self { rx, task }
    }

    /// The next change, waiting for it.
    pub async fn recv(&mut self) -> Option<WatchEvent> {
        self.rx.recv().await
    }

    /// The next change if one is already queued.
    pub fn try_recv(&mut self) -> Option<WatchEvent> {
        self.rx.try_recv().ok()
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A shared, versioned key-value store with cluster-wide locks.
///
/// Implementations are cheap to share (`Arc<dyn Store>`) and safe to use from many
/// tasks and many nodes at once.
#[async_trait]
pub trait Store: Send + Sync {
    /// The entry stored under `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError>;

    /// Writes `value` under `key` if `expect` holds and returns the new version;
    /// otherwise fails with [`StoreError::Conflict`] and writes nothing.
    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64, StoreError>;

    /// Deletes `key`'s entry if `expect` holds, else [`StoreError::Conflict`].
    ///
    /// Deleting a missing key with [`Expect::Any`] or [`Expect::Absent`] succeeds and
    /// does nothing; with [`Expect::Version`] it is a conflict.
    async fn delete(&self, key: &str, expect: Expect) -> Result<(), StoreError>;

    /// Every entry whose key is `prefix` or below it (see [`normalize_prefix`]),
    /// sorted by key. `""` lists everything. An entry that cannot be decoded is
    /// logged and left out rather than failing the whole listing (`get` reports it).
    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError>;

    /// Notifications of changes under `prefix` made after this call returns, by any
    /// handle on any node.
    ///
    /// Latency depends on the backend: [`FileStore`] polls (inotify does not see
    /// other nodes' writes on a network filesystem), every
    /// [`FileStoreOptions::poll_interval`], 1 s by default; a blocking-query backend
    /// reports at once.
    async fn watch(&self, prefix: &str) -> Result<WatchStream, StoreError>;

    /// Acquires the exclusive lock `name` (key syntax) for a lease of `ttl`, waiting
    /// at most `wait` (zero: try once).
    ///
    /// `Ok` only when held; [`LockError::Busy`] when another owner held it for the
    /// whole wait; [`LockError::Store`] when the store failed. A lease whose holder
    /// stopped renewing can be taken over once its TTL has run out. `ttl` must lie
    /// within [`MIN_LOCK_TTL`]..=[`MAX_LOCK_TTL`] ([`LockError::InvalidTtl`]).
    ///
    /// Bound the wait with `wait`, not with an outer timeout: cancelling this future
    /// in the middle of an attempt may leave a lease nobody renews, which then
    /// blocks others until its TTL runs out.
    async fn lock(&self, name: &str, ttl: Duration, wait: Duration) -> Result<Lock, LockError>;

    /// Ends whatever lease holds the lock `name`, whoever holds it; an operator's
    /// tool for a stuck lock. The holder's [`Lock::lost`] fires at its next renewal.
    /// Returns whether a live lease was broken.
    async fn break_lock(&self, name: &str) -> Result<bool, StoreError>;

    /// The backend's connection health, for backends that talk to a server
    /// (`None`: nothing to report, as for the file backend).
    fn status(&self) -> Option<StoreStatus> {
        None
    }
}
