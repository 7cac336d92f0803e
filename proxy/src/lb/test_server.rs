//! A real HTTP/1.1 and h2c server on `127.0.0.1` for the health check tests, whose
//! answer can be changed while it runs and which records the requests it gets.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
}

/// Shared, adjustable behaviour of a [`TestServer`].
#[derive(Debug, Default)]
pub(crate) struct Behaviour {
    /// Status of every answer, except the redirect paths below.
    pub(crate) status: AtomicU16,
    /// Never answer (to trigger timeouts).
    pub(crate) hang: AtomicBool,
    /// Requests received.
    pub(crate) hits: AtomicUsize,
    pub(crate) seen: Mutex<Vec<Seen>>,
}

/// Serves until dropped. `/redirect` answers 302 to `/target`, `/loop` 302 to
/// itself and `/elsewhere` 302 to an `https` URL; every other path gets `status`.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) behaviour: Arc<Behaviour>,
    task: JoinHandle<()>,
}

impl TestServer {
    pub(crate) async fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::start_on(listener, status)
    }

    pub(crate) fn start_on(listener: TcpListener, status: u16) -> Self {
        let addr = listener.local_addr().expect("local address");
        let behaviour = Arc::new(Behaviour::default());
        behaviour.status.store(status, Ordering::SeqCst);
        let task = tokio::spawn(serve(listener, Arc::clone(&behaviour)));
        Self {
            addr,
            behaviour,
            task,
        }
    }

    pub(crate) fn url(&self) -> http::Uri {
        format!("http://{}", self.addr).parse().expect("valid URI")
    }

    pub(crate) fn set_status(&self, status: u16) {
        self.behaviour.status.store(status, Ordering::SeqCst);
    }

    pub(crate) fn hits(&self) -> usize {
        self.behaviour.hits.load(Ordering::SeqCst)
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.behaviour.seen.lock().expect("not poisoned").clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port nothing listens on (it was just bound and released).
pub(crate) async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("local address")
}

/// Polls `condition` every 20 ms until it holds or `within` has passed.
pub(crate) async fn eventually(within: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn serve(listener: TcpListener, behaviour: Arc<Behaviour>) {
    // Dropped with the accept loop, which aborts the open connections too.
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let behaviour = Arc::clone(&behaviour);
        connections.spawn(async move {
            let service = service_fn(move |req| answer(req, Arc::clone(&behaviour)));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    behaviour: Arc<Behaviour>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    behaviour.hits.fetch_add(1, Ordering::SeqCst);
    behaviour.seen.lock().expect("not poisoned").push(Seen {
        method: req.method().clone(),
        path: req.uri().path().to_string(),
        version: req.version(),
        headers: req.headers().clone(),
    });
    if behaviour.hang.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let (status, location) = match req.uri().path() {
        "/redirect" => (302, Some("/target")),
        "/loop" => (302, Some("/loop")),
        "/elsewhere" => (302, Some("https://example.invalid/health")),
        _ => (behaviour.status.load(Ordering::SeqCst), None),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    *response.status_mut() = StatusCode::from_u16(status).expect("valid status");
    if let Some(location) = location {
        response.headers_mut().insert(
            http::header::LOCATION,
            http::HeaderValue::from_static(location),
        );
    }
    Ok(response)
}
