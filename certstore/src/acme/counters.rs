//! Running totals of the ACME loop's work, for metrics exporters. Plain atomics, so
//! this crate needs no metrics library; the proxy reads them when scraped.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the ACME loop of this instance has done since it started.
#[derive(Debug, Default)]
pub struct AcmeCounters {
    orders: AtomicU64,
    issued: AtomicU64,
    renewals: AtomicU64,
    failures: AtomicU64,
    store_errors: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcmeCounts {
    /// Issuance attempts (a new certificate or a renewal was ordered).
    pub orders: u64,
    /// Attempts that stored a new certificate.
    pub issued: u64,
    /// Attempts that replaced an existing certificate (a subset of `orders`).
    pub renewals: u64,
    /// Attempts that failed (another instance holding the lock is not a failure).
    pub failures: u64,
    /// Reads or writes of the store that failed.
    pub store_errors: u64,
}

impl AcmeCounters {
    /// Counts an issuance attempt; `renewal` when a certificate existed.
    pub fn order(&self, renewal: bool) {
        self.orders.fetch_add(1, Ordering::Relaxed);
        if renewal {
            self.renewals.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a certificate stored by this instance.
    pub fn issued(&self) {
        self.issued.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed attempt.
    pub fn failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a store error.
    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The current totals.
    pub fn snapshot(&self) -> AcmeCounts {
        AcmeCounts {
            orders: self.orders.load(Ordering::Relaxed),
            issued: self.issued.load(Ordering::Relaxed),
            renewals: self.renewals.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            store_errors: self.store_errors.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accumulate() {
        let c = AcmeCounters::default();
        c.order(false);
        c.order(true);
        c.issued();
        c.failure();
        c.store_error();
        assert_eq!(
            c.snapshot(),
            AcmeCounts {
                orders: 2,
                issued: 1,
                renewals: 1,
                failures: 1,
                store_errors: 1
            }
        );
    }
}
