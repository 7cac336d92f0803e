//! Locks of the Consul backend: one Consul session per held lock.
//!
//! `lock` creates a session (TTL, lock-delay, behaviour `release`) and tries
//! `PUT <prefix>locks/<name>?acquire=<session>` until Consul answers `true` or the
//! wait runs out; only `true` followed by a read showing our session counts as
//! held. The fencing token is the lock key's `ModifyIndex` after the acquisition
//! (it grows with every acquisition, even across deletes of the key). The
//! [`Lock`]'s keep-alive renews the session every TTL/3 and checks that the key is
//! still ours; a session Consul no longer knows (404) or a key held by someone else
//! makes [`Lock::lost`] fire at once, failed renewals make it fire 2/3 of the TTL
//! after the last good one.
//!
//! Release is `?release=` then destroying the session, so a clean release leaves
//! no lock-delay. [`break_lock`] does the same with the holder's session: the
//! operator's intent is to free the lock now. A session that is lost otherwise
//! (TTL expiry after a crash, destroyed behind the holder's back) leaves the
//! lock-delay in force, as Consul intends.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::api::SessionSpec;
use super::{backend, Inner};
use crate::store::{validate_key, Lease, Lock, LockError, StoreError, MAX_LOCK_TTL, MIN_LOCK_TTL};

/// Consul's shortest session TTL.
const MIN_SESSION_TTL_SECS: u64 = 10;

/// Consul's longest session TTL.
const MAX_SESSION_TTL_SECS: u64 = 86_400;

/// Longest pause between two acquisition attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Consul's longest lock-delay.
const MAX_LOCK_DELAY_SECS: u64 = 60;

/// The session TTL for a lock of `ttl`: whole seconds, within Consul's range.
pub(super) fn session_ttl_secs(ttl: Duration) -> u64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    secs.clamp(MIN_SESSION_TTL_SECS, MAX_SESSION_TTL_SECS)
}

/// Acquires `name`; see [`Store::lock`](crate::store::Store::lock).
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
    let ttl_secs = session_ttl_secs(inner.options.session_ttl.unwrap_or(ttl));
    let session_ttl = Duration::from_secs(ttl_secs);
    let path = inner.lock_path(name);
    let owner = format!("{}/{:08x}", inner.instance, rand::random::<u32>());
    let session_name = format!("wharf lock {name} ({owner})");
    let spec = SessionSpec {
        name: &session_name,
        ttl_secs,
        lock_delay_secs: inner.options.lock_delay.as_secs().min(MAX_LOCK_DELAY_SECS),
    };
    let started = Instant::now();
    let deadline = started + wait;
    // When the session's TTL last started counting (creation or renewal began).
    let mut fresh_at = Instant::now();
    let mut session = inner
        .api
        .create_session(&spec)
        .await
        .map_err(backend(name))?;
    let mut backoff = Duration::from_millis(25);
    let outcome = loop {
        let acquired = inner
            .api
            .acquire(&path, owner.clone().into_bytes(), &session)
            .await;
        let holder = match acquired {
            Ok(true) => match inner.api.get(&path).await {
                Ok(Some(p)) if p.session.as_deref() == Some(session.as_str()) => {
                    break Ok(p.modify_index)
                }
                // Broken or released between our two calls: not held.
                Ok(p) => p.map(|p| holder_text(&p.value, p.session.as_deref())),
                Err(e) => break Err(LockError::Store(backend(name)(e))),
            },
            Ok(false) => match inner.api.get(&path).await {
                Ok(p) => p.map(|p| holder_text(&p.value, p.session.as_deref())),
                Err(e) => break Err(LockError::Store(backend(name)(e))),
            },
            Err(e) => break Err(LockError::Store(backend(name)(e))),
        };
        let now = Instant::now();
        if now >= deadline {
            break Err(LockError::Busy {
                name: name.to_string(),
                holder,
                waited: now - started,
            });
        }
        let jitter = Duration::from_micros(rand::random_range(0..=backoff.as_micros() as u64 / 2));
        tokio::time::sleep((backoff + jitter).min(deadline - now)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        // Keep the waiting session alive; replace it if Consul dropped it.
        if fresh_at.elapsed() >= session_ttl / 3 {
            let renew_at = Instant::now();
            match inner.api.renew_session(&session).await {
                Ok(true) => fresh_at = renew_at,
                Ok(false) => {
                    fresh_at = Instant::now();
                    match inner.api.create_session(&spec).await {
                        Ok(s) => session = s,
                        Err(e) => break Err(LockError::Store(backend(name)(e))),
                    }
                }
                Err(e) => break Err(LockError::Store(backend(name)(e))),
            }
        }
    };
    match outcome {
        Ok(token) => {
            tracing::debug!(lock = %name, token, %session, "lock acquired");
            let lease = ConsulLease {
                inner,
                name: name.to_string(),
                path,
                session,
            };
            Ok(Lock::new(
                name.to_string(),
                token,
                session_ttl,
                fresh_at,
                Arc::new(lease),
            ))
        }
        Err(e) => {
            // An acquisition that failed midway may still have taken the key:
            // destroying the session frees it (Consul applies lock-delay then).
            if let Err(destroy) = inner.api.destroy_session(&session).await {
                tracing::warn!(lock = %name, %session, error = %destroy, "cannot destroy an unused lock session; it expires after its TTL");
            }
            Err(e)
        }
    }
}

