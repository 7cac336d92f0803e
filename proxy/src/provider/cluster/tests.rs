//! The cluster provider against a real file store shared by several providers in one
//! process, as several nodes would share it.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use wharf_certstore::store::{Expect, FileStore, FileStoreOptions, Store};

use super::settings::Eligibility;
use super::*;
use crate::config::static_config::ClusterMode;

/// Generous: the machine running the tests may be busy.
const PATIENCE: Duration = Duration::from_secs(20);

struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("wharf-cluster-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn store(&self) -> Arc<dyn Store> {
        let options = FileStoreOptions {
            poll_interval: Duration::from_millis(50),
            ..Default::default()
        };
        Arc::new(FileStore::open(&self.0, options).unwrap())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn settings(node: &str, eligibility: Eligibility) -> Settings {
    Settings {
        mode: ClusterMode::Auto,
        provider: "swarm",
        key: "routes/table".into(),
        lock: "routes/publisher".into(),
        ttl: Duration::from_millis(900),
        node: node.into(),
        instance: format!("{node}-instance"),
        eligibility,
    }
}

fn config(host: &str) -> DynamicConfig {
    serde_yaml_ng::from_str(&format!(
        "http:\n  routers:\n    r:\n      rule: Host(`{host}`)\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: http://10.0.0.1:80\n"
    ))
    .unwrap()
}

/// A node: its provider, what it feeds the aggregator, and its own provider's input.
struct TestNode {
    provider: ClusterProvider,
    out: mpsc::Receiver<ProviderUpdate>,
    local: mpsc::Sender<ProviderUpdate>,
}

fn start(store: Arc<dyn Store>, node: &str, eligibility: Eligibility) -> TestNode {
    let (tx, out) = mpsc::channel(16);
    let (local, local_rx) = mpsc::channel(16);
    let mut provider =
        ClusterProvider::spawn(settings(node, eligibility), store, Some(local_rx), None, tx);
    // Start-up does not wait here: everything comes through the channel.
    provider.first = None;
    TestNode {
        provider,
        out,
        local,
    }
}

impl TestNode {
    async fn feed(&self, host: &str) {
        self.local
            .send(ProviderUpdate {
                provider: "swarm",
                config: config(host),
            })
            .await
            .unwrap();
    }

    /// Waits until the node serves the configuration for `host`.
    async fn serves(&mut self, host: &str) {
        let want = config(host);
        tokio::time::timeout(PATIENCE, async {
            loop {
                let update = self.out.recv().await.unwrap();
                assert_eq!(update.provider, "swarm");
                if update.config == want {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("never served {host}"));
    }

    async fn becomes(&self, role: Role) -> ClusterStatus {
        let mut status = self.provider.status();
        let seen = tokio::time::timeout(PATIENCE, status.wait_for(|s| s.role == role))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "never became {role:?}: {:?}",
                    self.provider.status().borrow()
                )
            })
            .unwrap()
            .clone();
        seen
    }
}

#[tokio::test]
async fn a_follower_serves_what_the_publisher_writes() {
    let dir = Dir::new();
    let mut publisher = start(dir.store(), "manager-1", Eligibility::Always);
    let mut follower = start(dir.store(), "worker-1", Eligibility::Never);
    publisher.becomes(Role::Publisher).await;
    assert_eq!(follower.provider.status().borrow().role, Role::Follower);

    publisher.feed("a.example").await;
    publisher.serves("a.example").await;
    follower.serves("a.example").await;
    publisher.feed("b.example").await;
    follower.serves("b.example").await;

    let status = follower.provider.status().borrow().clone();
    let by = status.publisher.unwrap();
    assert_eq!(by.node, "manager-1");
    assert_eq!(by.instance, "manager-1-instance");
    assert!(status.last_received.is_some());
    assert!(publisher
        .provider
        .status()
        .borrow()
        .last_published
        .is_some());
    // The follower's own provider is never served.
    follower.feed("mine.example").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(follower.out.try_recv().is_err());
}

#[tokio::test]
async fn a_malformed_table_is_ignored_and_the_routes_stay() {
    let dir = Dir::new();
    let store = dir.store();
    let publisher = start(store.clone(), "manager-1", Eligibility::Always);
    let mut follower = start(dir.store(), "worker-1", Eligibility::Never);
    publisher.becomes(Role::Publisher).await;
    publisher.feed("a.example").await;
    follower.serves("a.example").await;

    store
        .put("routes/table", b"{ not a table".to_vec(), Expect::Any)
        .await
        .unwrap();
    let mut status = follower.provider.status();
    let error = tokio::time::timeout(PATIENCE, status.wait_for(|s| s.last_error.is_some()))
        .await
        .unwrap()
        .unwrap()
        .last_error
        .clone()
        .unwrap();
    assert!(error.contains("routes/table"), "{error}");
    assert!(follower.out.try_recv().is_err(), "routes stay");

    // The publisher rewrites over the bad entry on its next change.
    publisher.feed("b.example").await;
    follower.serves("b.example").await;
}

#[tokio::test]
async fn a_candidate_takes_over_from_a_crashed_publisher() {
    let dir = Dir::new();
    let store = dir.store();
    let mut follower = start(dir.store(), "worker-1", Eligibility::Never);
    let first = start(dir.store(), "manager-1", Eligibility::Always);
    first.becomes(Role::Publisher).await;
    first.feed("first.example").await;
    follower.serves("first.example").await;

    // A crash: the task stops and its lease is left to expire.
    first.provider.task.abort();
    let _ = first.provider.task.await;
    let crashed = store
        .lock("routes/publisher", Duration::from_millis(900), PATIENCE)
        .await
        .unwrap();
    crashed.abandon();

    let mut second = start(dir.store(), "manager-2", Eligibility::Always);
    assert_eq!(second.provider.status().borrow().role, Role::Candidate);
    // While not publishing, the candidate serves the stored table.
    second.serves("first.example").await;
    second.feed("second.example").await;
    second.becomes(Role::Publisher).await;
    second.serves("second.example").await;
    follower.serves("second.example").await;
    let by = follower
        .provider
        .status()
        .borrow()
        .publisher
        .clone()
        .unwrap();
    assert_eq!(by.node, "manager-2");
}

#[tokio::test]
async fn stopping_the_publisher_hands_over_without_waiting_for_the_lease() {
    let dir = Dir::new();
    let store = dir.store();
    let mut settings_long = settings("manager-1", Eligibility::Always);
    settings_long.ttl = Duration::from_secs(600);
    let (tx, _out) = mpsc::channel(16);
    let (local, local_rx) = mpsc::channel(16);
    let first = ClusterProvider::spawn(settings_long, store.clone(), Some(local_rx), None, tx);
    let mut status = first.status();
    tokio::time::timeout(PATIENCE, status.wait_for(|s| s.role == Role::Publisher))
        .await
        .unwrap()
        .unwrap();
    drop(local);
    first.stop().await;
    // With a ten-minute lease, only a release lets anyone in now.
    let lock = store
        .lock("routes/publisher", Duration::from_secs(1), PATIENCE)
        .await
        .unwrap();
    lock.release().await.unwrap();
}

#[tokio::test]
async fn a_candidate_starting_with_a_free_lock_serves_its_own_view_first() {
    let dir = Dir::new();
    let old = start(dir.store(), "manager-1", Eligibility::Always);
    old.becomes(Role::Publisher).await;
    old.feed("stale.example").await;
    let mut status = old.provider.status();
    tokio::time::timeout(PATIENCE, status.wait_for(|s| s.last_published.is_some()))
        .await
        .unwrap()
        .unwrap();
    old.provider.stop().await;

    // The stored table is stale; the lock is free: the new node's own view wins.
    let (tx, _out) = mpsc::channel(16);
    let mut fresh = ClusterProvider::spawn(
        settings("manager-2", Eligibility::Always),
        dir.store(),
        None,
        Some(config("fresh.example")),
        tx,
    );
    assert_eq!(fresh.initial(PATIENCE).await, Some(config("fresh.example")));
    let mut status = fresh.status();
    tokio::time::timeout(PATIENCE, status.wait_for(|s| s.role == Role::Publisher))
        .await
        .unwrap()
        .unwrap();

    // A follower starting meanwhile gets the stored table at once.
    let (tx, _out) = mpsc::channel(16);
    let mut follower = ClusterProvider::spawn(
        settings("worker-1", Eligibility::Never),
        dir.store(),
        None,
        None,
        tx,
    );
    let first = follower.initial(PATIENCE).await.unwrap();
    assert!(first == config("fresh.example") || first == config("stale.example"));
}

#[tokio::test]
async fn a_demoted_publisher_hands_over() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = Dir::new();
    let manager = Arc::new(AtomicBool::new(true));
    let first = start(dir.store(), "manager-1", Eligibility::Flag(manager.clone()));
    first.becomes(Role::Publisher).await;
    let mut second = start(dir.store(), "manager-2", Eligibility::Always);
    second.feed("second.example").await;

    manager.store(false, Ordering::SeqCst);
    first.becomes(Role::Follower).await;
    second.becomes(Role::Publisher).await;
    second.serves("second.example").await;

    // Promoted again: a candidate, behind the current publisher.
    manager.store(true, Ordering::SeqCst);
    first.becomes(Role::Candidate).await;
}

#[tokio::test]
async fn a_follower_keeps_its_table_when_the_store_goes_away() {
    let dir = Dir::new();
    let publisher = start(dir.store(), "manager-1", Eligibility::Always);
    let mut follower = start(dir.store(), "worker-1", Eligibility::Never);
    publisher.becomes(Role::Publisher).await;
    publisher.feed("a.example").await;
    follower.serves("a.example").await;

    // The whole store disappears (unmounted, wiped): nothing is withdrawn.
    publisher.provider.task.abort();
    std::fs::remove_dir_all(&dir.0).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(follower.out.try_recv().is_err(), "routes stay");
    let status = follower.provider.status().borrow().clone();
    assert_eq!(status.publisher.unwrap().node, "manager-1");
}
