//! Conformance cases for entries: reads, writes, compare-and-swap, listing, watches.

use std::time::Duration;

use super::{namespace, Make, Timing};
use crate::store::{Entry, Expect, LockError, StoreError, WatchEvent, WatchStream, MAX_VALUE_LEN};

fn conflict_found(result: Result<impl std::fmt::Debug, StoreError>, key: &str) -> Option<u64> {
    match result {
        Err(StoreError::Conflict { key: k, found, .. }) => {
            assert_eq!(k, key, "conflict names the key");
            found
        }
        other => panic!("expected a conflict on {key}, got {other:?}"),
    }
}

/// Plain get, put and delete, seen from a second handle; versions grow and are not
/// reused after a delete.
pub async fn get_put_delete(make: Make<'_>, _timing: &Timing) {
    let (a, b) = (make(), make());
    let key = format!("{}/k", namespace("get_put_delete"));
    assert_eq!(a.get(&key).await.unwrap(), None);
    let v1 = a.put(&key, b"one".to_vec(), Expect::Any).await.unwrap();
    assert!(v1 >= 1, "versions start at 1");
    let entry = b.get(&key).await.unwrap().expect("written entry visible");
    assert_eq!(
        entry,
        Entry {
            value: b"one".to_vec(),
            version: v1
        }
    );
    let v2 = b.put(&key, Vec::new(), Expect::Any).await.unwrap();
    assert!(v2 > v1, "a write raises the version ({v1} -> {v2})");
    assert_eq!(
        a.get(&key).await.unwrap().unwrap(),
        Entry {
            value: vec![],
            version: v2
        }
    );
    a.delete(&key, Expect::Any).await.unwrap();
    assert_eq!(b.get(&key).await.unwrap(), None);
    a.delete(&key, Expect::Any)
        .await
        .expect("deleting a missing key with Any is fine");
    let binary: Vec<u8> = (0..=255u8).cycle().take(300 * 1024).collect();
    let v3 = b.put(&key, binary.clone(), Expect::Any).await.unwrap();
    assert!(
        v3 > v2,
        "a re-created key does not reuse versions ({v2} -> {v3})"
    );
    assert_eq!(a.get(&key).await.unwrap().unwrap().value, binary);
    let too_big = vec![0u8; MAX_VALUE_LEN + 1];
    assert!(matches!(
        a.put(&key, too_big, Expect::Any).await,
        Err(StoreError::ValueTooLarge { .. })
    ));
    let max = vec![7u8; MAX_VALUE_LEN];
    a.put(&key, max, Expect::Any)
        .await
        .expect("MAX_VALUE_LEN bytes fit");
}

/// `Expect::Absent` creates only; a failed CAS writes nothing.
pub async fn cas_absent(make: Make<'_>, _timing: &Timing) {
    let (a, b) = (make(), make());
    let key = format!("{}/k", namespace("cas_absent"));
    let v = a
        .put(&key, b"first".to_vec(), Expect::Absent)
        .await
        .unwrap();
    let found = conflict_found(b.put(&key, b"second".to_vec(), Expect::Absent).await, &key);
    assert_eq!(found, Some(v));
    assert_eq!(a.get(&key).await.unwrap().unwrap().value, b"first");
    let found = conflict_found(b.delete(&key, Expect::Absent).await, &key);
    assert_eq!(found, Some(v));
    assert!(
        a.get(&key).await.unwrap().is_some(),
        "failed delete kept the entry"
    );
    a.delete(&key, Expect::Any).await.unwrap();
    b.delete(&key, Expect::Absent)
        .await
        .expect("missing key satisfies Absent");
    b.put(&key, b"again".to_vec(), Expect::Absent)
        .await
        .expect("create after delete");
}

