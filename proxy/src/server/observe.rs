//! Metrics and the access log on the request path. A request's facts are taken when
//! it arrives; when its response body ends (or is dropped), one step counts it in
//! the entrypoint, router and service scopes and queues its access-log record.
//! Nothing here waits: metrics are atomics, the log queue is lossy.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Response, Version};
use http_body::{Body as HttpBody, Frame, SizeHint};
use prometheus_client::metrics::gauge::Gauge;

use crate::accesslog::{AccessLogger, Record};
use crate::body::{self, Body, BoxError};
use crate::forward::UpstreamNote;
use crate::metrics::{Metrics, Outcome, RequestScope, RouteMetrics, TlsInfo};

/// Requests logged by this process, for the access log's `RequestCount`.
static REQUEST_COUNT: AtomicU64 = AtomicU64::new(0);

/// What one entrypoint records about its requests and connections.
#[derive(Debug, Clone, Default)]
pub struct EntryObserver {
    /// Every metric (for retries and `/metrics`).
    pub metrics: Option<Arc<Metrics>>,
    /// `traefik_entrypoint_*` of this entrypoint.
    pub scope: Option<Arc<RequestScope>>,
    /// `traefik_open_connections` of this entrypoint.
    pub open_connections: Option<Gauge>,
    /// Serve `/metrics` here (`metrics.prometheus.entryPoint` names this entrypoint).
    pub serve_metrics: bool,
    /// The access log.
    pub log: Option<AccessLogger>,
}

/// Counts a connection as open until dropped.
pub struct OpenConnection(Option<Gauge>);

impl OpenConnection {
    /// Counts one more open connection on `gauge`.
    pub fn new(gauge: Option<&Gauge>) -> Self {
        if let Some(g) = gauge {
            g.inc();
        }
        Self(gauge.cloned())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if let Some(g) = &self.0 {
            g.dec();
        }
    }
}

/// The router that handled a request.
pub struct Matched {
    /// Qualified router name.
    pub router: Arc<str>,
    /// Qualified service name.
    pub service: Arc<str>,
    /// The route's metrics.
    pub metrics: Option<Arc<RouteMetrics>>,
}

/// Request facts the access log needs beyond the metrics'.
struct LogFacts {
    logger: AccessLogger,
    start: SystemTime,
    client: SocketAddr,
    entrypoint: Arc<str>,
    host: String,
    path: String,
    version: Version,
    headers: Option<HeaderMap>,
    referer: Option<String>,
    user_agent: Option<String>,
    count: u64,
}

/// A request being observed, until its response ends.
pub struct Pending {
    start: Instant,
    method: Method,
    protocol: &'static str,
    tls: Option<TlsInfo>,
    entry: Option<Arc<RequestScope>>,
    metrics: Option<Arc<Metrics>>,
    request_bytes: Option<Arc<AtomicU64>>,
    log: Option<Box<LogFacts>>,
}

/// Traefik's `protocol` label: `websocket`, `sse` or `http`.
fn protocol(headers: &HeaderMap) -> &'static str {
    let has = |name: header::HeaderName, value: &[u8]| {
        headers.get(name).is_some_and(|v| {
            v.as_bytes()
                .windows(value.len())
                .any(|w| w.eq_ignore_ascii_case(value))
        })
    };
    if has(header::UPGRADE, b"websocket") {
        "websocket"
    } else if has(header::ACCEPT, b"text/event-stream") {
        "sse"
    } else {
        "http"
    }
}

impl Pending {
    /// Takes the facts of `req` as it arrives; counts its body bytes from now on.
    pub fn begin(
        req: Request<hyper::body::Incoming>,
        obs: &EntryObserver,
        entrypoint: &Arc<str>,
        client: SocketAddr,
        tls: Option<TlsInfo>,
    ) -> (Self, Request<Body>) {
        let start = Instant::now();
        let log = obs.log.as_ref().map(|logger| {
            let count = REQUEST_COUNT.fetch_add(1, Ordering::Relaxed) + 1;
            let text = |name| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let agent = logger.wants_agent();
            Box::new(LogFacts {
                logger: logger.clone(),
                start: SystemTime::now(),
                client,
                entrypoint: entrypoint.clone(),
                host: text(header::HOST)
                    .or_else(|| req.uri().authority().map(|a| a.to_string()))
                    .unwrap_or_default(),
                path: req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "/".into()),
                version: req.version(),
                headers: logger.wants_headers().then(|| req.headers().clone()),
                referer: if agent { text(header::REFERER) } else { None },
                user_agent: if agent {
                    text(header::USER_AGENT)
                } else {
                    None
                },
                count,
            })
        });
        let pending = Pending {
            start,
            method: req.method().clone(),
            protocol: protocol(req.headers()),
            tls,
            entry: obs.scope.clone(),
            metrics: obs.metrics.clone(),
            request_bytes: None,
            log,
        };
        let (pending, req) = if http_body::Body::is_end_stream(req.body()) {
            (pending, req.map(body::boxed))
        } else {
            let counter = Arc::new(AtomicU64::new(0));
            let req = req.map(|b| {
                body::boxed(Counted {
                    inner: body::boxed(b),
                    bytes: counter.clone(),
                })
            });
            (
                Pending {
                    request_bytes: Some(counter),
                    ..pending
                },
                req,
            )
        };
        (pending, req)
    }

    /// Wraps the response so the request is counted and logged when its body ends.
    pub fn finish(self, mut resp: Response<Body>, matched: Option<Matched>) -> Response<Body> {
        let note = resp.extensions_mut().remove::<UpstreamNote>();
        if let (Some(m), Some(n)) = (&self.metrics, &note) {
            m.retried(&n.service, u64::from(n.retries));
        }
        let status = resp.status().as_u16();
        let response_headers = self
            .log
            .as_ref()
            .filter(|l| l.logger.wants_headers())
            .map(|_| resp.headers().clone());
        let done = Done {
            pending: self,
            status,
            matched,
            note,
            response_headers,
            bytes: 0,
        };
        resp.map(|b| {
            body::boxed(Observed {
                inner: b,
                done: Some(done),
            })
        })
    }
}

