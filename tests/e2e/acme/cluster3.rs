//! Three wharf nodes sharing one Consul (the Consul double) and one Pebble.
//!
//! - Issuance: the nodes listen on the same port of 127.0.0.1, .2 and .3; the
//!   test domains resolve to 127.0.0.3, whose node has no resolver for them and so
//!   never orders. One of the other two orders (exactly one order), the third
//!   answers the CA's validation from the store, and all three serve the result.
//!   Then the node holding a domain's lock is killed (SIGKILL) while Pebble is
//!   slowly validating its order, and a survivor completes the certificate once the
//!   dead node's Consul session has expired.
//! - Worker mode on Consul: followers route by the table a publisher wrote, keep
//!   routing through a 30 s Consul outage, and receive the change the publisher made
//!   meanwhile once Consul is back; `/api/store` tells the outage.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use consul_double::ConsulDouble;
use serde_json::{json, Value};
use wharf_certstore::model::{certificate_key, Domains};
use wharf_proxy::provider::cluster::entry;

use super::node::{routers, Node};
use super::pebble::Pebble;
use super::{TestDir, ISSUE_TIMEOUT};
use crate::backends::Backend;
use crate::client;
use crate::harness::{eventually, free_port, router, service, Options, Wharf};

const PREFIX: &str = "wharf-cluster3/";

/// The address the test domains resolve to: the node that cannot order.
const ANSWERING: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// Takeover waits for the dead node's session: Consul invalidates a TTL session
/// up to twice its TTL (10 s) after the last renewal, then the lock-delay, then
/// the survivors' next look (every 10 s), then a slow validation.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(120);

/// `certStore` on the Consul double with the shortest session TTL Consul allows.
fn consul_store(consul: &ConsulDouble) -> Value {
    json!({ "consul": {
        "address": consul.url(),
        "prefix": PREFIX,
        "sessionTTL": "10s",
        "lockDelay": "1s",
    }})
}

/// The dynamic configuration of the node on [`ANSWERING`]: TLS routers for
/// `hosts` without a certificate resolver, so it serves certificates from the
/// store but never orders one.
fn routers_without_resolver(hosts: &[&str], backend_url: &str) -> Value {
    let routers: serde_json::Map<String, Value> = hosts
        .iter()
        .map(|host| {
            let name = host.split('.').next().unwrap_or(host).to_string();
            let router = json!({
                "rule": format!("Host(`{host}`)"),
                "service": "echo",
                "entryPoints": ["web"],
                "tls": {},
            });
            (name, router)
        })
        .collect();
    json!({ "http": {
        "routers": routers,
        "services": { "echo": { "loadBalancer": { "servers": [ { "url": backend_url } ] } } },
    }})
}