/// `Expect::Version` succeeds only on the exact current version, also across a
/// delete and re-create (no ABA).
pub async fn cas_version(make: Make<'_>, _timing: &Timing) {
    let (a, b) = (make(), make());
    let key = format!("{}/k", namespace("cas_version"));
    let found = conflict_found(a.put(&key, b"x".to_vec(), Expect::Version(1)).await, &key);
    assert_eq!(found, None);
    assert_eq!(
        conflict_found(a.delete(&key, Expect::Version(1)).await, &key),
        None
    );
    assert_eq!(
        a.get(&key).await.unwrap(),
        None,
        "failed CAS created nothing"
    );
    let v1 = a.put(&key, b"1".to_vec(), Expect::Absent).await.unwrap();
    let v2 = b
        .put(&key, b"2".to_vec(), Expect::Version(v1))
        .await
        .unwrap();
    assert!(v2 > v1);
    let found = conflict_found(
        a.put(&key, b"stale".to_vec(), Expect::Version(v1)).await,
        &key,
    );
    assert_eq!(found, Some(v2));
    assert_eq!(
        conflict_found(a.delete(&key, Expect::Version(v1)).await, &key),
        Some(v2)
    );
    assert_eq!(
        b.get(&key).await.unwrap().unwrap(),
        Entry {
            value: b"2".to_vec(),
            version: v2
        }
    );
    a.delete(&key, Expect::Version(v2)).await.unwrap();
    assert_eq!(b.get(&key).await.unwrap(), None);
    // Re-create until the key passes its old versions again: none may match.
    let mut last = 0;
    for _ in 0..3 {
        last = b.put(&key, b"n".to_vec(), Expect::Any).await.unwrap();
    }
    assert!(last > v2 + 2, "versions keep growing after a delete");
    for old in [v1, v2] {
        let r = a.put(&key, b"aba".to_vec(), Expect::Version(old)).await;
        assert_eq!(conflict_found(r, &key), Some(last));
    }
}

/// Invalid keys and prefixes are errors everywhere.
pub async fn invalid_keys(make: Make<'_>, timing: &Timing) {
    let s = make();
    for key in [
        "", "/a", "a/", "a//b", "..", "a/../b", "a/./b", ".hidden", "a b", "a\\b", "é",
    ] {
        let invalid = |r: Result<(), StoreError>| {
            assert!(
                matches!(r, Err(StoreError::InvalidKey { .. })),
                "{key:?} must be invalid, got {r:?}"
            )
        };
        invalid(s.get(key).await.map(drop));
        invalid(s.put(key, vec![], Expect::Any).await.map(drop));
        invalid(s.delete(key, Expect::Any).await);
        invalid(s.break_lock(key).await.map(drop));
        let lock = s.lock(key, timing.lock_ttl, Duration::ZERO).await;
        assert!(
            matches!(lock, Err(LockError::Store(StoreError::InvalidKey { .. }))),
            "lock {key:?}: {lock:?}"
        );
        // "" and "a/" are valid prefixes.
        if !matches!(key, "" | "a/") {
            invalid(s.list(key).await.map(drop));
            invalid(s.watch(key).await.map(drop));
        }
    }
}

/// Listing returns the prefix and what is below it, whole segments only, sorted.
pub async fn list_by_prefix(make: Make<'_>, _timing: &Timing) {
    let (a, b) = (make(), make());
    let ns = namespace("list_by_prefix");
    let mut versions = Vec::new();
    for key in ["a/x", "a/x/y", "a/x/y/z", "a/xy", "b/x", "ab"] {
        let key = format!("{ns}/{key}");
        versions.push((
            key.clone(),
            a.put(&key, key.clone().into_bytes(), Expect::Any)
                .await
                .unwrap(),
        ));
    }
    let keys = |entries: Vec<(String, Entry)>| -> Vec<String> {
        for (k, e) in &entries {
            assert_eq!(&e.value, k.as_bytes(), "value listed with its key");
            let v = versions.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
            assert_eq!(Some(e.version), v, "version listed with {k}");
        }
        entries
            .into_iter()
            .map(|(k, _)| k.strip_prefix(&format!("{ns}/")).unwrap().to_string())
            .collect()
    };
    assert_eq!(
        keys(b.list(&format!("{ns}/a/x")).await.unwrap()),
        ["a/x", "a/x/y", "a/x/y/z"]
    );
    assert_eq!(
        keys(b.list(&format!("{ns}/a/x/")).await.unwrap()),
        ["a/x", "a/x/y", "a/x/y/z"]
    );
    assert_eq!(
        keys(b.list(&format!("{ns}/a")).await.unwrap()),
        ["a/x", "a/x/y", "a/x/y/z", "a/xy"]
    );
    assert_eq!(keys(b.list(&format!("{ns}/b")).await.unwrap()), ["b/x"]);
    assert_eq!(
        keys(b.list(&format!("{ns}/a/x/y/z")).await.unwrap()),
        ["a/x/y/z"]
    );
    assert!(b.list(&format!("{ns}/c")).await.unwrap().is_empty());
    assert!(b.list(&format!("{ns}/a/x/y/z/w")).await.unwrap().is_empty());
    assert_eq!(keys(b.list(&ns).await.unwrap()).len(), 6);
    a.delete(&format!("{ns}/a/x"), Expect::Any).await.unwrap();
    assert_eq!(
        keys(b.list(&format!("{ns}/a/x")).await.unwrap()),
        ["a/x/y", "a/x/y/z"]
    );
    let all = b.list("").await.unwrap();
    assert!(
        all.iter().any(|(k, _)| k == &format!("{ns}/ab")),
        "empty prefix lists everything"
    );
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "sorted by key");
}

