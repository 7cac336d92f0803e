//! The Consul backend against the conformance suite and on Consul's own terms,
//! over HTTP to the Consul double (`tests/consul-double`).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use consul_double::{ConsulDouble, Endpoint};
use tokio::time::{timeout, Instant};

use super::{ConsulStore, ConsulStoreOptions};
use crate::store::conformance::Timing;
use crate::store::{Expect, LockError, Store, StoreError, WatchEvent, MAX_VALUE_LEN};

const PREFIX: &str = "wharf-test/";

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn options(url: &str) -> ConsulStoreOptions {
    ConsulStoreOptions {
        address: url.to_string(),
        prefix: PREFIX.into(),
        lock_delay: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
        watch_wait: Duration::from_secs(5),
        node_name: "test-node".into(),
        ..ConsulStoreOptions::default()
    }
}

fn store(url: &str) -> Arc<dyn Store> {
    Arc::new(ConsulStore::new(options(url)).unwrap())
}

/// One double for every conformance case (each works under its own prefix), on a
/// runtime of its own so it outlives each test's runtime.
fn shared_double() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let double = ConsulDouble::start(any_port()).await.unwrap();
                tx.send(double.url()).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    })
}

fn consul_timing() -> Timing {
    // Consul sessions live at least 10 s, and up to twice their TTL after a crash.
    Timing {
        lock_ttl: Duration::from_secs(10),
        watch_timeout: Duration::from_secs(10),
    }
}

mod conformance_cases {
    crate::store_conformance_tests!(
        || super::store(super::shared_double()),
        super::consul_timing()
    );
}

fn consul_key(key: &str) -> String {
    format!("{PREFIX}kv/{key}")
}

fn unique(case: &str) -> String {
    format!("consul/{:016x}/{case}", rand::random::<u64>())
}

#[tokio::test]
async fn versions_are_consuls_modify_index_with_cas() {
    let double = ConsulDouble::start(any_port()).await.unwrap();
    let (a, b) = (store(&double.url()), store(&double.url()));
    let key = unique("cas");
    let v1 = a.put(&key, b"one".to_vec(), Expect::Absent).await.unwrap();
    let raw = double.state().entry(&consul_key(&key)).unwrap();
    assert_eq!(raw.modify_index, v1, "version is ModifyIndex");
    assert_eq!(raw.value, b"one");
    let v2 = b
        .put(&key, b"two".to_vec(), Expect::Version(v1))
        .await
        .unwrap();
    assert_eq!(
        double
            .state()
            .entry(&consul_key(&key))
            .unwrap()
            .modify_index,
        v2
    );
    match a.put(&key, b"stale".to_vec(), Expect::Version(v1)).await {
        Err(StoreError::Conflict { found, .. }) => assert_eq!(found, Some(v2)),
        r => panic!("expected a conflict, got {r:?}"),
    }
    assert_eq!(
        double.state().entry(&consul_key(&key)).unwrap().value,
        b"two"
    );
    assert_eq!(a.get(&key).await.unwrap().unwrap().version, v2);
    // Every key character survives the URL path: account keys hold an email.
    let odd = format!("{}/ops+le@example.com/a_b-c.d", unique("chars"));
    let v = a.put(&odd, b"e".to_vec(), Expect::Absent).await.unwrap();
    assert_eq!(
        double
            .state()
            .entry(&consul_key(&odd))
            .unwrap()
            .modify_index,
        v
    );
    assert_eq!(b.list(&odd).await.unwrap()[0].0, odd);
}

