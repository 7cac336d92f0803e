//! The errors of store operations.

use std::path::PathBuf;
use std::time::Duration;

use super::Expect;

/// Why a store operation failed. Every variant names the key (or lock name) it
/// concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key, prefix or lock name does not follow the key syntax
    /// (see [`validate_key`](super::validate_key)).
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A compare-and-swap expectation did not hold; nothing was written.
    #[error("conflict on {key}: expected {expected}, found {}", found_text(.found))]
    Conflict {
        /// The key.
        key: String,
        /// What the caller expected.
        expected: Expect,
        /// The version actually stored (`None`: no entry).
        found: Option<u64>,
    },
    /// The value is larger than [`MAX_VALUE_LEN`](super::MAX_VALUE_LEN).
    #[error("value for {key} is {len} bytes, more than the {max} allowed")]
    ValueTooLarge {
        /// The key.
        key: String,
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The backend's own short critical section for this key stayed busy too long
    /// (another node holding it, or a stuck filesystem).
    #[error("gave up after {waited:?} waiting for exclusive access to {key}")]
    Contended {
        /// The key or lock name.
        key: String,
        /// How long it waited.
        waited: Duration,
    },
    /// A filesystem operation failed.
    #[error("I/O error on {key} ({}): {source}", path.display())]
    Io {
        /// The key or lock name.
        key: String,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Stored data could not be parsed.
    #[error("corrupt data for {key} ({}): {reason}", path.display())]
    Corrupt {
        /// The key or lock name.
        key: String,
        /// Where the data lives.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An encrypted entry does not open with the cluster key (wrong key, damage).
    #[error("sealed entry {key}: {reason}")]
    Sealed {
        /// The key.
        key: String,
        /// What went wrong.
        reason: String,
    },
    /// Any other backend failure (a failed background task, a remote API error).
    #[error("store backend failure on {key}: {source}")]
    Backend {
        /// The key or lock name.
        key: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn found_text(found: &Option<u64>) -> String {
    match found {
        Some(v) => format!("version {v}"),
        None => "no entry".to_string(),
    }
}

impl StoreError {
    /// The key or lock name the error concerns.
    pub fn key(&self) -> &str {
        match self {
            StoreError::InvalidKey { key, .. }
            | StoreError::Conflict { key, .. }
            | StoreError::ValueTooLarge { key, .. }
            | StoreError::Contended { key, .. }
            | StoreError::Io { key, .. }
            | StoreError::Corrupt { key, .. }
            | StoreError::Sealed { key, .. }
            | StoreError::Backend { key, .. } => key,
        }
    }

    /// Whether this is a failed compare-and-swap ([`StoreError::Conflict`]).
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// Why [`Store::lock`](super::Store::lock) did not return a held lock.
///
/// There is no other outcome: `Ok(Lock)` means held, every error means not held.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else held the lock for the whole wait.
    #[error("lock {name} is held by {} (waited {waited:?})", holder.as_deref().unwrap_or("another owner"))]
    Busy {
        /// The lock name.
        name: String,
        /// The current holder, when the backend knows it.
        holder: Option<String>,
        /// How long the call waited.
        waited: Duration,
    },
    /// The TTL is outside what backends accept
    /// ([`MIN_LOCK_TTL`](super::MIN_LOCK_TTL)..=[`MAX_LOCK_TTL`](super::MAX_LOCK_TTL)).
    #[error("lock {name}: TTL {ttl:?} out of range")]
    InvalidTtl {
        /// The lock name.
        name: String,
        /// The rejected TTL.
        ttl: Duration,
    },
    /// The store failed; the lock is not held.
    #[error("cannot acquire lock: {0}")]
    Store(#[from] StoreError),
}
