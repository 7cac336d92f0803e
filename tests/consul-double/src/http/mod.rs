//! Consul's HTTP API on top of the shared state: routing, ACL token check, read metadata
//! headers, blocking queries and Consul's plain-text error responses.

mod kv;
mod query;
mod session;

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Serialize;

use crate::state::{Endpoint, Settings, SharedState, Store};
pub use query::{Query, ReadOptions};

/// The response body type of every handler.
pub type Body = Full<Bytes>;

/// An error answer: status and Consul's plain-text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Plain-text body.
    pub message: String,
    allow: Option<&'static str>,
}

impl ApiError {
    /// An error with the given status and body.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            allow: None,
        }
    }

    /// A 400 with the given body.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn method_not_allowed(method: &Method, allow: &'static str) -> Self {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("method {method} not allowed"),
            allow: Some(allow),
        }
    }

    fn into_response(self) -> Response<Body> {
        let mut response = Response::new(Full::new(Bytes::from(self.message)));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Some(allow) = self.allow {
            headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

impl From<crate::state::StoreError> for ApiError {
    fn from(err: crate::state::StoreError) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
    }
}

/// What a handler gets: the request's parts, decoded path remainder and query.
pub struct Call {
    /// Shared data.
    pub state: SharedState,
    /// Settings at the time the request arrived.
    pub settings: Settings,
    /// Request method.
    pub method: Method,
    /// The decoded path after the endpoint's prefix (key, session ID, node).
    pub rest: String,
    /// Query parameters.
    pub query: Query,
    /// Declared body length, if any.
    pub content_length: Option<u64>,
    body: Incoming,
}

impl Call {
    /// Reads the whole body; more than [`BODY_CAP`] bytes is refused with a 413.
    pub async fn body(self) -> Result<Bytes, ApiError> {
        match Limited::new(self.body, BODY_CAP).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body too large, max size: {BODY_CAP} bytes"),
            )),
            Err(err) => Err(ApiError::bad_request(format!(
                "failed to read the request body: {err}"
            ))),
        }
    }
}

/// The most the double reads of any request body; Consul's own limits are lower.
pub const BODY_CAP: usize = 64 * 1024 * 1024;

/// Serves one request.
pub async fn handle(
    state: SharedState,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let settings = state.settings();
    if !settings.latency.is_zero() {
        tokio::time::sleep(settings.latency).await;
    }
    let (parts, body) = req.into_parts();
    let path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let (endpoint, allow, rest) = route(&path, &parts.method);
    state.count(endpoint);
    let query = Query::parse(parts.uri.query());
    let content_length = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let token = request_token(&query, &parts.headers);
    let call = Call {
        state,
        settings,
        method: parts.method,
        rest,
        query,
        content_length,
        body,
    };
    let result = match endpoint {
        Endpoint::Other => Ok(not_found()),
        _ if !allow.split(',').any(|m| m == call.method.as_str()) => {
            Err(ApiError::method_not_allowed(&call.method, allow))
        }
        _ => match check_request(&call, token.as_deref()) {
            Err(err) => Err(err),
            Ok(()) => dispatch_with_leader(endpoint, call).await,
        },
    };
    Ok(result.unwrap_or_else(ApiError::into_response))
}

/// Without a leader only `?stale` reads are answered (by a follower, which says it
/// knows no leader); everything else fails as Consul's RPC forwarding does.
async fn dispatch_with_leader(endpoint: Endpoint, call: Call) -> Result<Response<Body>, ApiError> {
    if call.state.has_leader() {
        return dispatch(endpoint, call).await;
    }
    if call.method != Method::GET || !call.query.has("stale") {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No cluster leader",
        ));
    }
    let mut response = dispatch(endpoint, call).await?;
    if let Some(known) = response.headers_mut().get_mut("x-consul-knownleader") {
        *known = HeaderValue::from_static("false");
    }
    Ok(response)
}

async fn dispatch(endpoint: Endpoint, call: Call) -> Result<Response<Body>, ApiError> {
    match endpoint {
        Endpoint::KvGet | Endpoint::KvPut | Endpoint::KvDelete => kv::handle(call).await,
        Endpoint::SessionCreate => session::create(call).await,
        Endpoint::SessionRenew => session::renew(call),
        Endpoint::SessionDestroy => session::destroy(call),
        Endpoint::SessionInfo => session::info(call).await,
        Endpoint::SessionList | Endpoint::SessionNode => session::list(call).await,
        Endpoint::StatusLeader => Ok(json(StatusCode::OK, &"127.0.0.1:8300", None)),
        Endpoint::Other => Ok(not_found()),
    }
}

