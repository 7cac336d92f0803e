//! A bare HTTP/1.1 reverse proxy on hyper, for benchmarks only: what forwarding costs
//! with wharf's building blocks (hyper's server and client connections, a
//! single-threaded tokio runtime, a pool of keep-alive upstream connections) and
//! nothing else: no routing, middlewares, metrics or parking. `tests/bench/ab
//! --bare` measures it next to wharf and nginx.
//!
//! Usage: `bare_proxy LISTEN_ADDR UPSTREAM_ADDR` (for example `127.0.0.1:8000
//! 127.0.0.1:9000`). Every request goes to the upstream with X-Forwarded-For added.

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Idle upstream connections.
type Pool = Rc<RefCell<Vec<SendRequest<Incoming>>>>;

/// A response body that gives its connection back once read to the end.
struct Pooled {
    inner: Incoming,
    sender: Option<SendRequest<Incoming>>,
    pool: Pool,
}

impl Body for Pooled {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            if let Some(sender) = self.sender.take() {
                self.pool.borrow_mut().push(sender);
            }
        }
    }
}

type Reply = Response<Either<Pooled, Full<Bytes>>>;

/// A pooled connection to `upstream`, or a new one; `None` when it cannot be opened.
async fn connection(pool: &Pool, upstream: SocketAddr) -> Option<SendRequest<Incoming>> {
    loop {
        let idle = pool.borrow_mut().pop();
        let Some(mut sender) = idle else { break };
        if sender.ready().await.is_ok() {
            return Some(sender);
        }
    }
    let stream = TcpStream::connect(upstream).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    Some(sender)
}

async fn forward(
    mut req: Request<Incoming>,
    peer: HeaderValue,
    pool: Pool,
    upstream: SocketAddr,
) -> Result<Reply, Infallible> {
    req.headers_mut().insert("x-forwarded-for", peer);
    let bad_gateway = || {
        let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(b"bad gateway"))));
        *r.status_mut() = StatusCode::BAD_GATEWAY;
        r
    };
    let Some(mut sender) = connection(&pool, upstream).await else {
        return Ok(bad_gateway());
    };
    match sender.send_request(req).await {
        Ok(resp) => Ok(resp.map(|inner| {
            Either::Left(Pooled {
                inner,
                sender: Some(sender),
                pool,
            })
        })),
        Err(_) => Ok(bad_gateway()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare_proxy LISTEN_ADDR UPSTREAM_ADDR";
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let upstream: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let served: Result<(), Box<dyn std::error::Error>> = local.block_on(&runtime, async move {
        let listener = TcpListener::bind(listen).await?;
        let pool: Pool = Rc::default();
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let peer = HeaderValue::from_str(&peer.ip().to_string())?;
            let pool = pool.clone();
            tokio::task::spawn_local(async move {
                let service =
                    service_fn(move |req| forward(req, peer.clone(), pool.clone(), upstream));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    served
}
