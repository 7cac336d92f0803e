//! Forwarding a request to one server of a load-balanced service: choosing the
//! server, rewriting the request for the upstream, retrying a failed connection on
//! another server, timing out, and passing protocol upgrades through.
//!
//! Without a [`RetryPolicy`] a request whose connection failed is tried once on
//! each other server. With one (set by the `retry` middleware) it is tried up to
//! `attempts` times in all, waiting the policy's backoff between attempts and
//! coming back to servers already tried when every server failed. Either way only
//! a request whose body was not read yet is sent again.

pub mod client;
pub mod headers;
pub mod pool;
pub mod reclaim;
#[cfg(test)]
mod retry_tests;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{header, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use hyper_util::rt::TokioIo;
use tracing::{debug, warn};

use crate::body::{self, Body};
use crate::error::ProxyError;
use crate::lb::Balancer;
use crate::middleware::retry::RetryPolicy;
use client::Clients;
use pool::SendFailure;
use reclaim::BodySlot;

/// The leaf of a router's handler chain: forwards to one server of a service.
#[derive(Clone)]
pub struct LbService {
    inner: Arc<LbInner>,
}

/// What forwarding did, attached to the response's extensions for metrics and the
/// access log.
#[derive(Debug, Clone)]
pub struct UpstreamNote {
    /// The load-balanced service that forwarded (qualified name).
    pub service: Arc<str>,
    /// The server of the last attempt, if one was picked.
    pub url: Option<Uri>,
    /// Attempts on other servers after a connection failure.
    pub retries: u32,
    /// Time from the first attempt to the server's response headers.
    pub origin: Option<Duration>,
}

struct LbInner {
    service: Arc<str>,
    balancer: Balancer,
    pass_host_header: bool,
    clients: Clients,
}

impl LbService {
    /// A forwarding service over `balancer`'s servers.
    pub fn new(
        service: String,
        balancer: Balancer,
        pass_host_header: bool,
        clients: Clients,
    ) -> Self {
        Self {
            inner: Arc::new(LbInner {
                service: service.into(),
                balancer,
                pass_host_header,
                clients,
            }),
        }
    }

    /// The balancer (for the admin API's server status).
    pub fn balancer(&self) -> &Balancer {
        &self.inner.balancer
    }
}

impl tower::Service<Request<Body>> for LbService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut note = UpstreamNote {
                service: inner.service.clone(),
                url: None,
                retries: 0,
                origin: None,
            };
            let mut resp = inner.forward(req, &mut note).await.unwrap_or_else(|e| {
                debug!(service = %inner.service, error = %e, "upstream error");
                e.into_response()
            });
            resp.extensions_mut().insert(note);
            Ok(resp)
        })
    }
}

