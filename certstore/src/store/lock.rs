//! The held-lock handle shared by every backend: keeps the lease alive in the
//! background and tells its holder, at once, when it cannot.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::StoreError;

/// How long a dropped lock's release is retried while the store is unreachable.
pub const RELEASE_RETRY_FOR: Duration = Duration::from_secs(300);

/// First pause between two release attempts of a dropped lock; it doubles.
const RELEASE_RETRY_FIRST: Duration = Duration::from_millis(500);

/// Longest pause between two release attempts of a dropped lock.
const RELEASE_RETRY_MAX: Duration = Duration::from_secs(5);

/// A backend's side of one held lease.
#[async_trait]
pub trait Lease: Send + Sync + 'static {
    /// Extends the lease by its TTL from now. `Ok(true)` while this owner still holds
    /// it; `Ok(false)` once it was released, broken or taken over (nothing written).
    async fn renew(&self) -> Result<bool, StoreError>;

    /// Ends the lease if this owner still holds it.
    async fn release(&self) -> Result<(), StoreError>;
}

/// An exclusive cluster-wide lock, held until released, dropped or lost.
///
/// The lease is renewed every `ttl / 3`. If a renewal finds the lease released,
/// broken or taken over, [`Lock::lost`] fires at once; if renewals fail (store
/// unreachable), it fires at the latest `2 * ttl / 3` after the last successful
/// renewal began, which leaves `ttl / 3` of margin (for clock skew between nodes)
/// before anyone else can take the lease over. Work done under the lock must stop
/// when it fires.
///
/// Dropping the lock releases it in the background, retrying for up to
/// [`RELEASE_RETRY_FOR`] while the store cannot be reached: a lock lost during a
/// store outage is so freed as soon as the store is back, rather than when its
/// lease (which a Consul cluster restarts on recovery) runs out.
pub struct Lock {
    name: String,
    token: u64,
    ttl: Duration,
    lost: watch::Receiver<bool>,
    lease: Option<Arc<dyn Lease>>,
    keepalive: Option<JoinHandle<()>>,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("name", &self.name)
            .field("token", &self.token)
            .field("ttl", &self.ttl)
            .field("lost", &self.is_lost())
            .finish()
    }
}

impl Lock {
    /// Wraps a lease a backend has just acquired and starts renewing it.
    ///
    /// `token` is the fencing token (grows with each acquisition of `name`);
    /// `acquired_at` is when the successful acquisition attempt *began*, so the
    /// holder's view of the lease never outlasts the store's. Must be called within
    /// a Tokio runtime.
    pub fn new(
        name: String,
        token: u64,
        ttl: Duration,
        acquired_at: Instant,
        lease: Arc<dyn Lease>,
    ) -> Self {
        let (tx, rx) = watch::channel(false);
        let keepalive = tokio::spawn(keepalive(name.clone(), ttl, acquired_at, lease.clone(), tx));
        Self {
            name,
            token,
            ttl,
            lost: rx,
            lease: Some(lease),
            keepalive: Some(keepalive),
        }
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fencing token: larger for each later acquisition of this lock, so
    /// writes can be refused from a holder that lost the lock without noticing.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The lease TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether the lock is known to be lost.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Completes when the lock is lost (at once if it already is). Also completes if
    /// the keep-alive task stopped for any reason.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.lost.clone();
        async move {
            // An error means the keep-alive task is gone: nobody renews, so the
            // lock must be treated as lost too.
            let _ = rx.wait_for(|lost| *lost).await;
        }
    }

    /// A receiver whose value turns `true` when the lock is lost.
    pub fn lost_watch(&self) -> watch::Receiver<bool> {
        self.lost.clone()
    }

    /// Stops renewing and ends the lease.
    pub async fn release(mut self) -> Result<(), StoreError> {
        if let Some(task) = self.keepalive.take() {
            task.abort();
        }
        match self.lease.take() {
            Some(lease) => lease.release().await,
            None => Ok(()),
        }
    }

    /// Stops renewing without ending the lease, exactly as if this process had
    /// crashed: the lease stays held until its TTL runs out. Meant for tests of
    /// takeover; real code calls [`Lock::release`].
    pub fn abandon(mut self) {
        if let Some(task) = self.keepalive.take() {
            task.abort();
        }
        self.lease = None;
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(task) = self.keepalive.take() {
            task.abort();
        }
        let Some(lease) = self.lease.take() else {
            return;
        };
        let name = self.name.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(release_with_retry(name, lease, RELEASE_RETRY));
            }
            Err(_) => {
                tracing::warn!(lock = %name, "lock dropped outside a runtime; it expires after its TTL");
            }
        }
    }
}

/// How a dropped lock's release is retried.
#[derive(Debug, Clone, Copy)]
struct RetrySchedule {
    /// First pause; it doubles.
    first: Duration,
    /// Longest pause.
    max: Duration,
    /// No attempt starts after this long.
    window: Duration,
}

