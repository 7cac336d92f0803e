//! Load balancing across the servers of a service.

use std::collections::BTreeMap;

use serde_json::json;

use crate::backends::Backend;
use crate::harness::{closed_url, router, service, Wharf};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_requests() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": { "lb": router("Host(`lb.test`)", "lb") },
        "services": { "lb": service(&[&a.url(), &b.url()]) },
    }}))
    .await;

    let mut counts = BTreeMap::<String, usize>::new();
    for _ in 0..20 {
        let echo = wharf.echo("lb.test", "/").await;
        let name = echo["name"].as_str().unwrap_or("?").to_owned();
        *counts.entry(name).or_default() += 1;
    }
    let (na, nb) = (
        counts.get("a").copied().unwrap_or(0),
        counts.get("b").copied().unwrap_or(0),
    );
    assert_eq!(na + nb, 20, "only a and b serve: {counts:?}");
    assert!(
        (8..=12).contains(&na) && (8..=12).contains(&nb),
        "equal weights must share the load about evenly: {counts:?}"
    );
    assert_eq!((a.hits(), b.hits()), (na, nb));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_server_is_retried_on_the_live_one() {
    let live = Backend::echo("live").await;
    let dead = closed_url();
    let wharf = Wharf::start(json!({ "http": {
        "routers": { "lb": router("Host(`lb.test`)", "lb") },
        "services": { "lb": service(&[&dead, &live.url()]) },
    }}))
    .await;

    for i in 0..20 {
        let reply = wharf.get("lb.test", "/").await;
        assert_eq!(
            reply.status,
            200,
            "request {i} failed although one server is alive: {}",
            reply.text()
        );
        assert_eq!(reply.json()["name"], "live");
    }
    assert_eq!(live.hits(), 20);
}
