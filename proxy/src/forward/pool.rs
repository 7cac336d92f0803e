//! Keep-alive HTTP/1.1 connections to upstream servers, one pool per traffic
//! worker. A request takes the idle connection to its server used last, or opens
//! one; the connection comes back when the response body has been read to its end.
//! Each connection is driven by a task on the worker that opened it, so forwarding
//! never crosses threads.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::debug;

use super::client::ClientSettings;
use super::reclaim::Reclaimable;
use crate::body::{self, Body, BoxError};

/// Why a request could not be forwarded.
#[derive(Debug)]
pub struct SendFailure {
    /// The connection could not be opened, so nothing was sent.
    pub connect: bool,
    /// What failed.
    pub source: BoxError,
}

impl SendFailure {
    fn connect(source: impl Into<BoxError>) -> Self {
        Self {
            connect: true,
            source: source.into(),
        }
    }

    fn exchange(source: impl Into<BoxError>) -> Self {
        Self {
            connect: false,
            source: source.into(),
        }
    }
}

/// An idle connection and when it became idle.
struct Idle {
    sender: SendRequest<Reclaimable>,
    since: Instant,
}

#[derive(Default)]
struct Idles {
    by_server: HashMap<Authority, Vec<Idle>>,
    last_sweep: Option<Instant>,
}

/// Idle keep-alive connections of one traffic worker, by server address.
pub struct Http1Pool {
    idle: Mutex<Idles>,
    settings: ClientSettings,
}

impl Http1Pool {
    /// An empty pool with `settings`' timeouts and limits.
    pub fn new(settings: ClientSettings) -> Arc<Self> {
        Arc::new(Self {
            idle: Mutex::new(Idles::default()),
            settings,
        })
    }

