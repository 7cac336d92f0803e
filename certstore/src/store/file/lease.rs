//! Leased locks of the file backend.
//!
//! A lock `name` is the directory `locks/<name>/` holding `.lock` (the `flock`
//! target) and `.lease`, a JSON [`LeaseRecord`]. Every read-check-write of a lease
//! happens under the `flock`, so two nodes never both see a lease free and both
//! write theirs. The record is never deleted: a released lease keeps its fencing
//! token, and the next owner gets the token plus one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::super::{validate_key, Lease, Lock, LockError, StoreError, MAX_LOCK_TTL, MIN_LOCK_TTL};
use super::fsio::{self, LEASE_FILE};
use super::{blocking, Inner};

/// Longest pause between two acquisition attempts while the lock is busy.
const MAX_BACKOFF: Duration = Duration::from_millis(250);

/// The content of a `.lease` file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct LeaseRecord {
    /// Fencing token of the latest acquisition.
    token: u64,
    /// The holder; `None` once released or broken.
    owner: Option<String>,
    /// When the lease ends unless renewed, in milliseconds since the Unix epoch.
    expires_unix_ms: u64,
}

impl LeaseRecord {
    /// The holder and the time left, if the lease is live at `now_ms`.
    fn live(&self, now_ms: u64) -> Option<(&str, Duration)> {
        let owner = self.owner.as_deref()?;
        (now_ms < self.expires_unix_ms)
            .then(|| (owner, Duration::from_millis(self.expires_unix_ms - now_ms)))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Outcome of one acquisition attempt.
enum Attempt {
    Acquired(u64),
    Held { owner: String, remaining: Duration },
}

impl Inner {
    fn lock_dir(&self, name: &str) -> PathBuf {
        let mut dir = self.locks.clone();
        dir.extend(name.split('/'));
        dir
    }

    fn read_lease(&self, name: &str, dir: &Path) -> Result<Option<LeaseRecord>, StoreError> {
        let path = dir.join(LEASE_FILE);
        let Some(bytes) = fsio::read_optional(&path).map_err(self.io(name, &path))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                key: name.to_string(),
                path,
                reason: e.to_string(),
            })
    }

