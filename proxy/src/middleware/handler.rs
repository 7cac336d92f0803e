//! The plumbing shared by the request/response middlewares: a [`Handler`] holds a
//! middleware's logic, [`HttpLayer`] turns it into a tower layer over
//! [`HttpService`], and [`ClientInfo`] tells a middleware who the client is.

use std::convert::Infallible;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use http::{header, HeaderValue, Request, Response, StatusCode};
use tower::Service;

use super::HttpService;
use crate::body::{self, Body};

/// The future a [`Handler`] returns.
pub type ResponseFuture = BoxFuture<'static, Response<Body>>;

/// What the proxy knew about the client before any middleware ran; set by the
/// request path as a request extension.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The peer's IP (IPv4-mapped addresses as IPv4).
    pub peer: IpAddr,
    /// Whether the client connection is TLS.
    pub tls: bool,
    /// The X-Forwarded-For header as received from a trusted peer (before the
    /// proxy appended the peer), as Traefik's middlewares see it.
    pub forwarded_for: Option<HeaderValue>,
}

/// A middleware's logic: answer the request itself or pass it to `next`.
pub trait Handler: Send + Sync + 'static {
    /// Handles one request. `next` is always ready; a handler that calls it after
    /// an `.await` clones it first.
    fn handle(&self, req: Request<Body>, next: &mut HttpService) -> ResponseFuture;
}

/// Passes `req` to `next` and returns its response.
pub fn forward(req: Request<Body>, next: &mut HttpService) -> ResponseFuture {
    infallible(next.call(req))
}

/// A handler's future from one that cannot fail (one that uses `?` on the
/// `Infallible` errors of the services it calls).
pub fn infallible<F>(fut: F) -> ResponseFuture
where
    F: std::future::Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    fut.map(|r| match r {
        Ok(resp) => resp,
        Err(never) => match never {},
    })
    .boxed()
}

/// A response with `status` and its reason phrase as a plain-text body.
pub fn status_response(status: StatusCode) -> Response<Body> {
    let text = status.canonical_reason().unwrap_or("").to_string();
    let mut resp = Response::new(body::full(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A tower layer wrapping a service with a [`Handler`].
#[derive(Clone)]
pub struct HttpLayer(Arc<dyn Handler>);

impl HttpLayer {
    /// The layer for `handler`.
    pub fn new(handler: impl Handler) -> Self {
        Self(Arc::new(handler))
    }

    /// Wraps `inner`.
    pub fn wrap(&self, inner: HttpService) -> HttpService {
        HttpService::new(HandlerService {
            handler: self.0.clone(),
            inner,
        })
    }
}

impl fmt::Debug for HttpLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HttpLayer")
    }
}

/// The service an [`HttpLayer`] produces.
#[derive(Clone)]
struct HandlerService {
    handler: Arc<dyn Handler>,
    inner: HttpService,
}

impl Service<Request<Body>> for HandlerService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        self.handler.handle(req, &mut self.inner).map(Ok).boxed()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fake inner service and request helpers for middleware tests.

    use std::sync::Mutex;

    use http_body_util::BodyExt;

    use super::*;

    /// What the fake inner service saw.
    #[derive(Debug, Clone)]
    pub struct Seen {
        pub headers: http::HeaderMap,
        pub body: bytes::Bytes,
    }

    /// A backend that records requests and answers 200 "ok" with `headers`.
    pub fn backend(
        headers: &[(&'static str, &'static str)],
    ) -> (HttpService, Arc<Mutex<Vec<Seen>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let headers: Vec<_> = headers.to_vec();
        let svc = tower::service_fn(move |req: Request<Body>| {
            let log = log.clone();
            let headers = headers.clone();
            async move {
                let (parts, b) = req.into_parts();
                let body = b.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                log.lock().unwrap().push(Seen {
                    headers: parts.headers,
                    body,
                });
                let mut resp = Response::new(body::full("ok"));
                for (k, v) in headers {
                    resp.headers_mut().append(k, HeaderValue::from_static(v));
                }
                Ok::<_, Infallible>(resp)
            }
        });
        (HttpService::new(svc), seen)
    }

    /// A request from `peer` (plain HTTP) with Host `host`.
    pub fn request(method: &str, uri: &str, peer: &str) -> Request<Body> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "app.test")
            .body(body::empty())
            .unwrap();
        req.extensions_mut().insert(ClientInfo {
            peer: peer.parse().unwrap(),
            tls: false,
            forwarded_for: None,
        });
        req
    }

    /// Runs `req` through `layer` in front of `inner`.
    pub async fn run(layer: &HttpLayer, inner: HttpService, req: Request<Body>) -> Response<Body> {
        let mut svc = layer.wrap(inner);
        svc.call(req).await.unwrap()
    }

    /// The response body as text.
    pub async fn text(resp: Response<Body>) -> String {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