    /// Sends `req` (origin-form URI) to `server` on a pooled or a new connection.
    /// A request a reused connection could not take (the server had closed it) is
    /// sent again on another one.
    pub async fn send(
        self: &Arc<Self>,
        server: &Authority,
        mut req: Request<Reclaimable>,
    ) -> Result<Response<Body>, SendFailure> {
        loop {
            let (mut sender, reused) = match self.checkout(server) {
                Some(sender) => (sender, true),
                None => (self.connect(server).await?, false),
            };
            if let Err(e) = sender.ready().await {
                if reused {
                    continue;
                }
                return Err(SendFailure::exchange(e));
            }
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let keep = resp.status() != StatusCode::SWITCHING_PROTOCOLS;
                    let checkin = keep.then(|| Checkin {
                        pool: self.clone(),
                        server: server.clone(),
                        sender,
                    });
                    return Ok(resp.map(|inner| body::boxed(PooledBody { inner, checkin })));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => {
                        debug!(%server, "pooled connection was closed, sending on another");
                        req = unsent;
                    }
                    _ => return Err(SendFailure::exchange(e.into_error())),
                },
            }
        }
    }

    /// The idle connection to `server` used last, dropping expired and closed ones.
    fn checkout(&self, server: &Authority) -> Option<SendRequest<Reclaimable>> {
        let mut idles = self.idle.lock().ok()?;
        let list = idles.by_server.get_mut(server)?;
        while let Some(idle) = list.pop() {
            if !idle.sender.is_closed() && idle.since.elapsed() < self.settings.idle_timeout {
                return Some(idle.sender);
            }
        }
        None
    }

    /// Keeps `sender` for the next request to `server`, within the per-server limit.
    fn checkin(&self, server: Authority, sender: SendRequest<Reclaimable>) {
        if sender.is_closed() {
            return;
        }
        let Ok(mut idles) = self.idle.lock() else {
            return;
        };
        let now = Instant::now();
        let list = idles.by_server.entry(server).or_default();
        if list.len() < self.settings.max_idle_per_host {
            list.push(Idle { sender, since: now });
        }
        // Now and then, close what expired and forget servers without connections.
        let sweep_every = (self.settings.idle_timeout / 2).max(Duration::from_secs(1));
        if idles
            .last_sweep
            .is_none_or(|t| now.duration_since(t) >= sweep_every)
        {
            idles.last_sweep = Some(now);
            let timeout = self.settings.idle_timeout;
            idles.by_server.retain(|_, list| {
                list.retain(|i| !i.sender.is_closed() && now.duration_since(i.since) < timeout);
                !list.is_empty()
            });
        }
    }

    /// Opens a connection to `server` and starts the task that drives it.
    async fn connect(&self, server: &Authority) -> Result<SendRequest<Reclaimable>, SendFailure> {
        let port = server.port_u16().unwrap_or(80);
        let host = server.host().trim_start_matches('[').trim_end_matches(']');
        let timeout = self.settings.connect_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(SendFailure::connect(e)),
            Err(_) => {
                return Err(SendFailure::connect(format!(
                    "connecting to {server} timed out after {timeout:?}"
                )))
            }
        };
        stream.set_nodelay(true).map_err(SendFailure::connect)?;
        let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(30));
        socket2::SockRef::from(&stream)
            .set_tcp_keepalive(&keepalive)
            .map_err(SendFailure::connect)?;
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(SendFailure::connect)?;
        let server = server.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                debug!(%server, error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// Hands a connection back to its pool.
struct Checkin {
    pool: Arc<Http1Pool>,
    server: Authority,
    sender: SendRequest<Reclaimable>,
}

pin_project_lite::pin_project! {
    /// A response body that returns its connection to the pool once read to the end.
    struct PooledBody {
        #[pin]
        inner: Incoming,
        checkin: Option<Checkin>,
    }

    impl PinnedDrop for PooledBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.inner.is_end_stream() {
                if let Some(c) = this.checkin.take() {
                    c.pool.checkin(c.server, c.sender);
                }
            }
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                if let Some(c) = this.checkin.take() {
                    c.pool.checkin(c.server, c.sender);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.checkin.take();
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::forward::reclaim::BodySlot;

    /// A server that answers every request on a connection with "ok", closing the
    /// connection after `per_conn` requests; counts the connections it accepted.
    async fn server(per_conn: usize) -> (Authority, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    for _ in 0..per_conn {
                        let mut seen = Vec::new();
                        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            let n = s.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            seen.extend_from_slice(&buf[..n]);
                        }
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .await;
                    }
                });
            }
        });
        (addr.to_string().parse().unwrap(), accepted)
    }

    fn request() -> Request<Reclaimable> {
        let slot = BodySlot::new(body::empty());
        Request::builder()
            .uri("/")
            .header(http::header::HOST, "test")
            .body(slot.attempt(true, SizeHint::with_exact(0)))
            .unwrap()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_response_was_read() {
        let (server, accepted) = server(usize::MAX).await;
        let pool = Http1Pool::new(ClientSettings::default());
        for _ in 0..3 {
            let resp = pool.send(&server, request()).await.unwrap();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&bytes[..], b"ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced() {
        let (server, accepted) = server(1).await;
        let pool = Http1Pool::new(ClientSettings::default());
        for _ in 0..3 {
            let resp = pool.send(&server, request()).await.unwrap();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&bytes[..], b"ok");
            // Let the server's close reach the idle connection.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_unread_response_keeps_its_connection_out_of_the_pool() {
        let (server, accepted) = server(usize::MAX).await;
        let pool = Http1Pool::new(ClientSettings::default());
        let first = pool.send(&server, request()).await.unwrap();
        let second = pool.send(&server, request()).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "the first is busy");
        drop((first, second));
        assert!(
            pool.checkout(&server).is_none(),
            "unread bodies give nothing back"
        );
        let third = pool.send(&server, request()).await.unwrap();
        third.into_body().collect().await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert!(
            pool.checkout(&server).is_some(),
            "a read body gives its connection back"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        drop(listener);
        let pool = Http1Pool::new(ClientSettings::default());
        let err = pool.send(&server, request()).await.unwrap_err();
        assert!(err.connect, "{err:?}");
    }
}