/// The schedule of [`Lock`]'s drop.
const RELEASE_RETRY: RetrySchedule = RetrySchedule {
    first: RELEASE_RETRY_FIRST,
    max: RELEASE_RETRY_MAX,
    window: RELEASE_RETRY_FOR,
};

/// Releases a dropped lock's `lease`, retrying with backoff per `schedule`; then
/// it is left to expire.
async fn release_with_retry(name: String, lease: Arc<dyn Lease>, schedule: RetrySchedule) {
    let give_up = Instant::now() + schedule.window;
    let mut pause = schedule.first;
    let mut failures = 0u32;
    loop {
        match lease.release().await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(lock = %name, failures, "dropped lock released once the store answered");
                }
                return;
            }
            Err(e) if Instant::now() + pause >= give_up => {
                tracing::warn!(lock = %name, error = %e, "cannot release dropped lock; it expires after its TTL");
                return;
            }
            Err(e) => {
                if failures == 0 {
                    tracing::warn!(lock = %name, error = %e, "cannot release dropped lock; retrying");
                }
                failures += 1;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(schedule.max);
            }
        }
    }
}

/// Renews `lease` every `ttl / 3`; sets `lost` and returns as soon as the lease is
/// gone or cannot be renewed in time.
async fn keepalive(
    name: String,
    ttl: Duration,
    acquired_at: Instant,
    lease: Arc<dyn Lease>,
    lost: watch::Sender<bool>,
) {
    let period = ttl / 3;
    let retry = (period / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    // When the last successful acquisition or renewal began.
    let mut held_from = acquired_at;
    let mut next = acquired_at + period;
    loop {
        tokio::time::sleep_until(next).await;
        let deadline = held_from + (ttl - period);
        let start = Instant::now();
        if start >= deadline {
            tracing::warn!(lock = %name, "lock lease not renewed in time; lock lost");
            break;
        }
        match tokio::time::timeout_at(deadline, lease.renew()).await {
            Ok(Ok(true)) => {
                held_from = start;
                next = start + period;
            }
            Ok(Ok(false)) => {
                tracing::warn!(lock = %name, "lock lease released, broken or taken over; lock lost");
                break;
            }
            Ok(Err(e)) => {
                tracing::warn!(lock = %name, error = %e, "cannot renew lock lease; retrying");
                next = (Instant::now() + retry).min(deadline);
            }
            Err(_) => {
                tracing::warn!(lock = %name, "lock lease renewal timed out; lock lost");
                break;
            }
        }
    }
    let _ = lost.send(true);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A lease whose first `failures` releases fail, as during a store outage.
    struct Unreachable {
        failures: usize,
        attempts: AtomicUsize,
    }

    #[async_trait]
    impl Lease for Unreachable {
        async fn renew(&self) -> Result<bool, StoreError> {
            Ok(true)
        }

        async fn release(&self) -> Result<(), StoreError> {
            let n = self.attempts.fetch_add(1, Ordering::SeqCst);
            if n < self.failures {
                return Err(StoreError::Backend {
                    key: "l".into(),
                    source: "store unreachable".into(),
                });
            }
            Ok(())
        }
    }

    fn lease(failures: usize) -> Arc<Unreachable> {
        Arc::new(Unreachable {
            failures,
            attempts: AtomicUsize::new(0),
        })
    }

    /// The drop schedule scaled down 100 times.
    const FAST: RetrySchedule = RetrySchedule {
        first: Duration::from_millis(5),
        max: Duration::from_millis(50),
        window: Duration::from_secs(3),
    };

    #[tokio::test]
    async fn a_dropped_lock_is_released_once_the_store_answers_again() {
        let lease = lease(4);
        let started = Instant::now();
        release_with_retry("l".into(), lease.clone(), FAST).await;
        assert_eq!(lease.attempts.load(Ordering::SeqCst), 5);
        // 5 + 10 + 20 + 40 ms of pauses before the fifth attempt.
        assert!(started.elapsed() >= Duration::from_millis(75));
    }

    #[tokio::test]
    async fn a_dropped_lock_gives_up_after_the_retry_window() {
        let lease = lease(usize::MAX);
        let started = Instant::now();
        release_with_retry("l".into(), lease.clone(), FAST).await;
        let elapsed = started.elapsed();
        assert!(
            elapsed >= FAST.window - FAST.max && elapsed < FAST.window * 2,
            "gave up after {elapsed:?}"
        );
        // Pauses double up to 50 ms: at most 3 s / 50 ms + 5 attempts.
        let attempts = lease.attempts.load(Ordering::SeqCst);
        assert!((10..=65).contains(&attempts), "{attempts} attempts");
    }

    #[tokio::test]
    async fn dropping_a_lock_releases_it_in_the_background() {
        let lease = lease(0);
        let held = Lock::new(
            "l".into(),
            1,
            Duration::from_secs(30),
            Instant::now(),
            lease.clone(),
        );
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(10);
        while lease.attempts.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "never released");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
