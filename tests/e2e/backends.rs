//! Upstream servers for wharf to proxy to, running in the test process on
//! `127.0.0.1:0`: an HTTP/1.1-only echo server, a slow echo server, an h2c (HTTP/2
//! prior knowledge) echo server, a streaming server and a WebSocket echo server.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Response body type of the test servers.
pub type RespBody = UnsyncBoxBody<Bytes, Infallible>;

type BoxFuture = Pin<Box<dyn Future<Output = Response<RespBody>> + Send>>;
type Handler = Arc<dyn Fn(Request<Incoming>) -> BoxFuture + Send + Sync>;

/// Size of the chunks the streaming server sends.
const CHUNK: usize = 64 * 1024;

/// Which HTTP protocol a test server speaks.
#[derive(Debug, Clone, Copy)]
enum Proto {
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 with prior knowledge only (no TLS, no upgrade).
    H2c,
}

/// A test server; its accept loop stops when it is dropped.
pub struct Backend {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    /// An HTTP/1.1-only echo server: answers every request with the JSON from
    /// [`echo_json`] (method, path, query, host, version, headers, body size and `name`).
    pub async fn echo(name: &str) -> Backend {
        Self::echo_after(name, Duration::ZERO).await
    }

    /// Like [`Backend::echo`], but waits `delay` before sending the response head.
    pub async fn slow(name: &str, delay: Duration) -> Backend {
        Self::echo_after(name, delay).await
    }

    async fn echo_after(name: &str, delay: Duration) -> Backend {
        let name = name.to_owned();
        serve(
            Proto::Http1,
            Arc::new(move |req| {
                let name = name.clone();
                Box::pin(async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let body = echo_json(&name, req).await;
                    json_response(StatusCode::OK, &body)
                })
            }),
        )
        .await
    }

    /// An h2c echo server (HTTP/2 with prior knowledge, nothing else): answers with the
    /// JSON of [`echo_json`] followed by a `grpc-status: 0` trailer, as a gRPC server
    /// would.
    pub async fn h2c(name: &str) -> Backend {
        let name = name.to_owned();
        serve(
            Proto::H2c,
            Arc::new(move |req| {
                let name = name.clone();
                Box::pin(async move {
                    let body = echo_json(&name, req).await;
                    let mut trailers = HeaderMap::new();
                    trailers.insert("grpc-status", HeaderValue::from_static("0"));
                    let frames = vec![
                        Ok(Frame::data(Bytes::from(body.to_string()))),
                        Ok(Frame::trailers(trailers)),
                    ];
                    let body = StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync();
                    Response::builder()
                        .header("content-type", "application/json")
                        .body(body)
                        .expect("valid response")
                })
            }),
        )
        .await
    }

    /// A streaming HTTP/1.1 server. `GET /download/N` answers N bytes generated on the
    /// fly (chunked, without a length); `POST /upload` reads the body as it arrives and
    /// answers `{"bytes": count}`. Nothing is buffered beyond one chunk.
    pub async fn streaming() -> Backend {
        serve(
            Proto::Http1,
            Arc::new(|req| {
                Box::pin(async move {
                    let path = req.uri().path().to_owned();
                    if let Some(n) = path.strip_prefix("/download/") {
                        let total: u64 = n.parse().unwrap_or(0);
                        return download(total);
                    }
                    if path == "/upload" {
                        let mut body = req.into_body();
                        let mut count: u64 = 0;
                        while let Some(frame) = body.frame().await {
                            match frame {
                                Ok(frame) => {
                                    if let Some(data) = frame.data_ref() {
                                        count += data.len() as u64;
                                    }
                                }
                                Err(e) => {
                                    return json_response(
                                        StatusCode::BAD_REQUEST,
                                        &json!({ "error": e.to_string(), "bytes": count }),
                                    )
                                }
                            }
                        }
                        return json_response(StatusCode::OK, &json!({ "bytes": count }));
                    }
                    json_response(StatusCode::NOT_FOUND, &json!({ "error": "no such path" }))
                })
            }),
        )
        .await
    }

    /// A WebSocket echo server: every text or binary message is sent back unchanged.
    pub async fn websocket_echo() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    while let Some(Ok(msg)) = ws.next().await {
                        if msg.is_close() {
                            return;
                        }
                        let echo = msg.is_text() || msg.is_binary();
                        if echo && ws.send(msg).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Backend { addr, hits, task }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `h2c://127.0.0.1:PORT`, for wharf to speak HTTP/2 to an h2c server.
    pub fn h2c_url(&self) -> String {
        format!("h2c://{}", self.addr)
    }

    /// Number of requests (or WebSocket handshakes) received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Binds `127.0.0.1:0` and serves `handler` over `proto` on every connection.
async fn serve(proto: Proto, handler: Handler) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let response = handler(req);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let io = TokioIo::new(stream);
                let _ = match proto {
                    Proto::Http1 => {
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, svc)
                            .await
                    }
                    Proto::H2c => {
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, svc)
                            .await
                    }
                };
            });
        }
    });
    Backend { addr, hits, task }
}

/// Reads `req` and describes it as JSON: `name`, `method`, `path`, `query` (or null),
/// `host` (the Host header, or the URI authority for HTTP/2), `version`
/// (`HTTP/1.1`, `HTTP/2.0`), `headers` (lower-case name -> list of values) and
/// `bodyBytes`.
pub async fn echo_json(name: &str, req: Request<Incoming>) -> Value {
    let (parts, body) = req.into_parts();
    let body_bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes().len())
        .unwrap_or(0);
    let mut headers = Map::new();
    for (key, value) in &parts.headers {
        let entry = headers
            .entry(key.as_str().to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(Value::String(
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
    }
    let host = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()));
    json!({
        "name": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "host": host,
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "bodyBytes": body_bytes,
    })
}

/// All values of header `name` as the echo server saw them, joined with `", "`;
/// `None` when the header was absent.
pub fn seen_header(echo: &Value, name: &str) -> Option<String> {
    let values = echo["headers"][name.to_ascii_lowercase()].as_array()?;
    Some(
        values
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response<RespBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed_unsync())
        .expect("valid response")
}

/// A response streaming `total` bytes in [`CHUNK`]-sized frames.
fn download(total: u64) -> Response<RespBody> {
    let chunk = Bytes::from(vec![b'w'; CHUNK]);
    let stream = futures_util::stream::unfold(total, move |left| {
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let n = left.min(CHUNK as u64);
            let frame = Frame::data(chunk.slice(..n as usize));
            Some((Ok::<_, Infallible>(frame), left - n))
        }
    });
    Response::builder()
        .header("content-type", "application/octet-stream")
        .body(StreamBody::new(stream).boxed_unsync())
        .expect("valid response")
}