/// The nodes whose log shows they issued a certificate for `host`.
fn issuers<'a>(nodes: &[&'a Node], host: &str) -> Vec<&'a Node> {
    nodes
        .iter()
        .copied()
        .filter(|n| {
            n.log()
                .lines()
                .any(|l| l.contains("certificate issued and stored") && l.contains(host))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_order_once_and_survive_the_orderer_dying_mid_order() {
    let dir = TestDir::new("cluster3");
    let port = free_port();
    // Validation waits 0-5 s: the node killed below, at its order's creation,
    // has not finished it.
    let pebble = Pebble::start_slow(&dir.0, port, 6).await;
    let consul = ConsulDouble::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("consul double");
    let backend = Backend::echo("acme").await;
    let (one, two) = ("one.wharf.test", "two.wharf.test");
    pebble.add_a(one, ANSWERING).await;
    pebble.add_a(two, ANSWERING).await;

    let ordering = routers(&[(one, "http")], &backend.url());
    let answering = routers_without_resolver(&[one], &backend.url());
    let dirs = ["n1", "n2", "n3"].map(|n| dir.0.join(n));
    let (n1, n2, n3) = tokio::join!(
        Node::start_at(
            &dirs[0],
            &pebble,
            consul_store(&consul),
            Ipv4Addr::new(127, 0, 0, 1),
            port,
            &ordering,
        ),
        Node::start_at(
            &dirs[1],
            &pebble,
            consul_store(&consul),
            Ipv4Addr::new(127, 0, 0, 2),
            port,
            &ordering,
        ),
        Node::start_at(
            &dirs[2],
            &pebble,
            consul_store(&consul),
            ANSWERING,
            port,
            &answering,
        ),
    );
    let mut nodes = [n1, n2, n3];

    // 1. One order; Pebble validates on 127.0.0.3, whose node never ordered.
    let roots = pebble.issuing_roots().await;
    let mut served = Vec::new();
    for node in &nodes {
        served.push(node.wait_for_valid_cert(one, &roots, ISSUE_TIMEOUT).await);
    }
    assert!(
        served.iter().all(|c| *c == served[0]),
        "all three nodes serve the one certificate"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pebble.orders(), 1, "exactly one order for {one}");
    let refs: Vec<&Node> = nodes.iter().collect();
    let orderer = issuers(&refs, one);
    assert_eq!(orderer.len(), 1, "one node issued {one}");
    assert_ne!(
        orderer[0].ip, ANSWERING,
        "the challenge was answered by a node other than the orderer"
    );
    assert!(
        !nodes[2].log().contains("certificate issued and stored"),
        "the answering node never orders"
    );

    // 2. The node holding the lock for `two` dies while Pebble validates its order.
    let lock_key = format!(
        "{PREFIX}locks/{}",
        certificate_key("http", &Domains::new(two, &[])).expect("certificate key")
    );
    let ordering = routers(&[(one, "http"), (two, "http")], &backend.url());
    nodes[0].set_dynamic(&ordering);
    nodes[1].set_dynamic(&ordering);
    nodes[2].set_dynamic(&routers_without_resolver(&[one, two], &backend.url()));
    eventually(&format!("an order for {two}"), ISSUE_TIMEOUT, || async {
        match pebble.orders() {
            n if n >= 2 => Ok(()),
            n => Err(n),
        }
    })
    .await;
    let holder = consul
        .state()
        .entry(&lock_key)
        .filter(|e| e.session.is_some())
        .map(|e| String::from_utf8_lossy(&e.value).into_owned())
        .unwrap_or_else(|| panic!("{lock_key} is held while the order is pending"));
    let victim = nodes
        .iter()
        .position(|n| {
            n.pid()
                .is_some_and(|pid| holder.contains(&format!("/{pid}/")))
        })
        .unwrap_or_else(|| panic!("no node owns the lock: {holder}"));
    assert_ne!(
        nodes[victim].ip, ANSWERING,
        "the answering node never orders"
    );
    let killed_at = Instant::now();
    nodes[victim].kill();
    assert!(
        issuers(&[&nodes[victim]], two).is_empty(),
        "the killed node had not finished its order"
    );

    let roots = pebble.issuing_roots().await;
    let survivors: Vec<&Node> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, n)| n)
        .collect();
    let mut served = Vec::new();
    for node in &survivors {
        served.push(
            node.wait_for_valid_cert(two, &roots, TAKEOVER_TIMEOUT)
                .await,
        );
    }
    eprintln!(
        "{two} served by the survivors {:.1}s after the kill",
        killed_at.elapsed().as_secs_f64()
    );
    assert_eq!(
        served[0], served[1],
        "both survivors serve the one certificate"
    );
    let completed = issuers(&survivors, two);
    assert_eq!(completed.len(), 1, "one survivor completed {two}");
    assert_ne!(completed[0].ip, ANSWERING);
    // The dead node's order and the survivor's.
    assert_eq!(pebble.orders(), 3);
}

/// Cluster options of a worker-mode node on the Consul double.
fn worker_options(consul: &ConsulDouble, node: &str, mode: &str) -> Options {
    Options {
        file_provider: mode != "follower",
        log_level: "INFO".into(),
        static_extra: json!({
            "certStore": consul_store(consul),
            "cluster": {
                "mode": mode,
                "provider": "file",
                "nodeName": node,
                "lockTTL": "10s",
            },
        }),
        ..Options::default()
    }
}

/// Routes `host -> url` for each pair.
fn routes(pairs: &[(&str, &str, &str)]) -> Value {
    let mut routers = serde_json::Map::new();
    let mut services = serde_json::Map::new();
    for (name, host, url) in pairs {
        routers.insert(name.to_string(), router(&format!("Host(`{host}`)"), name));
        services.insert(name.to_string(), service(&[url]));
    }
    json!({ "http": { "routers": routers, "services": services } })
}

/// `/api/store` of `wharf` once `connected` is `want`.
async fn store_connected(wharf: &Wharf, want: bool, timeout: Duration) -> Value {
    eventually(
        &format!("/api/store to show connected={want}"),
        timeout,
        || async {
            let status = wharf.api("/api/store").await;
            if status["connected"] == want {
                Ok(status)
            } else {
                Err(status)
            }
        },
    )
    .await
}

