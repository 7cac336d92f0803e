//! Clients used to talk to wharf: one-shot HTTP/1.1 and HTTP/2 (h2c prior knowledge)
//! connections built on `hyper::client::conn`, and a pooled keep-alive client.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Context};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpStream;

/// Upper bound for any single request made by the tests, so a hung proxy fails the test
/// instead of hanging it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A request body that may be streamed; the error type is `std::io::Error`.
pub type ReqBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// A fully read response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Protocol version of the response.
    pub version: Version,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Reply {
    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body, got status {} body {:?}: {e}",
                self.status,
                self.text()
            )
        })
    }
}

/// An empty request body.
pub fn empty() -> ReqBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A request body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> ReqBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Builds a `GET path` request with the given `Host` header.
pub fn get_request(host: &str, path: &str) -> Request<ReqBody> {
    Request::builder()
        .method("GET")
        .uri(path)
        .header("host", host)
        .body(empty())
        .expect("valid request")
}

/// Reads a whole response body.
pub async fn read_reply(resp: Response<Incoming>) -> anyhow::Result<Reply> {
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .context("reading the response body")?
        .to_bytes();
    Ok(Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    })
}

/// Opens a new HTTP/1.1 connection to `addr` and sends `req` on it, returning the
/// response head with its body still streaming.
pub async fn send_h1_streaming(
    addr: SocketAddr,
    req: Request<ReqBody>,
) -> anyhow::Result<Response<Incoming>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(req)
        .await
        .context("sending the request")
}

/// Sends `req` over a new HTTP/1.1 connection and reads the whole response.
pub async fn send_h1(addr: SocketAddr, req: Request<ReqBody>) -> anyhow::Result<Reply> {
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        read_reply(send_h1_streaming(addr, req).await?).await
    })
    .await
    .map_err(|_| anyhow!("request to {addr} timed out after {REQUEST_TIMEOUT:?}"))?
}

/// `GET path` with `Host: host` over a new HTTP/1.1 connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> anyhow::Result<Reply> {
    send_h1(addr, get_request(host, path)).await
}

/// Sends `req` over a new HTTP/2 connection with prior knowledge (h2c) and reads the
/// whole response, including trailers (returned separately).
pub async fn send_h2c(
    addr: SocketAddr,
    req: Request<ReqBody>,
) -> anyhow::Result<(Reply, Option<HeaderMap>)> {
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .context("HTTP/2 handshake")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let resp = sender
            .send_request(req)
            .await
            .context("sending the request")?;
        let (parts, body) = resp.into_parts();
        let collected = body.collect().await.context("reading the response body")?;
        let trailers = collected.trailers().cloned();
        Ok((
            Reply {
                status: parts.status,
                version: parts.version,
                headers: parts.headers,
                body: collected.to_bytes(),
            },
            trailers,
        ))
    })
    .await
    .map_err(|_| anyhow!("h2c request to {addr} timed out after {REQUEST_TIMEOUT:?}"))?
}

/// A pooled keep-alive HTTP/1.1 client, as a long-lived real client would use.
pub type PooledClient = Client<HttpConnector, ReqBody>;

/// Builds a [`PooledClient`].
pub fn pooled() -> PooledClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// `GET http://addr/path` with `Host: host` through a pooled client.
pub async fn pooled_get(
    client: &PooledClient,
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> anyhow::Result<Reply> {
    let req = Request::builder()
        .uri(format!("http://{addr}{path}"))
        .header("host", host)
        .body(empty())
        .expect("valid request");
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        let resp = client.request(req).await.context("pooled request")?;
        read_reply(resp).await
    })
    .await
    .map_err(|_| anyhow!("pooled request to {addr} timed out after {REQUEST_TIMEOUT:?}"))?
}