impl LbInner {
    async fn forward(
        &self,
        mut req: Request<Body>,
        note: &mut UpstreamNote,
    ) -> Result<Response<Body>, ProxyError> {
        let started = Instant::now();
        let upgrade = headers::upgrade_requested(req.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        let end_stream = body.is_end_stream();
        let hint = body.size_hint();
        let slot = BodySlot::new(body);
        let policy = parts.extensions.get::<RetryPolicy>().copied();
        let mut attempt: u32 = 1;
        let mut tried: Vec<usize> = Vec::new();
        let mut last_error = None;
        // Only a request that may be sent again needs its headers kept: with one
        // server and no retry policy, the first attempt takes them.
        let may_retry = policy.is_some() || self.balancer.upstreams().len() > 1;
        loop {
            if !may_retry && !tried.is_empty() {
                return Err(last_error.unwrap_or(ProxyError::NoServer));
            }
            let mut pick = self.balancer.pick(&parts.headers, &tried);
            if pick.is_none() && policy.is_some() && !tried.is_empty() {
                // The retry middleware asks for more attempts than there are
                // servers: start over with every server.
                tried.clear();
                pick = self.balancer.pick(&parts.headers, &tried);
            }
            let Some(pick) = pick else {
                return Err(last_error.unwrap_or(ProxyError::NoServer));
            };
            let index = pick.index;
            let target = &pick.upstream.url;
            note.retries = tried.len() as u32;
            note.url = Some(target.clone());
            let set_cookie = pick.set_cookie.clone();
            let h2c = target.scheme_str() == Some("h2c");
            let (authority, path) = upstream_target(target, parts.uri.path_and_query())?;
            // HTTP/2 goes through hyper-util's client, which takes absolute URIs;
            // HTTP/1.1 through the worker's pool, which sends origin-form ones.
            let uri = if h2c {
                Uri::builder()
                    .scheme(Scheme::HTTP)
                    .authority(authority.clone())
                    .path_and_query(path)
                    .build()
            } else {
                Uri::builder().path_and_query(path).build()
            }
            .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
            let mut out = Request::builder()
                .method(parts.method.clone())
                .uri(uri)
                .version(if h2c {
                    Version::HTTP_2
                } else {
                    Version::HTTP_11
                })
                .body(slot.attempt(end_stream, hint))
                .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
            *out.headers_mut() = if may_retry {
                parts.headers.clone()
            } else {
                std::mem::take(&mut parts.headers)
            };
            headers::remove_hop_by_hop(out.headers_mut(), upgrade);
            if h2c {
                out.headers_mut().remove(header::HOST);
            } else if !self.pass_host_header || !out.headers().contains_key(header::HOST) {
                if let Ok(v) = HeaderValue::from_str(authority.as_str()) {
                    out.headers_mut().insert(header::HOST, v);
                }
            }
            let timeout = self.clients.settings.response_header_timeout;
            let sent = async {
                if h2c {
                    match self.clients.h2c().request(out).await {
                        Ok(resp) => Ok(resp.map(body::boxed)),
                        Err(e) => Err(SendFailure {
                            connect: e.is_connect(),
                            source: Box::new(e),
                        }),
                    }
                } else {
                    self.clients.pool().send(&authority, out).await
                }
            };
            let result = if timeout.is_zero() {
                sent.await
            } else {
                match tokio::time::timeout(timeout, sent).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(ProxyError::Timeout {
                            upstream: target.to_string(),
                            timeout,
                        })
                    }
                }
            };
            match result {
                Ok(resp) => {
                    note.origin = Some(started.elapsed());
                    self.balancer.report_success(index);
                    let mut resp = self.response(resp, client_upgrade, set_cookie);
                    *resp.version_mut() = parts.version;
                    return Ok(resp);
                }
                Err(e) if e.connect && slot.is_unread() => {
                    warn!(service = %self.service, upstream = %target, error = %e.source, "connect failed, trying another server");
                    self.balancer.report_connect_failure(index);
                    tried.push(index);
                    let error = ProxyError::Connect {
                        upstream: target.to_string(),
                        source: e.source,
                    };
                    if let Some(policy) = policy {
                        if attempt >= policy.attempts {
                            return Err(error);
                        }
                        let wait = policy.backoff(attempt);
                        attempt += 1;
                        debug!(service = %self.service, attempt, ?wait, "retrying the request");
                        tokio::time::sleep(wait).await;
                    }
                    last_error = Some(error);
                }
                Err(e) if e.connect => {
                    self.balancer.report_connect_failure(index);
                    return Err(ProxyError::Connect {
                        upstream: target.to_string(),
                        source: e.source,
                    });
                }
                Err(e) => {
                    return Err(ProxyError::Upstream {
                        upstream: target.to_string(),
                        source: e.source,
                    })
                }
            }
        }
    }

    fn response(
        &self,
        mut resp: Response<Body>,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
        set_cookie: Option<HeaderValue>,
    ) -> Response<Body> {
        let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switching {
            if let Some(client_upgrade) = client_upgrade {
                let upstream_upgrade = hyper::upgrade::on(&mut resp);
                let service = self.service.clone();
                tokio::spawn(async move {
                    match tokio::try_join!(client_upgrade, upstream_upgrade) {
                        Ok((client, upstream)) => {
                            let mut client = TokioIo::new(client);
                            let mut upstream = TokioIo::new(upstream);
                            if let Err(e) =
                                tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                            {
                                debug!(%service, error = %e, "upgraded connection ended");
                            }
                        }
                        Err(e) => debug!(%service, error = %e, "upgrade failed"),
                    }
                });
            }
        }
        headers::remove_hop_by_hop(resp.headers_mut(), switching);
        if let Some(cookie) = set_cookie {
            resp.headers_mut().append(header::SET_COOKIE, cookie);
        }
        resp
    }
}

/// Where a request goes: the server's authority, and its base path joined with the
/// request's path and query.
fn upstream_target(
    target: &Uri,
    path: Option<&PathAndQuery>,
) -> Result<(Authority, PathAndQuery), ProxyError> {
    let authority = target
        .authority()
        .cloned()
        .ok_or_else(|| ProxyError::Config(format!("server URL {target} has no host")))?;
    let base_path = target.path().trim_end_matches('/');
    let path_and_query = match path {
        // The request's own path and query, shared rather than copied.
        Some(p) if base_path.is_empty() => p.clone(),
        _ => {
            let req_path = path.map(PathAndQuery::as_str).unwrap_or("/");
            PathAndQuery::try_from(format!("{base_path}{req_path}"))
                .map_err(|e| ProxyError::BadRequest(e.to_string()))?
        }
    };
    Ok((authority, path_and_query))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_target_joins_server_and_request() {
        let target = |t: &str, p: Option<&str>| {
            let t: Uri = t.parse().unwrap();
            let p: Option<PathAndQuery> = p.map(|p| p.parse().unwrap());
            let (a, p) = upstream_target(&t, p.as_ref()).unwrap();
            (a.to_string(), p.to_string())
        };
        assert_eq!(
            target("http://10.0.0.1:8080", Some("/a/b?x=1")),
            ("10.0.0.1:8080".into(), "/a/b?x=1".into())
        );
        assert_eq!(
            target("h2c://svc:50051/base/", Some("/a/b?x=1")),
            ("svc:50051".into(), "/base/a/b?x=1".into())
        );
        assert_eq!(
            target("h2c://svc:50051/base/", None),
            ("svc:50051".into(), "/base/".into())
        );
    }
}
