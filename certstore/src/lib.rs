//! wharf's certificates: storage backends behind the `Store` trait, cluster locks,
//! ACME issuance and renewal, and the in-memory resolver the TLS listener reads.

pub mod acme;
pub mod challenge;
pub mod model;
pub mod pem;
pub mod resolver;
pub mod store;
#[cfg(test)]
mod testutil;

pub use resolver::{CertResolver, ResolverError};
pub use store::{Entry, Expect, FileStore, FileStoreOptions, Lock, LockError, Store, StoreError};
