//! What happens to requests on their way through: forwarded headers, hop-by-hop
//! headers, WebSocket upgrades, HTTP/2 on either side, and streaming of large bodies.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Version};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::backends::{seen_header, Backend};
use crate::client::{self, empty, full, ReqBody};
use crate::harness::{self, router, service, Options, Wharf};

/// Sends `GET /` with `Host: host` and the extra `headers`; returns what the echo
/// backend saw.
async fn echo_with_headers(wharf: &Wharf, host: &str, headers: &[(&str, &str)]) -> Value {
    let mut req = Request::builder().uri("/").header("host", host);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let reply = client::send_h1(wharf.web(), req.body(empty()).expect("valid request"))
        .await
        .expect("request through wharf");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

fn single_route(backend: &Backend) -> Value {
    json!({ "http": {
        "routers": { "fwd": router("Host(`fwd.test`)", "fwd") },
        "services": { "fwd": service(&[&backend.url()]) },
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_reach_the_upstream() {
    let backend = Backend::echo("fwd").await;
    let wharf = Wharf::start(single_route(&backend)).await;
    let port = wharf.web().port().to_string();
    let host = format!("fwd.test:{port}");

    let echo = echo_with_headers(&wharf, &host, &[]).await;
    assert_eq!(echo["host"], host.as_str(), "Host is passed through");
    assert_eq!(
        seen_header(&echo, "x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        seen_header(&echo, "x-forwarded-proto").as_deref(),
        Some("http")
    );
    assert_eq!(
        seen_header(&echo, "x-forwarded-host").as_deref(),
        Some(host.as_str())
    );
    assert_eq!(
        seen_header(&echo, "x-forwarded-port").as_deref(),
        Some(port.as_str())
    );
    assert_eq!(
        seen_header(&echo, "x-real-ip").as_deref(),
        Some("127.0.0.1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_peer_forwarded_headers_are_replaced() {
    let backend = Backend::echo("fwd").await;
    let options = Options {
        trusted_ips: vec!["10.255.0.0/16".into()],
        ..Options::default()
    };
    let wharf = Wharf::start_with(options, single_route(&backend)).await;

    let echo = echo_with_headers(
        &wharf,
        "fwd.test",
        &[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-real-ip", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.test"),
        ],
    )
    .await;
    assert_eq!(
        seen_header(&echo, "x-forwarded-for").as_deref(),
        Some("127.0.0.1"),
        "a spoofed X-Forwarded-For from an untrusted peer is dropped: {echo}"
    );
    assert_eq!(
        seen_header(&echo, "x-real-ip").as_deref(),
        Some("127.0.0.1"),
        "{echo}"
    );
    assert_eq!(
        seen_header(&echo, "x-forwarded-proto").as_deref(),
        Some("http"),
        "{echo}"
    );
    assert_eq!(
        seen_header(&echo, "x-forwarded-host").as_deref(),
        Some("fwd.test"),
        "{echo}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_peer_forwarded_for_is_appended() {
    let backend = Backend::echo("fwd").await;
    let wharf = Wharf::start(single_route(&backend)).await;

    let echo = echo_with_headers(
        &wharf,
        "fwd.test",
        &[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
        ],
    )
    .await;
    assert_eq!(
        seen_header(&echo, "x-forwarded-for").as_deref(),
        Some("203.0.113.7, 127.0.0.1"),
        "a trusted peer's X-Forwarded-For is kept and the peer appended: {echo}"
    );
    assert_eq!(
        seen_header(&echo, "x-forwarded-proto").as_deref(),
        Some("https"),
        "a trusted peer's X-Forwarded-Proto is kept: {echo}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_not_forwarded() {
    let backend = Backend::echo("fwd").await;
    let wharf = Wharf::start(single_route(&backend)).await;

    let echo = echo_with_headers(
        &wharf,
        "fwd.test",
        &[
            ("connection", "keep-alive, X-Foo"),
            ("x-foo", "secret"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("x-bar", "kept"),
        ],
    )
    .await;
    assert_eq!(
        seen_header(&echo, "x-foo"),
        None,
        "listed in Connection: {echo}"
    );
    assert_eq!(seen_header(&echo, "keep-alive"), None, "hop-by-hop: {echo}");
    assert_eq!(
        seen_header(&echo, "proxy-connection"),
        None,
        "hop-by-hop: {echo}"
    );
    if let Some(connection) = seen_header(&echo, "connection") {
        assert!(
            !connection.to_ascii_lowercase().contains("x-foo"),
            "the client's Connection header leaked: {echo}"
        );
    }
    assert_eq!(seen_header(&echo, "x-bar").as_deref(), Some("kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_through_the_proxy() {
    let backend = Backend::websocket_echo().await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": { "ws": router("Host(`ws.test`) && PathPrefix(`/chat`)", "ws") },
        "services": { "ws": service(&[&backend.url()]) },
    }}))
    .await;

    let stream = TcpStream::connect(wharf.web())
        .await
        .expect("connecting to wharf");
    let request = "ws://ws.test/chat"
        .into_client_request()
        .expect("valid WebSocket request");
    let (mut ws, response) = tokio::time::timeout(
        client::REQUEST_TIMEOUT,
        tokio_tungstenite::client_async(request, stream),
    )
    .await
    .expect("WebSocket handshake timed out")
    .expect("WebSocket handshake through wharf");
    assert_eq!(response.status(), 101);

    for i in 0..10 {
        let msg = if i % 3 == 2 {
            Message::Binary(Bytes::from(vec![i as u8; 1000 * (i + 1)]))
        } else {
            Message::Text(format!("message {i} \u{1F6A2}").into())
        };
        ws.send(msg.clone()).await.expect("sending a message");
        let back = tokio::time::timeout(client::REQUEST_TIMEOUT, ws.next())
            .await
            .expect("echo timed out")
            .expect("connection closed early")
            .expect("reading the echo");
        assert_eq!(back, msg, "message {i} came back changed");
    }
    ws.close(None).await.expect("closing");
    assert_eq!(
        backend.hits(),
        1,
        "one upgraded connection reached the backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_client_to_http1_backend() {
    let backend = Backend::echo("h1").await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": { "h2": router("Host(`h2.test`)", "h1") },
        "services": { "h1": service(&[&backend.url()]) },
    }}))
    .await;

    for i in 0..3 {
        let req = Request::builder()
            .method("POST")
            .uri(format!("http://h2.test/hello/{i}?x=1"))
            .body(full("ping"))
            .expect("valid request");
        let (reply, _) = client::send_h2c(wharf.web(), req)
            .await
            .expect("HTTP/2 request through wharf");
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.version, Version::HTTP_2);
        assert_eq!(
            reply.headers.get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/json"[..]),
            "response headers are forwarded"
        );
        let echo = reply.json();
        assert_eq!(echo["version"], "HTTP/1.1", "the backend speaks HTTP/1.1");
        assert_eq!(echo["path"], format!("/hello/{i}"));
        assert_eq!(echo["query"], "x=1");
        assert_eq!(echo["host"], "h2.test", "the :authority becomes Host");
        assert_eq!(echo["bodyBytes"], 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_backend_gets_http2() {
    let backend = Backend::h2c("grpc").await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": { "grpc": router("Host(`grpc.test`)", "grpc") },
        "services": { "grpc": service(&[&backend.h2c_url()]) },
    }}))
    .await;

    // An HTTP/1.1 client: wharf still speaks HTTP/2 to the backend.
    let echo = wharf.echo("grpc.test", "/v1").await;
    assert_eq!(echo["version"], "HTTP/2.0", "h2c:// means HTTP/2: {echo}");
    assert_eq!(echo["path"], "/v1");

    // A gRPC-style call from an HTTP/2 client: the trailers make it back.
    let req = Request::builder()
        .method("POST")
        .uri("http://grpc.test/pkg.Service/Method")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(full(Bytes::from_static(b"\0\0\0\0\x02hi")))
        .expect("valid request");
    let (reply, trailers) = client::send_h2c(wharf.web(), req)
        .await
        .expect("gRPC-style request through wharf");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echo = reply.json();
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["path"], "/pkg.Service/Method");
    assert_eq!(echo["bodyBytes"], 7);
    let trailers = trailers.expect("the response trailers are forwarded");
    assert_eq!(
        trailers.get("grpc-status").and_then(|v| v.to_str().ok()),
        Some("0"),
        "trailers: {trailers:?}"
    );
}

/// Samples a process's RSS every 20 ms until stopped; keeps the maximum (KiB).
struct RssSampler {
    max_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let max_kib = Arc::new(AtomicU64::new(harness::rss_kib(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let max_kib = max_kib.clone();
            let stop = stop.clone();
            async move {
                while !stop.load(Ordering::SeqCst) {
                    max_kib.fetch_max(harness::rss_kib(pid), Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        RssSampler {
            max_kib,
            stop,
            task,
        }
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("RSS sampler");
        self.max_kib.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_streams_keep_memory_flat() {
    const TOTAL: u64 = 200 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    const MAX_GROWTH_KIB: u64 = 64 * 1024;

    let backend = Backend::streaming().await;
    let options = Options {
        log_level: "INFO".into(),
        ..Options::default()
    };
    let wharf = Wharf::start_with(
        options,
        json!({ "http": {
            "routers": { "stream": router("Host(`stream.test`)", "stream") },
            "services": { "stream": service(&[&backend.url()]) },
        }}),
    )
    .await;

    // Warm up both directions so pools and buffers exist before the baseline.
    let warm = wharf.get("stream.test", "/download/100000").await;
    assert_eq!(warm.status, 200);
    assert_eq!(warm.body.len(), 100_000);
    let idle_kib = wharf.rss_kib();
    let sampler = RssSampler::start(wharf.pid());

    // Download: count the bytes as they arrive, keep none.
    let req = client::get_request("stream.test", &format!("/download/{TOTAL}"));
    let download = async {
        let resp = client::send_h1_streaming(wharf.web(), req)
            .await
            .expect("download request");
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let mut received: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.expect("download body");
            if let Some(data) = frame.data_ref() {
                assert!(
                    data.iter().all(|&b| b == b'w'),
                    "download content corrupted"
                );
                received += data.len() as u64;
            }
        }
        received
    };
    let received = tokio::time::timeout(Duration::from_secs(180), download)
        .await
        .expect("200 MB download timed out");
    assert_eq!(received, TOTAL, "every downloaded byte arrives");

    // Upload: generate the body on the fly; the backend counts what it gets.
    let chunk = Bytes::from(vec![b'u'; CHUNK]);
    let stream = futures_util::stream::unfold(TOTAL, move |left| {
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let n = left.min(CHUNK as u64);
            let frame = Frame::data(chunk.slice(..n as usize));
            Some((Ok::<_, std::io::Error>(frame), left - n))
        }
    });
    let body: ReqBody = StreamBody::new(stream).boxed_unsync();
    let req = Request::builder()
        .method("POST")
        .uri("/upload")
        .header("host", "stream.test")
        .body(body)
        .expect("valid request");
    let upload = async {
        let resp = client::send_h1_streaming(wharf.web(), req)
            .await
            .expect("upload request");
        client::read_reply(resp).await.expect("upload response")
    };
    let reply = tokio::time::timeout(Duration::from_secs(180), upload)
        .await
        .expect("200 MB upload timed out");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json()["bytes"],
        TOTAL,
        "every uploaded byte reaches the backend"
    );

    let max_kib = sampler.finish().await;
    let growth = max_kib.saturating_sub(idle_kib);
    eprintln!("RSS idle {idle_kib} KiB, peak {max_kib} KiB, growth {growth} KiB");
    assert!(
        growth < MAX_GROWTH_KIB,
        "wharf's RSS grew by {growth} KiB (idle {idle_kib} KiB, peak {max_kib} KiB) while \
         streaming 2 x 200 MB; limit {MAX_GROWTH_KIB} KiB"
    );
}
