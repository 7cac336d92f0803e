//! The conformance suite every [`Store`] backend must pass (feature `conformance`,
//! always available to this crate's own tests).
//!
//! A backend's tests call [`run_all`] with a factory returning a *new handle on the
//! same shared storage* at each call, as another node would open it; several cases
//! use two or more handles and check they see each other's writes and exclude each
//! other's locks. Each case works under its own random key prefix, so the storage
//! may be shared with other cases and other runs. Or, one test per case:
//!
//! ```ignore
//! wharf_certstore::store_conformance_tests!(|| make_store(), Timing::default());
//! ```
//!
//! Cases panic with a message on failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use super::Store;

mod kv;
mod locks;

pub use kv::{
    cas_absent, cas_increments_are_exact, cas_version, get_put_delete, invalid_keys,
    list_by_prefix, watch_sees_other_handle,
};
pub use locks::{lock_exclusive, lock_takeover_after_ttl, lost_when_broken, lost_when_taken_over};

/// A factory of handles on one shared store.
pub type Make<'a> = &'a (dyn Fn() -> Arc<dyn Store> + Send + Sync);

/// Time limits of the suite, for backends with coarser clocks.
#[derive(Debug, Clone)]
pub struct Timing {
    /// TTL of the locks taken by lock cases. Default 1.5 s.
    pub lock_ttl: Duration,
    /// The longest a watch may take to report a change. Default 10 s.
    pub watch_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lock_ttl: Duration::from_millis(1500),
            watch_timeout: Duration::from_secs(10),
        }
    }
}

/// Runs every case, one after the other, with default timing.
pub async fn run_all(make: impl Fn() -> Arc<dyn Store> + Send + Sync) {
    run_all_with(&Timing::default(), make).await
}

/// Runs every case, one after the other.
pub async fn run_all_with(timing: &Timing, make: impl Fn() -> Arc<dyn Store> + Send + Sync) {
    let make: Make<'_> = &make;
    get_put_delete(make, timing).await;
    cas_absent(make, timing).await;
    cas_version(make, timing).await;
    invalid_keys(make, timing).await;
    list_by_prefix(make, timing).await;
    watch_sees_other_handle(make, timing).await;
    cas_increments_are_exact(make, timing).await;
    lock_exclusive(make, timing).await;
    lock_takeover_after_ttl(make, timing).await;
    lost_when_broken(make, timing).await;
    lost_when_taken_over(make, timing).await;
}

/// Generates one `#[tokio::test]` per conformance case, for a factory expression
/// (and optionally a [`Timing`]).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!($make, $crate::store::conformance::Timing::default());
    };
    ($make:expr, $timing:expr) => {
        $crate::store_conformance_tests!(@cases ($make) ($timing)
            get_put_delete cas_absent cas_version invalid_keys list_by_prefix
            watch_sees_other_handle cas_increments_are_exact lock_exclusive
            lock_takeover_after_ttl lost_when_broken lost_when_taken_over);
    };
    (@cases ($make:expr) ($timing:expr) $($case:ident)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let make = $make;
                let timing: $crate::store::conformance::Timing = $timing;
                $crate::store::conformance::$case(&make, &timing).await;
            }
        )*
    };
}

/// A fresh key prefix for one case.
pub(crate) fn namespace(case: &str) -> String {
    format!("conformance/{:016x}/{case}", rand::random::<u64>())
}
