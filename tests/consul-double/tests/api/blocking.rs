//! Blocking queries (api-docs/features/blocking): wake on a relevant write, return at
//! the wait, never block on index 0 or an index already passed.

use std::time::{Duration, Instant};

use http::StatusCode;

use crate::common::{decode, start, Api};

/// Generous bound for "returned promptly" on a loaded machine.
const PROMPT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_blocked_get_wakes_on_a_write_to_the_key() {
    let double = start().await;
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/watched", "v1").await);
    let index = api.get("/v1/kv/watched").await.index();
    let waiter = {
        let api = api.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let reply = api
                .get(&format!("/v1/kv/watched?index={index}&wait=60s"))
                .await;
            (reply, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "must block while nothing changes");
    assert!(api.put_ok("/v1/kv/watched", "v2").await);
    let (reply, elapsed) = tokio::time::timeout(PROMPT, waiter).await.unwrap().unwrap();
    assert!(elapsed < Duration::from_secs(30), "woke after {elapsed:?}");
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.index() > index);
    assert_eq!(decode(&reply.json()[0]["Value"]), b"v2");
}

#[tokio::test]
async fn a_blocked_get_returns_unchanged_at_the_wait_timeout() {
    let double = start().await;
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/quiet", "v").await);
    let index = api.get("/v1/kv/quiet").await.index();
    let started = Instant::now();
    let reply = api
        .get(&format!("/v1/kv/quiet?index={index}&wait=1s"))
        .await;
    let elapsed = started.elapsed();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.index(), index, "a timeout is no guarantee of change");
    assert!(
        elapsed >= Duration::from_secs(1),
        "returned after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(1) + PROMPT,
        "took {elapsed:?}"
    );
}

#[tokio::test]
async fn index_zero_or_an_index_already_passed_returns_at_once() {
    let double = start().await;
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/k", "1").await);
    assert!(api.put_ok("/v1/kv/k", "2").await);
    let current = api.get("/v1/kv/k").await.index();
    for index in [0, 1, current - 1] {
        let started = Instant::now();
        let reply = api.get(&format!("/v1/kv/k?index={index}&wait=30s")).await;
        assert_eq!(reply.index(), current);
        assert!(started.elapsed() < PROMPT, "index={index} blocked");
    }
}

#[tokio::test]
async fn an_index_from_the_future_blocks_until_the_wait_or_a_newer_write() {
    let double = start().await;
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/k", "1").await);
    let current = api.get("/v1/kv/k").await.index();
    let started = Instant::now();
    let reply = api
        .get(&format!("/v1/kv/k?index={}&wait=500ms", current + 1000))
        .await;
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(
        reply.index(),
        current,
        "the client must reset its index when it goes backwards"
    );
}

#[tokio::test]
async fn a_prefix_watch_wakes_on_writes_and_deletes_under_the_prefix_only() {
    let double = start().await;
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/certs/a", "x").await);
    let index = api.get("/v1/kv/certs/?recurse").await.index();

    // A write elsewhere advances the Raft index but not the prefix's index.
    assert!(api.put_ok("/v1/kv/elsewhere", "x").await);
    let reply = api
        .get(&format!("/v1/kv/certs/?recurse&index={index}&wait=300ms"))
        .await;
    assert_eq!(
        reply.index(),
        index,
        "unrelated writes do not change the prefix"
    );

    let waiter = {
        let api = api.clone();
        tokio::spawn(async move {
            api.get(&format!("/v1/kv/certs/?keys&index={index}&wait=60s"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(api.delete("/v1/kv/certs/a").await.status, StatusCode::OK);
    let reply = tokio::time::timeout(PROMPT, waiter).await.unwrap().unwrap();
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "the prefix is empty now"
    );
    assert!(
        reply.index() > index,
        "a delete leaves a tombstone that advances the prefix index"
    );
}

#[tokio::test]
async fn a_blocked_session_list_wakes_on_create() {
    let double = start().await;
    let api = Api::new(&double);
    let index = api.get("/v1/session/list").await.index();
    let waiter = {
        let api = api.clone();
        tokio::spawn(async move {
            api.get(&format!("/v1/session/list?index={index}&wait=60s"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = api.session("{}").await;
    let reply = tokio::time::timeout(PROMPT, waiter).await.unwrap().unwrap();
    assert!(reply.index() > index);
    assert_eq!(reply.json()[0]["ID"], id.as_str());
}

#[tokio::test]
async fn reaping_tombstones_moves_a_prefix_index_backwards() {
    let double = start().await;
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/p/keep", "x").await);
    assert!(api.put_ok("/v1/kv/p/gone", "x").await);
    assert_eq!(api.delete("/v1/kv/p/gone").await.status, StatusCode::OK);
    let after_delete = api.get("/v1/kv/p/?recurse").await.index();
    let keep = api.entry("p/keep").await["ModifyIndex"].as_u64().unwrap();
    assert!(after_delete > keep);

    double.state().reap_tombstones();
    let started = Instant::now();
    let reply = api
        .get(&format!(
            "/v1/kv/p/?recurse&index={after_delete}&wait=300ms"
        ))
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "still blocks"
    );
    assert_eq!(reply.index(), keep, "the index went backwards");
    let reset = api.get("/v1/kv/p/?recurse&index=0").await;
    assert_eq!(reset.index(), keep, "index 0 answers at once");
}