/// Who holds a lock key, for [`LockError::Busy`].
fn holder_text(value: &[u8], session: Option<&str>) -> String {
    match (std::str::from_utf8(value), session) {
        (Ok(v), Some(s)) if !v.is_empty() => format!("{v} (session {s})"),
        (_, Some(s)) => format!("session {s}"),
        // Not held: only lock-delay keeps it.
        (_, None) => "nobody (lock-delay after a lost session)".to_string(),
    }
}

/// Ends whatever session holds `name`; see
/// [`Store::break_lock`](crate::store::Store::break_lock).
pub(super) async fn break_lock(inner: &Inner, name: &str) -> Result<bool, StoreError> {
    let path = inner.lock_path(name);
    let Some(pair) = inner.api.get(&path).await.map_err(backend(name))? else {
        return Ok(false);
    };
    let Some(session) = pair.session else {
        return Ok(false);
    };
    // Release first so the lock is free at once, then end the holder's session so
    // its keep-alive sees the loss.
    inner
        .api
        .release(&path, &session)
        .await
        .map_err(backend(name))?;
    inner
        .api
        .destroy_session(&session)
        .await
        .map_err(backend(name))?;
    tracing::warn!(lock = %name, %session, "lock broken");
    Ok(true)
}

/// A lock held through a Consul session.
struct ConsulLease {
    inner: Arc<Inner>,
    name: String,
    path: String,
    session: String,
}

#[async_trait]
impl Lease for ConsulLease {
    async fn renew(&self) -> Result<bool, StoreError> {
        let api = &self.inner.api;
        if !api
            .renew_session(&self.session)
            .await
            .map_err(backend(&self.name))?
        {
            return Ok(false);
        }
        let pair = api.get(&self.path).await.map_err(backend(&self.name))?;
        Ok(pair.is_some_and(|p| p.session.as_deref() == Some(self.session.as_str())))
    }

    async fn release(&self) -> Result<(), StoreError> {
        let api = &self.inner.api;
        let released = api.release(&self.path, &self.session).await;
        // Destroying the session ends the lease whatever the release answered:
        // Consul refuses to release with a session it invalidated meanwhile (its
        // TTL ran out during an outage), and a session it no longer knows counts
        // as destroyed.
        api.destroy_session(&self.session)
            .await
            .map_err(backend(&self.name))?;
        if let Err(e) = released {
            tracing::debug!(lock = %self.name, error = %e, "lock key not released; its session is destroyed");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ttls_are_whole_seconds_in_consuls_range() {
        assert_eq!(session_ttl_secs(Duration::from_millis(100)), 10);
        assert_eq!(session_ttl_secs(Duration::from_millis(15_001)), 16);
        assert_eq!(session_ttl_secs(Duration::from_secs(60)), 60);
        assert_eq!(session_ttl_secs(Duration::from_secs(200_000)), 86_400);
    }
}