async fn next_event(w: &mut WatchStream, timing: &Timing, what: &str) -> WatchEvent {
    match tokio::time::timeout(timing.watch_timeout, w.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("watch ended while waiting for {what}"),
        Err(_) => panic!(
            "no watch event within {:?} for {what}",
            timing.watch_timeout
        ),
    }
}

/// A watch sees another handle's creates, updates and deletes under its prefix,
/// and nothing outside it.
pub async fn watch_sees_other_handle(make: Make<'_>, timing: &Timing) {
    let (a, b) = (make(), make());
    let ns = namespace("watch");
    let early = format!("{ns}/in/early");
    b.put(&early, b"before".to_vec(), Expect::Any)
        .await
        .unwrap();
    let mut w = a.watch(&format!("{ns}/in")).await.unwrap();
    let key = format!("{ns}/in/k");
    for outside in [
        format!("{ns}/inx"),
        format!("{ns}/out/k"),
        format!("{ns}/i"),
    ] {
        b.put(&outside, b"no".to_vec(), Expect::Any).await.unwrap();
    }
    let v1 = b.put(&key, b"1".to_vec(), Expect::Absent).await.unwrap();
    let expect_event = |got: WatchEvent, want: WatchEvent| {
        assert_eq!(
            got, want,
            "watch of {ns}/in: only changes under it, after it started"
        );
    };
    expect_event(
        next_event(&mut w, timing, "create").await,
        WatchEvent::Put {
            key: key.clone(),
            version: v1,
        },
    );
    let v2 = b
        .put(&key, b"2".to_vec(), Expect::Version(v1))
        .await
        .unwrap();
    expect_event(
        next_event(&mut w, timing, "update").await,
        WatchEvent::Put {
            key: key.clone(),
            version: v2,
        },
    );
    b.delete(&key, Expect::Any).await.unwrap();
    expect_event(
        next_event(&mut w, timing, "delete").await,
        WatchEvent::Deleted { key: key.clone() },
    );
    let nested = format!("{ns}/in/deep/er");
    let v = b.put(&nested, b"3".to_vec(), Expect::Any).await.unwrap();
    expect_event(
        next_event(&mut w, timing, "nested create").await,
        WatchEvent::Put {
            key: nested,
            version: v,
        },
    );
    assert!(w.try_recv().is_none(), "no further events");
}

/// Concurrent compare-and-swap increments from several handles lose no update.
pub async fn cas_increments_are_exact(make: Make<'_>, _timing: &Timing) {
    const TASKS: u64 = 8;
    const EACH: u64 = 5;
    let key = format!("{}/counter", namespace("cas_increments"));
    make()
        .put(&key, b"0".to_vec(), Expect::Absent)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (store, key) = (make(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            for _ in 0..EACH {
                loop {
                    let entry = store.get(&key).await.unwrap().expect("counter exists");
                    let n: u64 = std::str::from_utf8(&entry.value).unwrap().parse().unwrap();
                    let next = (n + 1).to_string().into_bytes();
                    match store.put(&key, next, Expect::Version(entry.version)).await {
                        Ok(_) => break,
                        Err(e) if e.is_conflict() => conflicts += 1,
                        Err(e) => panic!("increment failed: {e}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let entry = make().get(&key).await.unwrap().unwrap();
    assert_eq!(
        entry.value,
        (TASKS * EACH).to_string().into_bytes(),
        "after {conflicts} conflicts"
    );
}
