//! The cluster provider's errors.

use wharf_certstore::store::{LockError, StoreError};

/// Why the shared table could not be read, written or set up. Every variant names
/// the key, setting or provider concerned.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A `cluster` setting is invalid or contradicts the providers configured.
    #[error("cluster.{field}: {message}")]
    Config {
        /// The setting (`provider`, `keyPrefix`, `lockTTL`, `mode`).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A stored table cannot be decoded; it is ignored and the routes stay.
    #[error("malformed routing table in {key}: {reason}")]
    Malformed {
        /// The store key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The stored table was published for another provider than this node shares.
    #[error("routing table in {key} is for provider {found:?}, this node shares {expected:?} (cluster.provider must be the same on every node)")]
    ProviderMismatch {
        /// The store key.
        key: String,
        /// The provider this node shares.
        expected: String,
        /// The provider named in the entry.
        found: String,
    },
    /// The encoded table is larger than the store accepts.
    #[error("routing table for {key} is {len} bytes compressed, more than the store's {max}")]
    TooLarge {
        /// The store key.
        key: String,
        /// The compressed length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The table could not be encoded.
    #[error("cannot encode the routing table for {key}: {reason}")]
    Encode {
        /// The store key.
        key: String,
        /// What failed.
        reason: String,
    },
    /// A newer publisher (higher lock token) wrote the table: this node stepped down.
    #[error("{key} was written by a newer publisher (token {found} > {ours})")]
    Superseded {
        /// The store key.
        key: String,
        /// Our lock's fencing token.
        ours: u64,
        /// The token found in the store.
        found: u64,
    },
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The publisher lock could not be acquired because the store failed.
    #[error(transparent)]
    Lock(#[from] LockError),
}
