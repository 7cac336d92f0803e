//! The forwarder under a retry policy: it keeps trying a server that refuses
//! connections, waits the policy's backoff between attempts, and gives up after
//! `attempts` in all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tower::ServiceExt;

use super::client::Clients;
use super::LbService;
use crate::body;
use crate::lb::{Balancer, ServerHealth, Upstream};
use crate::middleware::retry::RetryPolicy;

/// A service over one server at `url`.
fn service(url: &str) -> LbService {
    let upstream = Upstream {
        url: url.parse().unwrap(),
        weight: 1,
        health: Arc::new(ServerHealth::new()),
    };
    let balancer = Balancer::new("late@test", vec![upstream], None);
    LbService::new(
        "late@test".into(),
        balancer,
        true,
        Clients::new(Default::default()),
    )
}

fn request(policy: Option<RetryPolicy>) -> Request<crate::body::Body> {
    let mut req = Request::builder()
        .uri("/x")
        .header("host", "late.test")
        .body(body::empty())
        .unwrap();
    if let Some(p) = policy {
        req.extensions_mut().insert(p);
    }
    req
}

fn serve(listener: TcpListener) {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::from(
                        "up",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}

#[tokio::test]
async fn retries_until_the_server_listens() {
    // Bound but not listening: connections are refused until `listen`.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}", socket.local_addr().unwrap());
    let svc = service(&url);
    let without = svc.clone().oneshot(request(None)).await.unwrap();
    assert_eq!(without.status(), StatusCode::BAD_GATEWAY);
    let policy = RetryPolicy {
        attempts: 100,
        initial_interval: Duration::from_millis(50),
    };
    let pending = tokio::spawn(svc.oneshot(request(Some(policy))));
    tokio::time::sleep(Duration::from_millis(300)).await;
    serve(socket.listen(16).unwrap());
    let resp = pending.await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn gives_up_after_the_attempts_with_backoff_between_them() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let policy = RetryPolicy {
        attempts: 3,
        initial_interval: Duration::from_millis(100),
    };
    let start = Instant::now();
    let resp = service(&url).oneshot(request(Some(policy))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    // Two waits of at least half their nominal 100 ms and ~141 ms.
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(110), "{waited:?}");
}