    fn write_lease(&self, name: &str, dir: &Path, record: &LeaseRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Backend {
            key: name.to_string(),
            source: Box::new(e),
        })?;
        fsio::write_atomic(dir, LEASE_FILE, &bytes).map_err(self.io(name, &dir.join(LEASE_FILE)))
    }

    fn try_acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<Attempt, StoreError> {
        let dir =
            fsio::ensure_dirs(&self.locks, name.split('/')).map_err(self.io(name, &self.locks))?;
        let _guard = self.dir_lock(name, &dir)?;
        let now = now_ms();
        let previous = self.read_lease(name, &dir)?;
        if let Some((holder, remaining)) = previous.as_ref().and_then(|r| r.live(now)) {
            return Ok(Attempt::Held {
                owner: holder.to_string(),
                remaining,
            });
        }
        let token = previous.map_or(0, |r| r.token) + 1;
        self.write_lease(
            name,
            &dir,
            &LeaseRecord {
                token,
                owner: Some(owner.to_string()),
                expires_unix_ms: now + ttl.as_millis() as u64,
            },
        )?;
        Ok(Attempt::Acquired(token))
    }

    /// Extends the lease if `owner` still holds it with `token`.
    fn renew_lease(
        &self,
        name: &str,
        owner: &str,
        token: u64,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let dir = self.lock_dir(name);
        let _guard = self.dir_lock(name, &dir)?;
        match self.read_lease(name, &dir)? {
            Some(r) if r.token == token && r.owner.as_deref() == Some(owner) => {
                let record = LeaseRecord {
                    expires_unix_ms: now_ms() + ttl.as_millis() as u64,
                    ..r
                };
                self.write_lease(name, &dir, &record)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Ends the lease if `owner` still holds it with `token`.
    fn release_lease(&self, name: &str, owner: &str, token: u64) -> Result<(), StoreError> {
        let dir = self.lock_dir(name);
        let _guard = self.dir_lock(name, &dir)?;
        match self.read_lease(name, &dir)? {
            Some(r) if r.token == token && r.owner.as_deref() == Some(owner) => {
                let record = LeaseRecord {
                    owner: None,
                    expires_unix_ms: 0,
                    ..r
                };
                self.write_lease(name, &dir, &record)
            }
            _ => Ok(()),
        }
    }
}

/// Ends any lease on `name`. A lease file that cannot be parsed is replaced too,
/// with the current time in milliseconds as token (above any counted token).
pub(super) fn break_lock(inner: &Inner, name: &str) -> Result<bool, StoreError> {
    let dir = inner.lock_dir(name);
    if !dir.is_dir() {
        return Ok(false);
    }
    let _guard = inner.dir_lock(name, &dir)?;
    let (token, was_live) = match inner.read_lease(name, &dir) {
        Ok(None) => return Ok(false),
        Ok(Some(r)) => {
            let live = r.live(now_ms()).is_some();
            if r.owner.is_none() {
                return Ok(false);
            }
            (r.token, live)
        }
        Err(StoreError::Corrupt { reason, .. }) => {
            tracing::warn!(lock = %name, %reason, "replacing corrupt lease file");
            (now_ms(), true)
        }
        Err(e) => return Err(e),
    };
    let record = LeaseRecord {
        token,
        owner: None,
        expires_unix_ms: 0,
    };
    inner.write_lease(name, &dir, &record)?;
    Ok(was_live)
}

/// Acquires the lock `name`; see [`Store::lock`](super::super::Store::lock).
///
/// Each attempt runs to completion on a blocking thread and is never cut short by a
/// timeout, so an attempt that wrote a lease is always reported as held. (Dropping
/// this future while an attempt runs can still leave a lease behind: it expires
/// after `ttl`. Use `wait` instead of an outer timeout.)
pub(super) async fn lock(
    inner: Arc<Inner>,
    name: &str,
    ttl: Duration,
    wait: Duration,
) -> Result<Lock, LockError> {
    validate_key(name)?;
    if !(MIN_LOCK_TTL..=MAX_LOCK_TTL).contains(&ttl) {
        return Err(LockError::InvalidTtl {
            name: name.to_string(),
            ttl,
        });
    }
    let owner = format!("{}/{:08x}", inner.instance, rand::random::<u32>());
    let started = Instant::now();
    let deadline = started + wait;
    let mut backoff = Duration::from_millis(10);
    loop {
        let attempt_at = Instant::now();
        let attempt = {
            let (inner, n, o) = (inner.clone(), name.to_string(), owner.clone());
            blocking(name, move || inner.try_acquire(&n, &o, ttl)).await?
        };
        let (holder, remaining) = match attempt {
            Attempt::Acquired(token) => {
                tracing::debug!(lock = %name, token, "lock acquired");
                let lease = FileLease {
                    inner,
                    name: name.to_string(),
                    owner,
                    token,
                    ttl,
                };
                return Ok(Lock::new(
                    name.to_string(),
                    token,
                    ttl,
                    attempt_at,
                    Arc::new(lease),
                ));
            }
            Attempt::Held { owner, remaining } => (owner, remaining),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(LockError::Busy {
                name: name.to_string(),
                holder: Some(holder),
                waited: now - started,
            });
        }
        let jitter = Duration::from_micros(rand::random_range(0..=backoff.as_micros() as u64 / 2));
        let pause = (backoff + jitter)
            .min(deadline - now)
            .min(remaining + Duration::from_millis(1));
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A lease held through a [`FileStore`](super::FileStore).
struct FileLease {
    inner: Arc<Inner>,
    name: String,
    owner: String,
    token: u64,
    ttl: Duration,
}

#[async_trait]
impl Lease for FileLease {
    async fn renew(&self) -> Result<bool, StoreError> {
        let (inner, n, o, token, ttl) = (
            self.inner.clone(),
            self.name.clone(),
            self.owner.clone(),
            self.token,
            self.ttl,
        );
        blocking(&self.name, move || inner.renew_lease(&n, &o, token, ttl)).await
    }

    async fn release(&self) -> Result<(), StoreError> {
        let (inner, n, o, token) = (
            self.inner.clone(),
            self.name.clone(),
            self.owner.clone(),
            self.token,
        );
        blocking(&self.name, move || inner.release_lease(&n, &o, token)).await
    }
}
