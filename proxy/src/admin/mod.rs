//! The admin entrypoint: `/ping`, `/metrics` (when `metrics.prometheus` is on) and the JSON API in Traefik's shape
//! (`/api/overview`, `/api/entrypoints`, `/api/http/{routers,services,middlewares}`,
//! `/api/rawdata`, `/api/version`).

mod api;
mod dashboard;

use std::sync::atomic::Ordering;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::body::{self, Body};
use crate::server::State;

/// `/ping`: `OK` with 200, or the terminating status once shutdown has started.
pub fn ping(state: &State) -> Response<Body> {
    let terminating = state.terminating.load(Ordering::SeqCst);
    let (status, text) = if terminating {
        (
            StatusCode::from_u16(state.terminating_status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "Terminating",
        )
    } else {
        (StatusCode::OK, "OK")
    };
    let mut resp = Response::new(body::full(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Serves one request on the admin entrypoint.
pub async fn handle<B>(req: Request<B>, state: &State) -> Response<Body> {
    let path = req.uri().path();
    if path == "/ping" || path.starts_with("/ping/") {
        return ping(state);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    if let Some(resp) = dashboard::handle(path, req.headers(), state) {
        return resp;
    }
    if let (Some(m), "/metrics") = (&state.admin.metrics, path) {
        return m.respond();
    }
    if let Some(rest) = path.strip_prefix("/api") {
        return api::handle(rest, req.uri().query(), state);
    }
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}

fn text(status: StatusCode, t: &'static str) -> Response<Body> {
    let mut resp = Response::new(body::full(t));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