/// Requests to `a.test` through every node every 100 ms until told to stop;
/// returns how many were sent and the failures.
fn traffic(
    webs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    tokio::spawn(async move {
        let (mut sent, mut failures) = (0, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            for web in &webs {
                sent += 1;
                match client::get(*web, "a.test", "/").await {
                    Ok(r) if r.status == 200 && r.json()["name"] == "a" => {}
                    Ok(r) => failures.push(format!("{web}: {} {}", r.status, r.text())),
                    Err(e) => failures.push(format!("{web}: {e:#}")),
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (sent, failures)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_route_by_the_consul_table_through_a_consul_outage() {
    let mut consul = ConsulDouble::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("consul double");
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let table = routes(&[("app-a", "a.test", &a.url())]);

    // 3. The publisher writes its file routes to Consul; followers without any
    // provider route by them.
    let publisher = Wharf::start_with(
        worker_options(&consul, "node-p", "publisher"),
        table.clone(),
    )
    .await;
    eventually("the publisher to publish", ISSUE_TIMEOUT, || async {
        let state = publisher.api("/api/cluster").await;
        if state["role"] == "publisher" && state["lastPublished"].is_string() {
            Ok(())
        } else {
            Err(state)
        }
    })
    .await;
    let f1 = Wharf::start_with(
        worker_options(&consul, "node-f1", "follower"),
        table.clone(),
    )
    .await;
    let f2 = Wharf::start_with(
        worker_options(&consul, "node-f2", "follower"),
        table.clone(),
    )
    .await;
    for follower in [&f1, &f2] {
        assert_eq!(follower.echo("a.test", "/").await["name"], "a");
        let state = follower.api("/api/cluster").await;
        assert_eq!(state["role"], "follower", "{state}");
        assert_eq!(state["publisher"]["node"], "node-p", "{state}");
    }
    let key = "routes/table";
    let stored = consul
        .state()
        .entry(&format!("{PREFIX}kv/{key}"))
        .expect("the routing table in Consul");
    let stored = entry::decode(key, &stored.value).expect("a readable table");
    assert_eq!(stored.publisher.node, "node-p");
    assert_eq!(stored.provider, "file");
    assert!(
        stored.config.http.routers.contains_key("app-a"),
        "the table holds the publisher's routes"
    );
    let nodes = [&publisher, &f1, &f2];
    for node in nodes {
        store_connected(node, true, Duration::from_secs(10)).await;
    }

    // 4. Consul is down for 30 s: every node keeps serving, and tells the outage.
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(nodes.iter().map(|n| n.web()).collect(), stop.clone());
    let outage = Instant::now();
    consul.stop().await;
    for node in nodes {
        let status = store_connected(node, false, Duration::from_secs(20)).await;
        assert!(
            status["lastError"].as_str().is_some_and(|e| !e.is_empty()),
            "{status}"
        );
    }
    // Meanwhile the publisher's own routes change.
    publisher.write_dynamic_raw(&crate::harness::to_yaml(&routes(&[
        ("app-a", "a.test", &a.url()),
        ("app-b", "b.test", &b.url()),
    ])));
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(outage.elapsed())).await;
    for node in nodes {
        assert_eq!(
            node.api("/api/store").await["connected"],
            false,
            "still disconnected at the end of the outage"
        );
    }
    consul.resume().await.expect("resuming the consul double");
    let back = Instant::now();

    // The change reaches the followers once Consul is back.
    for follower in [&f1, &f2] {
        eventually("the follower to route b.test", TAKEOVER_TIMEOUT, || async {
            match client::get(follower.web(), "b.test", "/").await {
                Ok(r) if r.status == 200 && r.json()["name"] == "b" => Ok(()),
                Ok(r) => Err(format!("{}", r.status)),
                Err(e) => Err(format!("{e:#}")),
            }
        })
        .await;
    }
    let propagated = back.elapsed();
    eprintln!(
        "b.test reached the followers {:.1}s after Consul came back",
        propagated.as_secs_f64()
    );
    for node in nodes {
        store_connected(node, true, Duration::from_secs(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, failures) = load.await.expect("traffic task");
    assert!(sent >= 3 * 100, "only {sent} requests sent");
    assert!(
        failures.is_empty(),
        "{} of {sent} failed: {failures:?}",
        failures.len()
    );
    assert!(
        propagated < Duration::from_secs(15),
        "the change took {propagated:?} to reach the followers"
    );
}
