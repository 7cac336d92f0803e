//! Checks of the test servers themselves, without wharf, so that a failure through
//! wharf can be blamed on wharf.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::Request;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::backends::{seen_header, Backend};
use crate::client::{self, full};

#[tokio::test]
async fn echo_backend_describes_the_request() {
    let backend = Backend::echo("me").await;
    let req = Request::builder()
        .method("PUT")
        .uri("/a/b?c=d")
        .header("host", "x.test")
        .header("x-one", "1")
        .body(full("hello"))
        .expect("valid request");
    let reply = client::send_h1(backend.addr(), req)
        .await
        .expect("direct request");
    assert_eq!(reply.status, 200);
    let echo = reply.json();
    assert_eq!(echo["name"], "me");
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["path"], "/a/b");
    assert_eq!(echo["query"], "c=d");
    assert_eq!(echo["host"], "x.test");
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["bodyBytes"], 5);
    assert_eq!(seen_header(&echo, "X-One").as_deref(), Some("1"));
    assert_eq!(backend.hits(), 1);
}

#[tokio::test]
async fn slow_backend_waits() {
    let backend = Backend::slow("slow", Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let reply = client::get(backend.addr(), "x.test", "/")
        .await
        .expect("direct request");
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn h2c_backend_speaks_http2_with_trailers() {
    let backend = Backend::h2c("h2").await;
    let req = Request::builder()
        .uri(format!("http://{}/svc", backend.addr()))
        .body(full("x"))
        .expect("valid request");
    let (reply, trailers) = client::send_h2c(backend.addr(), req)
        .await
        .expect("direct h2c request");
    assert_eq!(reply.json()["version"], "HTTP/2.0");
    let trailers = trailers.expect("trailers");
    assert_eq!(trailers["grpc-status"], "0");
    // It does not speak HTTP/1.1.
    assert!(client::get(backend.addr(), "x.test", "/").await.is_err());
}

#[tokio::test]
async fn streaming_backend_downloads_and_counts_uploads() {
    let backend = Backend::streaming().await;
    let reply = client::get(backend.addr(), "x.test", "/download/1000000")
        .await
        .expect("download");
    assert_eq!(reply.body.len(), 1_000_000);
    let req = Request::builder()
        .method("POST")
        .uri("/upload")
        .header("host", "x.test")
        .body(full(vec![0u8; 123_457]))
        .expect("valid request");
    let reply = client::send_h1(backend.addr(), req).await.expect("upload");
    assert_eq!(reply.json()["bytes"], 123_457);
}

#[tokio::test]
async fn websocket_backend_echoes() {
    let backend = Backend::websocket_echo().await;
    let stream = TcpStream::connect(backend.addr()).await.expect("connect");
    let req = format!("ws://{}/", backend.addr())
        .into_client_request()
        .expect("valid request");
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream)
        .await
        .expect("handshake");
    ws.send(Message::Binary(Bytes::from_static(b"abc")))
        .await
        .expect("send");
    let back = ws.next().await.expect("message").expect("message");
    assert_eq!(back, Message::Binary(Bytes::from_static(b"abc")));
}