/// Everything needed once the response body is over.
struct Done {
    pending: Pending,
    status: u16,
    matched: Option<Matched>,
    note: Option<UpstreamNote>,
    response_headers: Option<HeaderMap>,
    bytes: u64,
}

impl Done {
    fn complete(self) {
        let p = self.pending;
        let elapsed = p.start.elapsed();
        let request_bytes = p
            .request_bytes
            .as_ref()
            .map(|b| b.load(Ordering::Relaxed))
            .unwrap_or(0);
        let outcome = Outcome {
            code: self.status,
            method: &p.method,
            protocol: p.protocol,
            seconds: elapsed.as_secs_f64(),
            request_bytes,
            response_bytes: self.bytes,
            tls: p.tls,
        };
        if let Some(scope) = &p.entry {
            scope.record(&outcome);
        }
        if let Some(m) = self.matched.as_ref().and_then(|m| m.metrics.as_ref()) {
            m.record(&outcome);
        }
        if let Some(log) = p.log {
            let log = *log;
            let note = self.note;
            let record = Record {
                start: log.start,
                duration: elapsed,
                entrypoint: log.entrypoint,
                router: self.matched.as_ref().map(|m| m.router.clone()),
                service: self.matched.as_ref().map(|m| m.service.clone()),
                upstream: note.as_ref().and_then(|n| n.url.clone()),
                origin_duration: note.as_ref().and_then(|n| n.origin),
                client: log.client,
                host: log.host,
                method: p.method,
                path: log.path,
                version: log.version,
                tls: p.tls,
                request_size: request_bytes,
                status: self.status,
                response_size: self.bytes,
                retries: note.as_ref().map(|n| n.retries).unwrap_or(0),
                request_headers: log.headers,
                response_headers: self.response_headers,
                referer: log.referer,
                user_agent: log.user_agent,
                count: log.count,
            };
            log.logger.log(record);
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that completes its request's observation when it ends or is dropped.
    struct Observed {
        #[pin]
        inner: Body,
        done: Option<Done>,
    }

    impl PinnedDrop for Observed {
        fn drop(this: Pin<&mut Self>) {
            if let Some(done) = this.project().done.take() {
                done.complete();
            }
        }
    }
}

impl HttpBody for Observed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(done), Some(data)) = (this.done.as_mut(), frame.data_ref()) {
                    done.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                if let Some(done) = this.done.take() {
                    done.complete();
                }
            }
            Poll::Pending => {}
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

pin_project_lite::pin_project! {
    /// A request body that counts the bytes read from the client.
    struct Counted {
        #[pin]
        inner: Body,
        bytes: Arc<AtomicU64>,
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
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
    use http_body_util::BodyExt;

    use super::*;
    use crate::config::static_config::Prometheus;

    #[test]
    fn protocol_labels_follow_traefik() {
        let mut h = HeaderMap::new();
        assert_eq!(protocol(&h), "http");
        h.insert(
            header::ACCEPT,
            "text/html, text/event-stream".parse().unwrap(),
        );
        assert_eq!(protocol(&h), "sse");
        h.insert(header::UPGRADE, "WebSocket".parse().unwrap());
        assert_eq!(protocol(&h), "websocket");
    }

    #[tokio::test]
    async fn a_request_is_counted_when_its_response_body_ends() {
        let metrics = Arc::new(Metrics::new(&Prometheus::default(), false));
        let pending = Pending {
            start: Instant::now(),
            method: Method::GET,
            protocol: "http",
            tls: None,
            entry: metrics.entrypoint("web"),
            metrics: Some(metrics.clone()),
            request_bytes: None,
            log: None,
        };
        let mut resp = Response::new(body::full("hello"));
        resp.extensions_mut().insert(UpstreamNote {
            service: "s@file".into(),
            url: None,
            retries: 2,
            origin: None,
        });
        let resp = pending.finish(resp, None);
        let series = r#"traefik_entrypoint_responses_bytes_total{code="200",method="GET",protocol="http",entrypoint="web"}"#;
        assert!(
            !metrics.encode().contains(series),
            "not before the body ends"
        );
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
        let text = metrics.encode();
        assert!(text.contains(&format!("{series} 5")), "{text}");
        assert!(
            text.contains(r#"traefik_service_retries_total{service="s@file"} 2"#),
            "{text}"
        );
    }
}
