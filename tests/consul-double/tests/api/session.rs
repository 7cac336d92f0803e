//! Sessions and locks (api-docs/session, api-docs/kv acquire/release, docs on sessions):
//! defaults and validation, acquire/release/LockIndex, lock-delay, TTL expiry with
//! release and delete behaviour, renew after expiry.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{json, Value};

use crate::common::{start, start_short_ttl, Api};

/// Waits (polling) until the session is gone and returns how long that took.
async fn wait_until_gone(api: &Api, id: &str) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if api.get(&format!("/v1/session/info/{id}")).await.json() == json!([]) {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("session {id} never expired");
}

#[tokio::test]
async fn create_applies_consuls_defaults() {
    let double = start().await;
    let api = Api::new(&double);
    let id = api.session("").await;
    assert_eq!(id.len(), 36);
    let info = api.get(&format!("/v1/session/info/{id}")).await;
    assert_eq!(info.status, StatusCode::OK);
    let session = &info.json()[0];
    assert_eq!(session["ID"], id.as_str());
    assert_eq!(session["LockDelay"], 15_000_000_000u64);
    assert_eq!(session["Behavior"], "release");
    assert_eq!(session["TTL"], "");
    assert_eq!(session["Node"], "consul-double");
    assert_eq!(session["NodeChecks"], json!(["serfHealth"]));
    let created = session["CreateIndex"].as_u64().unwrap();
    assert_eq!(info.index(), created);

    let id = api
        .session(r#"{"Name":"wharf","LockDelay":5,"Behavior":"delete","TTL":"30s","NodeChecks":null,"ID":null}"#)
        .await;
    let session = api.get(&format!("/v1/session/info/{id}")).await.json()[0].clone();
    assert_eq!(session["Name"], "wharf");
    assert_eq!(
        session["LockDelay"], 5_000_000_000u64,
        "small numbers are seconds"
    );
    assert_eq!(session["Behavior"], "delete");
    assert_eq!(session["TTL"], "30s");
    assert_eq!(session["NodeChecks"], Value::Null, "null empties the list");

    let legacy = api.session(r#"{"checks":[]}"#).await;
    let session = api.get(&format!("/v1/session/info/{legacy}")).await.json()[0].clone();
    assert_eq!(
        session["NodeChecks"],
        Value::Null,
        "an empty legacy Checks list (any case) removes serfHealth"
    );

    let list = api.get("/v1/session/list").await.json();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let node = api.get("/v1/session/node/consul-double").await.json();
    assert_eq!(node.as_array().unwrap().len(), 3);
    assert_eq!(api.get("/v1/session/info/unknown").await.json(), json!([]));
}

#[tokio::test]
async fn create_rejects_what_consul_rejects() {
    let double = start().await;
    let api = Api::new(&double);
    let cases = [
        (
            r#"{"TTL":"5s"}"#,
            "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]",
        ),
        (
            r#"{"TTL":"86401s"}"#,
            "Invalid Session TTL '86401000000000', must be between [10s=24h0m0s]",
        ),
        (
            r#"{"TTL":"ten"}"#,
            "Session TTL 'ten' invalid: time: invalid duration \"ten\"",
        ),
        (r#"{"Behavior":"keep"}"#, "Invalid Behavior setting 'keep'"),
        (r#"{"Node":"other"}"#, "Missing node registration"),
        (
            r#"{"NodeChecks":["service:web"]}"#,
            "Missing check 'service:web' registration",
        ),
    ];
    for (body, message) in cases {
        let reply = api.put("/v1/session/create", body.to_owned()).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert_eq!(reply.text(), message, "{body}");
    }
    let reply = api.put("/v1/session/create", "{not json").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().starts_with("Request decode failed:"));
    let reply = api.put("/v1/session/create", r#"{"TTL":"10s"}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "10s is the smallest TTL");
}

#[tokio::test]
async fn acquire_and_release_follow_the_lock_rules() {
    let double = start().await;
    let api = Api::new(&double);
    let a = api.session(r#"{"LockDelay":"0s"}"#).await;
    let b = api.session(r#"{"LockDelay":"0s"}"#).await;

    assert!(api.put_ok(&format!("/v1/kv/lock?acquire={a}"), "a1").await);
    let entry = api.entry("lock").await;
    assert_eq!(entry["LockIndex"], 1);
    assert_eq!(entry["Session"], a.as_str());

    assert!(
        !api.put_ok(&format!("/v1/kv/lock?acquire={b}"), "b").await,
        "held by a"
    );
    assert!(
        api.put_ok(&format!("/v1/kv/lock?acquire={a}"), "a2").await,
        "re-acquire"
    );
    let entry = api.entry("lock").await;
    assert_eq!(
        entry["LockIndex"], 1,
        "the holder re-acquiring does not bump LockIndex"
    );
    assert_eq!(crate::common::decode(&entry["Value"]), b"a2");

    assert!(
        !api.put_ok(&format!("/v1/kv/lock?release={b}"), "b").await,
        "not the holder"
    );
    assert!(
        api.put_ok(&format!("/v1/kv/lock?release={a}"), "released")
            .await
    );
    let entry = api.entry("lock").await;
    assert!(entry.get("Session").is_none());
    assert_eq!(entry["LockIndex"], 1);
    assert_eq!(crate::common::decode(&entry["Value"]), b"released");

    assert!(
        api.put_ok(&format!("/v1/kv/lock?acquire={b}"), "b").await,
        "no lock-delay after a release"
    );
    let entry = api.entry("lock").await;
    assert_eq!(entry["LockIndex"], 2);
    assert_eq!(entry["Session"], b.as_str());

    assert!(!api.put_ok(&format!("/v1/kv/absent?release={b}"), "x").await);
    let reply = api.put("/v1/kv/lock?acquire=no-such-session", "x").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.text(), "invalid session \"no-such-session\"");
    let reply = api.put("/v1/kv/lock?acquire=", "x").await;
    assert_eq!(reply.text(), "missing session");
}

#[tokio::test]
async fn a_plain_write_keeps_the_holder_and_resets_lock_index() {
    let double = start().await;
    let api = Api::new(&double);
    let a = api.session("{}").await;
    assert!(api.put_ok(&format!("/v1/kv/held?acquire={a}"), "x").await);
    assert_eq!(api.entry("held").await["LockIndex"], 1);
    assert!(api.put_ok("/v1/kv/held", "overwritten").await);
    let entry = api.entry("held").await;
    assert_eq!(
        entry["Session"],
        a.as_str(),
        "locks are advisory: the write succeeds"
    );
    assert_eq!(
        entry["LockIndex"], 0,
        "a write without acquire carries LockIndex 0 (Consul's kvsSetTxn)"
    );
}

#[tokio::test]
async fn destroying_the_holder_releases_the_key_and_starts_the_lock_delay() {
    let double = start().await;
    let api = Api::new(&double);
    let a = api.session(r#"{"LockDelay":"1s"}"#).await;
    let b = api.session("{}").await;
    assert!(api.put_ok(&format!("/v1/kv/leader?acquire={a}"), "a").await);
    let destroyed = api.put(&format!("/v1/session/destroy/{a}"), "").await;
    assert_eq!(destroyed.json(), json!(true));
    let released_at = Instant::now();
    let entry = api.entry("leader").await;
    assert!(entry.get("Session").is_none(), "released, not deleted");

    let mut acquired = false;
    let mut refused_once = false;
    while released_at.elapsed() < Duration::from_secs(20) {
        if api.put_ok(&format!("/v1/kv/leader?acquire={b}"), "b").await {
            acquired = true;
            break;
        }
        refused_once = true;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waited = released_at.elapsed();
    assert!(acquired, "lock-delay never ended");
    assert!(refused_once, "acquire must fail during the lock-delay");
    assert!(
        waited >= Duration::from_secs(1),
        "lock-delay ended after {waited:?}"
    );
    assert_eq!(
        api.put(&format!("/v1/session/destroy/{a}"), "")
            .await
            .json(),
        json!(true),
        "destroying an unknown session is not an error"
    );
}

#[tokio::test]
async fn ttl_expiry_releases_or_deletes_per_behavior() {
    let double = start_short_ttl().await;
    let api = Api::new(&double);
    let release = api
        .session(r#"{"TTL":"1s","LockDelay":"0s","Behavior":"release"}"#)
        .await;
    let delete = api
        .session(r#"{"TTL":"1s","LockDelay":"0s","Behavior":"delete"}"#)
        .await;
    let created = Instant::now();
    assert!(
        api.put_ok(&format!("/v1/kv/r?acquire={release}"), "r")
            .await
    );
    assert!(api.put_ok(&format!("/v1/kv/d?acquire={delete}"), "d").await);

    wait_until_gone(&api, &release).await;
    wait_until_gone(&api, &delete).await;
    let lived = created.elapsed();
    assert!(
        lived >= Duration::from_secs(1),
        "a TTL is a lower bound: {lived:?}"
    );

    let entry = api.entry("r").await;
    assert!(entry.get("Session").is_none());
    assert_eq!(entry["LockIndex"], 1);
    assert_eq!(api.get("/v1/kv/d").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn renew_extends_a_session_and_fails_with_404_after_expiry() {
    let double = start_short_ttl().await;
    let api = Api::new(&double);
    let id = api.session(r#"{"TTL":"1s"}"#).await;
    // Renewing well within TTL keeps the session alive past 2×TTL.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(3_000) {
        let renewed = api.put(&format!("/v1/session/renew/{id}"), "").await;
        assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text());
        assert_eq!(renewed.json()[0]["ID"], id.as_str());
        assert_eq!(renewed.json()[0]["TTL"], "1s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_until_gone(&api, &id).await;
    let reply = api.put(&format!("/v1/session/renew/{id}"), "").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.text(), format!("Session id '{id}' not found"));
}

#[tokio::test]
async fn a_failing_node_check_invalidates_bound_sessions_only() {
    let double = start().await;
    let api = Api::new(&double);
    let bound = api.session("{}").await;
    let unbound = api.session(r#"{"NodeChecks":[]}"#).await;
    double.state().set_serf_health_critical(true);
    assert_eq!(double.state().session_ids(), vec![unbound.clone()]);
    assert_ne!(bound, unbound);
    let reply = api.put("/v1/session/create", "{}").await;
    assert_eq!(reply.text(), "Check 'serfHealth' is in critical state");
    double.state().set_serf_health_critical(false);
    api.session("{}").await;
}