#[tokio::test]
async fn values_over_512_kb_are_refused_before_sending() {
    let double = ConsulDouble::start(any_port()).await.unwrap();
    let s = store(&double.url());
    let key = unique("big");
    let puts = double.requests(Endpoint::KvPut);
    match s.put(&key, vec![1u8; MAX_VALUE_LEN + 1], Expect::Any).await {
        Err(e @ StoreError::ValueTooLarge { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&key) && text.contains(&(MAX_VALUE_LEN + 1).to_string()),
                "{text}"
            );
        }
        r => panic!("expected ValueTooLarge, got {r:?}"),
    }
    assert_eq!(double.requests(Endpoint::KvPut), puts, "nothing sent");
    s.put(&key, vec![1u8; MAX_VALUE_LEN], Expect::Any)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_is_lost_when_its_session_is_destroyed_and_lock_delay_holds() {
    let double = ConsulDouble::start(any_port()).await.unwrap();
    let mut opts = options(&double.url());
    opts.lock_delay = Duration::from_secs(4);
    let (a, b) = (
        ConsulStore::new(opts.clone()).unwrap(),
        ConsulStore::new(opts).unwrap(),
    );
    let name = unique("lost");
    let ttl = Duration::from_secs(10);
    let lock = a.lock(&name, ttl, Duration::ZERO).await.unwrap();
    let session = double
        .state()
        .entry(&format!("{PREFIX}locks/{name}"))
        .and_then(|e| e.session)
        .expect("lock key held by a session");
    double.state().invalidate_session(&session);
    let destroyed = Instant::now();
    assert!(
        matches!(
            b.lock(&name, ttl, Duration::ZERO).await,
            Err(LockError::Busy { .. })
        ),
        "lock-delay keeps the lock after the session is lost"
    );
    timeout(ttl / 2, lock.lost())
        .await
        .expect("lost fires at the next renewal (every TTL/3)");
    let taken = b.lock(&name, ttl, Duration::from_secs(10)).await.unwrap();
    let after = destroyed.elapsed();
    assert!(
        after >= Duration::from_millis(3900),
        "taken {after:?} after the loss, inside the 4 s lock-delay"
    );
    assert!(taken.token() > lock.token());
    taken.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_lost_in_an_outage_is_free_as_soon_as_consul_is_back() {
    let mut double = ConsulDouble::start(any_port()).await.unwrap();
    let (a, b) = (store(&double.url()), store(&double.url()));
    let name = unique("outage");
    let ttl = Duration::from_secs(10);
    let lock = a.lock(&name, ttl, Duration::ZERO).await.unwrap();
    double.stop().await;
    timeout(ttl, lock.lost())
        .await
        .expect("lost 2/3 of the TTL after the last renewal");
    drop(lock);
    // The release on drop fails while Consul is still down.
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Consul restarts the session's timer on recovery: it would hold the key for
    // up to 2 x TTL more, were the dropped lock not released.
    double.resume().await.unwrap();
    let back = Instant::now();
    let taken = b.lock(&name, ttl, Duration::from_secs(15)).await.unwrap();
    let after = back.elapsed();
    assert!(
        after < Duration::from_secs(8),
        "taken {after:?} after Consul came back"
    );
    taken.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_wakes_within_a_second_of_another_handles_write() {
    let double = ConsulDouble::start(any_port()).await.unwrap();
    let (a, b) = (store(&double.url()), store(&double.url()));
    // The double's first write gets Raft index 1, which a blocking query on an
    // empty prefix (index 1) cannot see; a real Consul's first KV write has a
    // larger index (its Raft log starts with configuration entries).
    b.put(&unique("warm-up"), b"-".to_vec(), Expect::Any)
        .await
        .unwrap();
    let ns = unique("watch");
    let mut w = a.watch(&ns).await.unwrap();
    // Let the watch settle into its blocking query.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let key = format!("{ns}/k");
    let written = Instant::now();
    let v = b.put(&key, b"x".to_vec(), Expect::Any).await.unwrap();
    let event = timeout(Duration::from_secs(5), w.recv())
        .await
        .unwrap()
        .unwrap();
    let latency = written.elapsed();
    assert_eq!(event, WatchEvent::Put { key, version: v });
    assert!(
        latency < Duration::from_secs(1),
        "watch saw the write after {latency:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_gives_typed_errors_and_the_watch_resumes() {
    let mut double = ConsulDouble::start(any_port()).await.unwrap();
    let url = double.url();
    let (a, b) = (store(&url), store(&url));
    let ns = unique("outage");
    let mut w = a.watch(&ns).await.unwrap();
    let before = format!("{ns}/before");
    b.put(&before, b"1".to_vec(), Expect::Any).await.unwrap();
    assert!(matches!(w.recv().await, Some(WatchEvent::Put { .. })));
    assert!(a.status().unwrap().connected);

    double.stop().await;
    match a.get(&before).await {
        Err(e @ StoreError::Backend { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&url), "error names Consul's address: {text}");
            let source = std::error::Error::source(&e).unwrap();
            assert!(source.downcast_ref::<super::ConsulError>().is_some());
        }
        r => panic!("expected a backend error, got {r:?}"),
    }
    assert!(matches!(
        a.lock(&unique("l"), Duration::from_secs(10), Duration::ZERO)
            .await,
        Err(LockError::Store(StoreError::Backend { .. }))
    ));
    let status = a.status().unwrap();
    assert!(!status.connected, "{status:?}");
    assert!(status.last_error.unwrap().contains(&url));
    // Let the watch notice the outage and back off.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(w.try_recv().is_none());

    double.resume().await.unwrap();
    let during = format!("{ns}/during");
    let v = b.put(&during, b"2".to_vec(), Expect::Any).await.unwrap();
    b.delete(&before, Expect::Any).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = timeout(Duration::from_secs(15), w.recv())
            .await
            .expect("the watch resumed")
            .unwrap();
        seen.push(event);
    }
    assert!(
        seen.contains(&WatchEvent::Put {
            key: during,
            version: v
        }),
        "{seen:?}"
    );
    assert!(
        seen.contains(&WatchEvent::Deleted { key: before }),
        "{seen:?}"
    );
    assert!(a.status().unwrap().connected);
}

#[tokio::test]
async fn the_acl_token_is_sent_and_a_refusal_names_consul() {
    let double = ConsulDouble::start(any_port()).await.unwrap();
    double.set_token(Some("t0ken"));
    let key = unique("acl");
    let denied = store(&double.url());
    let err = denied
        .put(&key, b"x".to_vec(), Expect::Any)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let status = denied.status().unwrap();
    assert!(status.connected, "Consul answered: {status:?}");
    let allowed = ConsulStore::new(ConsulStoreOptions {
        token: Some("t0ken".into()),
        ..options(&double.url())
    })
    .unwrap();
    allowed.put(&key, b"x".to_vec(), Expect::Any).await.unwrap();
    let mut w = allowed.watch(&key).await.unwrap();
    allowed.put(&key, b"y".to_vec(), Expect::Any).await.unwrap();
    assert!(timeout(Duration::from_secs(5), w.recv())
        .await
        .unwrap()
        .is_some());
}

#[test]
fn bad_settings_are_refused_naming_the_setting() {
    let bad = |o: ConsulStoreOptions| ConsulStore::new(o).unwrap_err().to_string();
    let base = options("http://127.0.0.1:8500");
    for address in [
        "127.0.0.1:8500",
        "http://",
        "http://bad host:8500",
        "http://127.0.0.1:8500/v1",
        "ftp://127.0.0.1",
    ] {
        let err = bad(ConsulStoreOptions {
            address: address.into(),
            ..base.clone()
        });
        assert!(err.contains("address"), "{address}: {err}");
    }
    ConsulStore::new(ConsulStoreOptions {
        address: "https://consul.internal:8501/".into(),
        ..base.clone()
    })
    .unwrap();
    assert!(bad(ConsulStoreOptions {
        prefix: "a//b".into(),
        ..base.clone()
    })
    .contains("prefix"));
    assert!(bad(ConsulStoreOptions {
        token: Some("a b".into()),
        ..base.clone()
    })
    .contains("token"));
    let s = ConsulStore::new(ConsulStoreOptions {
        prefix: "/team/wharf".into(),
        ..base
    })
    .unwrap();
    assert_eq!(s.prefix(), "team/wharf/");
}

#[tokio::test]
async fn the_datacenter_is_sent_with_every_call_including_session_creation() {
    let double = ConsulDouble::start(any_port()).await.unwrap();
    let in_dc = |dc: &str| {
        ConsulStore::new(ConsulStoreOptions {
            datacenter: Some(dc.into()),
            ..options(&double.url())
        })
        .unwrap()
    };
    let (home, away) = (in_dc("dc1"), in_dc("dc9"));
    let key = unique("dc");
    home.put(&key, b"x".to_vec(), Expect::Any).await.unwrap();
    assert_eq!(home.list(&key).await.unwrap().len(), 1);
    let lock = home
        .lock(&key, Duration::from_secs(10), Duration::ZERO)
        .await
        .unwrap();
    lock.release().await.unwrap();
    assert!(away.get(&key).await.is_err(), "dc9 does not exist");
    assert!(matches!(
        away.lock(&key, Duration::from_secs(10), Duration::ZERO)
            .await,
        Err(LockError::Store(StoreError::Backend { .. }))
    ));
}
