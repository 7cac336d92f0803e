//! Middlewares over real HTTP: compress, errors, forwardAuth, retry and
//! circuitBreaker, referenced with provider-qualified names (`name@file`).

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpSocket};

use crate::backends::{seen_header, Backend};
use crate::client::{self, empty};
use crate::harness::{closed_url, eventually, router, service, Wharf};

/// A router on `web` for `Host(host)` with the given middlewares.
fn router_with(host: &str, service: &str, middlewares: &[&str]) -> Value {
    let mut r = router(&format!("Host(`{host}`)"), service);
    r["middlewares"] = json!(middlewares);
    r
}

/// Serves `listener` with a handler that answers from the request alone.
fn serve_with(
    listener: TcpListener,
    handler: fn(Request<Incoming>) -> Response<Full<Bytes>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| async move {
                    Ok::<_, Infallible>(handler(req))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

/// An authentication server: `Authorization: Bearer good` gets 204 with
/// `X-User: alice`, anything else 403 "no entry".
async fn auth_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let task = serve_with(listener, |req| {
        let good = req
            .headers()
            .get("authorization")
            .is_some_and(|v| v == "Bearer good");
        let b = if good {
            Response::builder().status(204).header("x-user", "alice")
        } else {
            Response::builder()
                .status(403)
                .header("x-denied-by", "auth")
        };
        let body = if good { "" } else { "no entry" };
        b.body(Full::new(Bytes::from(body))).expect("response")
    });
    (addr, task)
}

async fn send(wharf: &Wharf, req: Request<crate::client::ReqBody>) -> crate::client::Reply {
    client::send_h1(wharf.web(), req)
        .await
        .unwrap_or_else(|e| panic!("request through wharf failed: {e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_encodes_by_accept_encoding() {
    let files = Backend::streaming().await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": { "files": router_with("files.test", "files", &["gz@file"]) },
        "services": { "files": service(&[&files.url()]) },
        "middlewares": { "gz": { "compress": { "encodings": ["gzip"] } } },
    }}))
    .await;
    let req = Request::builder()
        .uri("/download/300000")
        .header("host", "files.test")
        .header("accept-encoding", "br;q=0.9, gzip;q=0.8")
        .body(empty())
        .expect("request");
    let reply = send(&wharf, req).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.headers["content-encoding"], "gzip");
    assert_eq!(reply.headers["vary"], "Accept-Encoding");
    assert!(
        reply.body.len() < 300_000 / 10,
        "{} bytes",
        reply.body.len()
    );
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&reply.body[..])
        .read_to_end(&mut plain)
        .expect("valid gzip");
    assert_eq!(plain.len(), 300_000);
    assert!(plain.iter().all(|b| *b == b'w'));
    let reply = wharf.get("files.test", "/download/300").await;
    assert!(reply.headers.get("content-encoding").is_none());
    assert_eq!(reply.body.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_serve_a_page_from_another_service() {
    let pages = Backend::echo("pages").await;
    let app = Backend::echo("app").await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": {
            "dead": router_with("dead.test", "dead", &["pages@file"]),
            "alive": router_with("alive.test", "app", &["pages"]),
        },
        "services": {
            "dead": service(&[&closed_url()]),
            "app": service(&[&app.url()]),
            "pages": service(&[&pages.url()]),
        },
        "middlewares": { "pages": { "errors": {
            "status": ["500-599"], "service": "pages@file", "query": "/{status}.html",
        } } },
    }}))
    .await;
    let reply = wharf.get("dead.test", "/some/page").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    let page = reply.json();
    assert_eq!(page["name"], "pages");
    assert_eq!(page["path"], "/502.html");
    assert_eq!(page["host"], "dead.test");
    assert_eq!(wharf.echo("alive.test", "/").await["name"], "app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_allows_and_denies() {
    let app = Backend::echo("app").await;
    let (auth, _task) = auth_server().await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": { "app": router_with("app.test", "app", &["auth@file"]) },
        "services": { "app": service(&[&app.url()]) },
        "middlewares": { "auth": { "forwardAuth": {
            "address": format!("http://{auth}/verify"), "authResponseHeaders": "X-User",
        } } },
    }}))
    .await;
    let req = |token: &str| {
        Request::builder()
            .uri("/private")
            .header("host", "app.test")
            .header("authorization", token)
            .header("x-user", "mallory")
            .body(empty())
            .expect("request")
    };
    let reply = send(&wharf, req("Bearer good")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echo = reply.json();
    assert_eq!(echo["name"], "app");
    assert_eq!(seen_header(&echo, "x-user").as_deref(), Some("alice"));
    let reply = send(&wharf, req("Bearer bad")).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.text(), "no entry");
    assert_eq!(reply.headers["x-denied-by"], "auth");
    assert_eq!(app.hits(), 1, "a denied request never reaches the app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_waits_for_a_server_that_comes_up() {
    // The port is bound but not listening: connections are refused until `listen`.
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind");
    let addr = socket.local_addr().expect("address");
    let url = format!("http://{addr}");
    let wharf = Wharf::start(json!({ "http": {
        "routers": {
            "plain": router_with("plain.test", "late", &[]),
            "patient": router_with("patient.test", "late", &["again@file"]),
        },
        "services": { "late": service(&[&url]) },
        "middlewares": { "again": { "retry": { "attempts": 60, "initialInterval": "100ms" } } },
    }}))
    .await;
    assert_eq!(wharf.get("plain.test", "/").await.status, 502);
    let web = wharf.web();
    let pending = tokio::spawn(async move { client::get(web, "patient.test", "/hello").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _server = serve_with(socket.listen(64).expect("listen"), |req| {
        Response::new(Full::new(Bytes::from(format!("late {}", req.uri().path()))))
    });
    let reply = pending.await.expect("task").expect("request");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "late /hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_opens_on_network_errors() {
    let wharf = Wharf::start(json!({ "http": {
        "routers": { "cb": router_with("cb.test", "dead", &["breaker@file"]) },
        "services": { "dead": service(&[&closed_url()]) },
        "middlewares": { "breaker": { "circuitBreaker": {
            "expression": "NetworkErrorRatio() > 0.5", "fallbackDuration": "30s",
        } } },
    }}))
    .await;
    assert_eq!(wharf.get("cb.test", "/").await.status, 502);
    let reply = eventually("the circuit to open", Duration::from_secs(20), || async {
        let reply = wharf.get("cb.test", "/").await;
        if reply.status == 503 {
            Ok(reply)
        } else {
            Err(format!("status {}", reply.status))
        }
    })
    .await;
    assert_eq!(reply.text(), "Service Unavailable");
    let routers = wharf.api("/api/http/middlewares").await;
    let breaker = routers
        .as_array()
        .and_then(|l| l.iter().find(|m| m["name"] == "breaker@file"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(breaker["status"], "enabled", "{routers}");
}
