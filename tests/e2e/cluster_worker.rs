//! Worker-node mode: wharf processes sharing one file store. A publisher writes its
//! routing table to the store, a follower that has no provider of its own routes by
//! it, keeps routing when the publisher dies, and follows the candidate that takes
//! over after the lock's TTL.
//!
//! The shared provider is the file provider (`cluster.provider: file`): it is what a
//! manager's swarm provider would be, without needing a swarm whose task addresses
//! the host cannot reach.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::backends::Backend;
use crate::harness::{eventually, router, service, unique_dir, Options, Wharf};

/// The publisher lock's lease in these tests.
const LOCK_TTL: &str = "2s";

/// Generous: takeover needs the TTL to run out, on a possibly busy machine.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// Removes the shared store directory at the end of the test.
struct StoreDir(PathBuf);

impl Drop for StoreDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Options for a cluster node named `node` in `mode`, sharing `store`.
fn node_options(store: &Path, node: &str, mode: &str) -> Options {
    node_options_ttl(store, node, mode, LOCK_TTL)
}

/// [`node_options`] with the lock's lease `ttl`.
fn node_options_ttl(store: &Path, node: &str, mode: &str, ttl: &str) -> Options {
    Options {
        file_provider: mode != "follower",
        static_extra: json!({
            "certStore": { "file": {
                "directory": store.to_string_lossy(),
                "pollInterval": "100ms",
            }},
            "cluster": {
                "mode": mode,
                "provider": "file",
                "nodeName": node,
                "lockTTL": ttl,
            },
        }),
        ..Options::default()
    }
}

fn routes(name: &str, host: &str, url: &str) -> Value {
    json!({ "http": {
        "routers": { name: router(&format!("Host(`{host}`)"), name) },
        "services": { name: service(&[url]) },
    }})
}

/// `/api/cluster` once `check` accepts it.
async fn cluster_state(wharf: &Wharf, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually(what, TAKEOVER_TIMEOUT, || async {
        let state = wharf.api("/api/cluster").await;
        if check(&state) {
            Ok(state)
        } else {
            Err(state)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_routes_by_the_publishers_table_and_survives_a_takeover() {
    let store = StoreDir(unique_dir());
    let a = Backend::echo("a").await;
    let c = Backend::echo("c").await;
    let table_a = routes("app-a", "a.test", &a.url());

    // A publishes its file routes.
    let publisher = Wharf::start_with(
        node_options(&store.0, "node-a", "publisher"),
        table_a.clone(),
    )
    .await;
    let state = cluster_state(&publisher, "A to publish", |s| {
        s["role"] == "publisher" && s["lastPublished"].is_string()
    })
    .await;
    assert_eq!(state["node"], "node-a");

    // B has no provider: everything it routes comes from A's table.
    let follower = Wharf::start_with(
        node_options(&store.0, "node-b", "follower"),
        table_a.clone(),
    )
    .await;
    assert_eq!(follower.echo("a.test", "/hello").await["name"], "a");
    let state = follower.api("/api/cluster").await;
    assert_eq!(state["role"], "follower");
    assert_eq!(state["publisher"]["node"], "node-a");
    assert!(state["lastReceived"].is_string(), "{state}");
    let overview = follower.api("/api/overview").await;
    assert_eq!(overview["cluster"]["role"], "follower");

    // A dies without releasing its lock: B keeps the last good table, past the TTL.
    drop(publisher);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(follower.echo("a.test", "/").await["name"], "a");
    assert_eq!(
        follower.api("/api/cluster").await["publisher"]["node"],
        "node-a"
    );

    // C, a new candidate, takes over once A's lease has run out; B follows it.
    let candidate = Wharf::start_with(
        node_options(&store.0, "node-c", "auto"),
        routes("app-c", "c.test", &c.url()),
    )
    .await;
    cluster_state(&candidate, "C to publish", |s| s["role"] == "publisher").await;
    let state = cluster_state(&follower, "B to follow C", |s| {
        s["publisher"]["node"] == "node-c"
    })
    .await;
    assert_eq!(state["role"], "follower");
    eventually("B to route c.test", TAKEOVER_TIMEOUT, || async {
        let reply = follower.get("c.test", "/").await;
        if reply.status == 200 && reply.json()["name"] == "c" {
            Ok(())
        } else {
            Err(reply.status)
        }
    })
    .await;
    assert_eq!(
        follower.get("a.test", "/").await.status,
        404,
        "A's routes are gone with its table"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_publisher_hands_the_lock_over_at_once() {
    let store = StoreDir(unique_dir());
    let a = Backend::echo("a").await;
    let d = Backend::echo("d").await;
    let table_a = routes("app-a", "a.test", &a.url());
    // A lease far longer than the test: only a release lets D in.
    let ttl = "10m";
    let publisher = Wharf::start_with(
        node_options_ttl(&store.0, "node-a", "publisher", ttl),
        table_a.clone(),
    )
    .await;
    cluster_state(&publisher, "A to publish", |s| {
        s["lastPublished"].is_string()
    })
    .await;

    // D is a candidate: until it holds the lock it serves A's table.
    let candidate =
        Wharf::start_with(node_options_ttl(&store.0, "node-d", "auto", ttl), table_a).await;
    assert_eq!(candidate.echo("a.test", "/").await["name"], "a");
    let state = candidate.api("/api/cluster").await;
    assert_eq!(state["role"], "candidate", "{state}");
    assert_eq!(state["publisher"]["node"], "node-a");

    // D's own view changes; as a candidate it keeps serving the stored table.
    candidate.write_dynamic_raw(&crate::harness::to_yaml(&routes(
        "app-d",
        "d.test",
        &d.url(),
    )));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(candidate.echo("a.test", "/").await["name"], "a");
    assert_eq!(candidate.get("d.test", "/").await.status, 404);

    // SIGTERM: A releases the lock before draining; D takes over and serves its own
    // routes.
    publisher.terminate();
    let state = cluster_state(&candidate, "D to publish", |s| s["role"] == "publisher").await;
    assert_eq!(state["publisher"]["node"], "node-d");
    eventually("D to route d.test", TAKEOVER_TIMEOUT, || async {
        let reply = candidate.get("d.test", "/").await;
        if reply.status == 200 && reply.json()["name"] == "d" {
            Ok(())
        } else {
            Err(reply.status)
        }
    })
    .await;
}
