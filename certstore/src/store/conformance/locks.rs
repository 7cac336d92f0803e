//! Conformance cases for leased locks.

use std::time::Duration;

use tokio::time::{timeout, Instant};

use super::{namespace, Make, Timing};
use crate::store::{Lock, LockError};

fn held(result: Result<Lock, LockError>, what: &str) -> Lock {
    match result {
        Ok(lock) => lock,
        Err(e) => panic!("{what}: expected the lock, got {e}"),
    }
}

fn busy(result: Result<Lock, LockError>, what: &str) {
    match result {
        Err(LockError::Busy { .. }) => {}
        Ok(lock) => panic!("{what}: got {lock:?} while another owner holds it"),
        Err(e) => panic!("{what}: expected Busy, got {e}"),
    }
}

/// Only one handle holds a lock at a time, even well past its TTL (renewal works);
/// a waiter gets it once it is released; tokens grow.
pub async fn lock_exclusive(make: Make<'_>, timing: &Timing) {
    let ttl = timing.lock_ttl;
    let (a, b) = (make(), make());
    let name = namespace("lock_exclusive");
    let first = held(a.lock(&name, ttl, Duration::ZERO).await, "free lock");
    assert_eq!(first.name(), name);
    busy(
        b.lock(&name, ttl, Duration::ZERO).await,
        "try-once while held",
    );
    busy(
        a.lock(&name, ttl, Duration::ZERO).await,
        "same handle, second lock",
    );

    // Waiting past the TTL: the holder renews, so the waiter must still time out,
    // and not return before its wait is over.
    let wait = ttl + ttl / 2;
    let started = Instant::now();
    busy(
        b.lock(&name, ttl, wait).await,
        "waiting past the TTL while held",
    );
    let waited = started.elapsed();
    assert!(
        waited >= wait,
        "Busy after {waited:?}, before the {wait:?} wait ran out"
    );
    assert!(!first.is_lost(), "the holder kept its lease");

    // A waiter gets it after the holder releases.
    let waiter = {
        let (b, name) = (b.clone(), name.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            (b.lock(&name, ttl, ttl * 4).await, started.elapsed())
        })
    };
    tokio::time::sleep(ttl / 3).await;
    assert!(
        !waiter.is_finished(),
        "waiter got the lock while it was held"
    );
    let first_token = first.token();
    first.release().await.unwrap();
    let (second, waited) = waiter.await.unwrap();
    let second = held(second, "waiter after release");
    assert!(
        waited < ttl * 2,
        "waiter took {waited:?}, release was not seen"
    );
    assert!(second.token() > first_token, "fencing tokens grow");

    // Released on drop (in the background), well before the TTL.
    drop(second);
    let started = Instant::now();
    let third = held(a.lock(&name, ttl, ttl * 3 / 4).await, "after drop");
    assert!(
        started.elapsed() < ttl,
        "dropped lock was released, not expired"
    );
    third.release().await.unwrap();

    // Many handles racing for a free lock: exactly one wins.
    let name = namespace("lock_race");
    let mut racers = Vec::new();
    for _ in 0..6 {
        let (s, name) = (make(), name.clone());
        racers.push(tokio::spawn(async move {
            s.lock(&name, ttl, Duration::ZERO).await
        }));
    }
    let mut winners = Vec::new();
    for r in racers {
        match r.await.unwrap() {
            Ok(lock) => winners.push(lock),
            Err(LockError::Busy { .. }) => {}
            Err(e) => panic!("racer failed: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one racer holds the lock");
}

/// A holder that stops renewing (a crash) blocks others until its TTL runs out,
/// then loses the lock to them.
pub async fn lock_takeover_after_ttl(make: Make<'_>, timing: &Timing) {
    let ttl = timing.lock_ttl;
    let (a, b) = (make(), make());
    let name = namespace("lock_takeover");
    let acquired = Instant::now();
    let crashed = held(a.lock(&name, ttl, Duration::ZERO).await, "free lock");
    let token = crashed.token();
    crashed.abandon();
    busy(
        b.lock(&name, ttl, Duration::ZERO).await,
        "right after the crash",
    );
    let taken = held(b.lock(&name, ttl, ttl * 3).await, "after the TTL");
    let after = acquired.elapsed();
    assert!(
        after >= ttl * 9 / 10,
        "taken over after {after:?}, before the {ttl:?} TTL"
    );
    assert!(taken.token() > token, "fencing tokens grow");
    busy(
        a.lock(&name, ttl, Duration::ZERO).await,
        "new holder's lease is live",
    );
    taken.release().await.unwrap();
}

/// Breaking a lock frees it and the holder's `lost` fires.
pub async fn lost_when_broken(make: Make<'_>, timing: &Timing) {
    let ttl = timing.lock_ttl;
    let (a, b) = (make(), make());
    let name = namespace("lost_when_broken");
    assert!(!b.break_lock(&name).await.unwrap(), "nothing to break yet");
    let lock = held(a.lock(&name, ttl, Duration::ZERO).await, "free lock");
    let lost = lock.lost();
    assert!(
        b.break_lock(&name).await.unwrap(),
        "a live lease was broken"
    );
    timeout(ttl, lost)
        .await
        .expect("lost fires within the TTL after a break");
    assert!(lock.is_lost());
    assert!(!b.break_lock(&name).await.unwrap(), "already broken");
    let other = held(
        b.lock(&name, ttl, Duration::ZERO).await,
        "broken lock is free",
    );
    assert!(other.token() > lock.token());
    // The old holder's release must not free the new holder's lease.
    lock.release().await.unwrap();
    busy(
        a.lock(&name, ttl, Duration::ZERO).await,
        "old holder released late",
    );
    other.release().await.unwrap();
}

/// When another owner takes the lease over, the old holder's `lost` fires and its
/// release leaves the new lease alone.
pub async fn lost_when_taken_over(make: Make<'_>, timing: &Timing) {
    let ttl = timing.lock_ttl;
    let (a, b, c) = (make(), make(), make());
    let name = namespace("lost_when_taken_over");
    let old = held(a.lock(&name, ttl, Duration::ZERO).await, "free lock");
    let mut lost = old.lost_watch();
    b.break_lock(&name).await.unwrap();
    let new = held(b.lock(&name, ttl, Duration::ZERO).await, "takeover");
    timeout(ttl, lost.wait_for(|l| *l))
        .await
        .expect("lost fires within the TTL after a takeover")
        .ok();
    assert!(old.is_lost());
    drop(old);
    tokio::time::sleep(ttl / 3).await;
    busy(
        c.lock(&name, ttl, Duration::ZERO).await,
        "dropped old holder left the new lease",
    );
    assert!(!new.is_lost(), "new holder keeps renewing");
    new.release().await.unwrap();
    held(c.lock(&name, ttl, Duration::ZERO).await, "after release")
        .release()
        .await
        .unwrap();
}