/// Maps a decoded path to its endpoint, allowed methods and the path remainder.
fn route(path: &str, method: &Method) -> (Endpoint, &'static str, String) {
    if let Some(key) = path.strip_prefix("/v1/kv/") {
        let endpoint = match *method {
            Method::PUT => Endpoint::KvPut,
            Method::DELETE => Endpoint::KvDelete,
            _ => Endpoint::KvGet,
        };
        return (endpoint, "GET,PUT,DELETE", key.to_owned());
    }
    let prefixes: [(&str, Endpoint, &str); 4] = [
        ("/v1/session/renew/", Endpoint::SessionRenew, "PUT"),
        ("/v1/session/destroy/", Endpoint::SessionDestroy, "PUT"),
        ("/v1/session/info/", Endpoint::SessionInfo, "GET"),
        ("/v1/session/node/", Endpoint::SessionNode, "GET"),
    ];
    for (prefix, endpoint, allow) in prefixes {
        if let Some(rest) = path.strip_prefix(prefix) {
            return (endpoint, allow, rest.to_owned());
        }
    }
    match path {
        "/v1/session/create" => (Endpoint::SessionCreate, "PUT", String::new()),
        "/v1/session/list" => (Endpoint::SessionList, "GET", String::new()),
        "/v1/status/leader" => (Endpoint::StatusLeader, "GET", String::new()),
        _ => (Endpoint::Other, "", String::new()),
    }
}

/// The ACL token: `?token=`, then `X-Consul-Token`, then `Authorization: Bearer`.
fn request_token(query: &Query, headers: &http::HeaderMap) -> Option<String> {
    if let Some(token) = query.get("token").filter(|t| !t.is_empty()) {
        return Some(token.to_owned());
    }
    if let Some(token) = headers
        .get("x-consul-token")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
    {
        return Some(token.to_owned());
    }
    let auth = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, value) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| value.trim().to_owned())
}

/// Token, namespace and datacenter checks shared by every endpoint.
fn check_request(call: &Call, token: Option<&str>) -> Result<(), ApiError> {
    let ns = call.query.value("ns");
    if !ns.is_empty() && ns != "default" {
        return Err(ApiError::bad_request(
            "Invalid query parameter: \"ns\" - Namespaces are a Consul Enterprise feature",
        ));
    }
    let dc = call.query.value("dc");
    if !dc.is_empty() && dc != call.settings.datacenter {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No path to datacenter",
        ));
    }
    match (&call.settings.token, token) {
        (None, _) => Ok(()),
        (Some(required), Some(given)) if required == given => Ok(()),
        (Some(_), Some(_)) => Err(ApiError::new(StatusCode::FORBIDDEN, "ACL not found")),
        (Some(_), None) => Err(ApiError::new(StatusCode::FORBIDDEN, "Permission denied")),
    }
}

/// Read metadata sent as `X-Consul-*` headers.
#[derive(Debug, Clone, Copy)]
pub struct QueryMeta {
    /// `X-Consul-Index`.
    pub index: u64,
    /// `X-Consul-Effective-Consistency`.
    pub consistency: &'static str,
}

/// Adds Consul's read headers.
pub fn set_meta(response: &mut Response<Body>, meta: QueryMeta) {
    let headers = response.headers_mut();
    headers.insert("x-consul-index", HeaderValue::from(meta.index));
    headers.insert("x-consul-knownleader", HeaderValue::from_static("true"));
    headers.insert("x-consul-lastcontact", HeaderValue::from_static("0"));
    headers.insert(
        "x-consul-effective-consistency",
        HeaderValue::from_static(meta.consistency),
    );
}

/// A JSON response, with read headers when `meta` is given.
pub fn json<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
    meta: Option<QueryMeta>,
) -> Response<Body> {
    let body = match serde_json::to_vec(value) {
        Ok(body) => body,
        Err(err) => {
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
                .into_response()
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(meta) = meta {
        set_meta(&mut response, meta);
    }
    response
}

/// An empty-bodied response with the given status and read headers.
pub fn empty(status: StatusCode, meta: QueryMeta) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    set_meta(&mut response, meta);
    response
}

fn not_found() -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// Runs `read` until its index exceeds `opts.min_index` or the wait ends (Consul's
/// `blockingQuery`); an index of 0 never blocks, and a reported index is at least 1.
pub async fn blocking<T>(
    state: &SharedState,
    opts: ReadOptions,
    read: impl Fn(&Store) -> (u64, T),
) -> (u64, T) {
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut changes = state.subscribe();
    loop {
        changes.borrow_and_update();
        let (index, value) = state.with_store(|store, _| read(store));
        let index = index.max(1);
        if opts.min_index == 0 || index > opts.min_index {
            return (index, value);
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return (index, value);
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                let (index, value) = state.with_store(|store, _| read(store));
                return (index.max(1), value);
            }
        }
    }
}
