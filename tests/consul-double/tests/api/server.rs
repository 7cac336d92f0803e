//! Server behaviour: outage and restart with the same data, ACL token, counters,
//! latency, and the binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use consul_double::{ConsulDouble, Endpoint, SharedState};
use http::{Method, StatusCode};

use crate::common::{decode, start, start_short_ttl, Api};

#[tokio::test]
async fn stop_refuses_connections_and_resume_serves_the_same_data_on_the_same_address() {
    let mut double = start().await;
    let addr = double.addr();
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/persisted", "v").await);
    let before = api.entry("persisted").await;

    let index = api.get("/v1/kv/persisted").await.index();
    let blocked = {
        let api = api.clone();
        tokio::spawn(async move {
            api.try_send(
                Method::GET,
                &format!("/v1/kv/persisted?index={index}&wait=60s"),
                Bytes::new(),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    double.stop().await;
    assert!(!double.is_running());
    let outcome = tokio::time::timeout(Duration::from_secs(10), blocked)
        .await
        .unwrap()
        .unwrap();
    assert!(outcome.is_err(), "a blocked query is cut by the outage");
    let refused = api
        .try_send(Method::GET, "/v1/kv/persisted", Bytes::new())
        .await;
    assert!(refused.is_err(), "nothing listens during the outage");

    double.resume().await.unwrap();
    assert_eq!(double.addr(), addr);
    assert_eq!(api.entry("persisted").await, before);
    assert!(api.put_ok("/v1/kv/persisted", "v2").await);
    assert!(api.entry("persisted").await["ModifyIndex"].as_u64() > before["ModifyIndex"].as_u64());

    double.restart().await.unwrap();
    assert_eq!(decode(&api.entry("persisted").await["Value"]), b"v2");
}

#[tokio::test]
async fn a_new_double_started_with_the_old_state_keeps_data_and_sessions() {
    let mut first = start_short_ttl().await;
    let addr = first.addr();
    let api = Api::new(&first);
    let id = api.session(r#"{"TTL":"1s"}"#).await;
    assert!(api.put_ok(&format!("/v1/kv/lock?acquire={id}"), "x").await);
    let state: SharedState = first.state().clone();
    first.stop().await;
    // Longer than 2×TTL: a stopped cluster has no leader to fire session timers.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let second = ConsulDouble::start_with(state, addr).await.unwrap();
    assert_eq!(api.entry("lock").await["Session"], id.as_str());
    let renewed = api.put(&format!("/v1/session/renew/{id}"), "").await;
    assert_eq!(
        renewed.status,
        StatusCode::OK,
        "timers restart after the outage"
    );
    drop(second);
}

#[tokio::test]
async fn a_required_token_is_enforced_from_every_source() {
    let double = start().await;
    double.set_token(Some("s3cret"));
    let mut api = Api::new(&double);
    let reply = api.get("/v1/kv/k").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.text(), "Permission denied");
    let reply = api.put("/v1/session/create", "{}").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    api.token_header = Some("wrong".to_owned());
    let reply = api.get("/v1/kv/k").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.text(), "ACL not found");

    api.token_header = Some("s3cret".to_owned());
    assert!(api.put_ok("/v1/kv/k", "v").await);
    api.token_header = None;
    assert_eq!(
        api.get("/v1/kv/k?token=s3cret").await.status,
        StatusCode::OK
    );

    double.set_token(None);
    assert_eq!(api.get("/v1/kv/k").await.status, StatusCode::OK);
}

#[tokio::test]
async fn requests_are_counted_per_endpoint() {
    let double = start().await;
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/a", "1").await);
    assert!(api.put_ok("/v1/kv/b", "1").await);
    api.get("/v1/kv/a").await;
    api.delete("/v1/kv/a").await;
    api.session("{}").await;
    api.get("/v1/session/list").await;
    assert_eq!(double.requests(Endpoint::KvPut), 2);
    assert_eq!(double.requests(Endpoint::KvGet), 1);
    assert_eq!(double.requests(Endpoint::KvDelete), 1);
    assert_eq!(double.requests(Endpoint::SessionCreate), 1);
    assert_eq!(double.requests(Endpoint::SessionList), 1);
    assert_eq!(double.requests(Endpoint::SessionRenew), 0);
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let double = start().await;
    let api = Api::new(&double);
    double.set_latency(Duration::from_millis(300));
    let started = Instant::now();
    api.get("/v1/kv/x").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn the_binary_serves_with_a_token_until_terminated() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_consul-double"))
        .args(["--listen", "127.0.0.1:0", "--token", "tok"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<Bytes>>();
    let put = |token: &'static str| {
        http::Request::builder()
            .method(Method::PUT)
            .uri(format!("http://{addr}/v1/kv/from-binary"))
            .header("X-Consul-Token", token)
            .body(http_body_util::Full::new(Bytes::from_static(b"v")))
            .unwrap()
    };
    assert_eq!(
        client.request(put("nope")).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        client.request(put("tok")).await.unwrap().status(),
        StatusCode::OK
    );
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    assert!(child.wait().unwrap().success(), "SIGTERM is a clean exit");
}

#[tokio::test]
async fn without_a_leader_only_stale_reads_answer_and_session_timers_stop() {
    let double = start_short_ttl().await;
    let api = Api::new(&double);
    assert!(api.put_ok("/v1/kv/k", "v").await);
    let id = api.session(r#"{"TTL":"1s"}"#).await;
    double.set_leader(false);
    let reply = api.put("/v1/kv/k", "w").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.text(), "No cluster leader");
    assert_eq!(
        api.get("/v1/kv/k").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let stale = api.get("/v1/kv/k?stale").await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.headers["x-consul-knownleader"], "false");
    assert_eq!(decode(&stale.json()[0]["Value"]), b"v");

    tokio::time::sleep(Duration::from_millis(2_500)).await;
    double.set_leader(true);
    let renewed = api.put(&format!("/v1/session/renew/{id}"), "").await;
    assert_eq!(
        renewed.status,
        StatusCode::OK,
        "no timer fires without a leader"
    );
    assert_eq!(
        api.get("/v1/kv/k").await.headers["x-consul-knownleader"],
        "true"
    );
}
