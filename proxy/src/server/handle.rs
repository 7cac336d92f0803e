//! The request path: from a request on an entrypoint to its router's handler.
//! It reads the current route table snapshot without locks and never waits on a
//! provider.

use std::borrow::Cow;
use std::sync::Arc;

use http::{header, HeaderValue, Request, Response};
use hyper::body::Incoming;
use tower::Service;
use tracing::Instrument;

use super::observe::{Matched, Pending};
use super::{ConnCtx, State};
use crate::body::{self, Body};
use crate::error::ProxyError;
use crate::forward::headers::{self, ClientSide};
use crate::middleware::ClientInfo;
use crate::rules::RequestView;

/// Where HTTP-01 challenges are answered, ahead of every router.
const ACME_HTTP_PREFIX: &str = "/.well-known/acme-challenge/";

/// The key authorization for a pending HTTP-01 challenge, if there is one.
async fn http01(token: &str, state: &State) -> Option<Response<Body>> {
    let source = state.challenges.as_ref()?;
    let key_authorization = source.http01(token).await?;
    let mut resp = Response::new(body::full(key_authorization));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Some(resp)
}

/// Lowercases a Host value and drops its port and trailing dot.
pub fn normalize_host(raw: &str) -> Cow<'_, str> {
    let no_port = if let Some(rest) = raw.strip_prefix('[') {
        rest.split_once(']').map(|(h, _)| h).unwrap_or(rest)
    } else {
        match raw.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        }
    };
    let trimmed = no_port.trim_end_matches('.');
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

/// Handles one request that arrived on a traffic entrypoint; counts it in the
/// metrics and the access log when they are on.
pub async fn handle(req: Request<Incoming>, cx: Arc<ConnCtx>, state: Arc<State>) -> Response<Body> {
    let Some(obs) = &cx.observe else {
        return route(req.map(body::boxed), &cx, &state).await.0;
    };
    if obs.serve_metrics && req.uri().path() == "/metrics" {
        if let Some(m) = &obs.metrics {
            return m.respond();
        }
    }
    let (pending, req) = Pending::begin(req, obs, &cx.entrypoint, cx.peer, cx.tls_info);
    let (resp, matched) = route(req, &cx, &state).await;
    pending.finish(resp, matched)
}

/// Finds the request's router and runs its handler; returns the router that matched.
async fn route(
    mut req: Request<Body>,
    cx: &ConnCtx,
    state: &State,
) -> (Response<Body>, Option<Matched>) {
    if let Some(token) = req.uri().path().strip_prefix(ACME_HTTP_PREFIX) {
        if let Some(resp) = http01(token, state).await {
            return (resp, None);
        }
    }
    if cx.ping && req.uri().path() == "/ping" {
        return (super::super::admin::ping(state), None);
    }
    if !req.headers().contains_key(header::HOST) {
        if let Some(v) = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(header::HOST, v);
        }
    }
    // A shared copy of the Host value (no allocation), so the headers stay mutable.
    let host_value = req.headers().get(header::HOST).cloned();
    let raw_host = host_value
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !cx.trusted {
        headers::strip_forwarded(req.headers_mut());
    }
    let forwarded_for = req.headers().get("x-forwarded-for").cloned();
    req.extensions_mut().insert(ClientInfo {
        peer: headers::canonical(cx.peer.ip()),
        tls: cx.tls,
        forwarded_for,
    });
    let websocket = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    headers::set_forwarded(
        req.headers_mut(),
        ClientSide {
            ip: &cx.peer_ip,
            host: host_value.as_ref(),
            tls: cx.tls,
            websocket,
        },
    );
    let host = normalize_host(raw_host);
    if let Some(redirect) = &cx.redirect {
        return (redirect.respond(&req, &host), None);
    }
    let found = {
        let table = state.table.load();
        table.entrypoint(&cx.entrypoint).and_then(|routes| {
            let set = if cx.tls { &routes.tls } else { &routes.plain };
            let view = RequestView {
                host: &host,
                path: req.uri().path(),
                query: req.uri().query(),
                method: req.method(),
                headers: req.headers(),
                client_ip: headers::canonical(cx.peer.ip()),
            };
            set.find(&view).map(|e| {
                (
                    Matched {
                        router: e.name.clone(),
                        service: e.service.clone(),
                        metrics: e.metrics.clone(),
                    },
                    e.handler.clone(),
                )
            })
        })
    };
    let Some((matched, handler)) = found else {
        tracing::debug!(host = %host, path = req.uri().path(), "no router matches");
        return (ProxyError::NoRoute.into_response(), None);
    };
    let span = tracing::info_span!(
        "request",
        router = %matched.router,
        service = %matched.service,
        method = %req.method(),
        path = req.uri().path(),
    );
    // Every service in a chain is always ready, so `call` needs no `poll_ready` first.
    let mut handler = handler;
    let resp = handler.call(req).instrument(span).await;
    match resp {
        Ok(r) => (r, Some(matched)),
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(normalize_host("Example.COM:8080"), "example.com");
        assert_eq!(normalize_host("a.test."), "a.test");
        assert_eq!(normalize_host("a.test.:80"), "a.test");
        assert_eq!(normalize_host("[::1]:443"), "::1");
        assert_eq!(normalize_host("plain"), "plain");
    }
}
