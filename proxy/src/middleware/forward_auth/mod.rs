//! `forwardAuth`: asks an authentication server about each request. A 2xx answer
//! lets the request through (with `authResponseHeaders` /
//! `authResponseHeadersRegex` copied onto it, and `addAuthCookiesToResponse`
//! cookies added to the response); any other answer is returned to the client
//! as it is, with its status, headers and body.
//!
//! The request to the server is a GET (the client's method with
//! `preserveRequestMethod`) carrying the client's headers (only
//! `authRequestHeaders` when set) and X-Forwarded-Method, -Proto, -Host, -Uri and
//! -For; with `forwardBody` the client's body too, up to `maxBodySize` bytes (a
//! larger one is refused with 401). An unreachable server, or one that does not
//! answer within 30 s, gives 500. `headerField` is accepted; wharf's access log
//! does not record user names yet.

mod headers;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{Request, Response, StatusCode, Uri};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use tower::Service as _;

use super::handler::{self, Handler, ResponseFuture};
use super::shared::options;
use super::{HttpLayer, HttpService, MiddlewareError, SharedLayer};
use crate::body::{self, Body, BoxError};
use crate::forward::client::{Clients, TlsClient};
use crate::forward::reclaim::{BodySlot, Reclaimable};
use crate::provider::docker::config::ClientTls;

/// How long the whole exchange with the authentication server may take.
const AUTH_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer body read from the authentication server.
const MAX_AUTH_RESPONSE: usize = 4 << 20;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TlsOptions {
    #[serde(default)]
    ca: Option<String>,
    #[serde(default)]
    ca_optional: Option<bool>,
    #[serde(default)]
    cert: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    insecure_skip_verify: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    address: String,
    #[serde(default)]
    tls: Option<TlsOptions>,
    #[serde(default)]
    trust_forward_header: bool,
    #[serde(default)]
    auth_response_headers: Vec<String>,
    #[serde(default)]
    auth_response_headers_regex: String,
    #[serde(default)]
    auth_request_headers: Vec<String>,
    #[serde(default)]
    add_auth_cookies_to_response: Vec<String>,
    /// Accepted for compatibility; see the module documentation.
    #[serde(default, rename = "headerField")]
    _header_field: String,
    #[serde(default)]
    forward_body: bool,
    #[serde(default)]
    max_body_size: Option<i64>,
    #[serde(default)]
    preserve_location_header: bool,
    #[serde(default)]
    preserve_request_method: bool,
}

#[derive(Clone)]
enum AuthClient {
    Plain(Client<HttpConnector, Reclaimable>),
    Tls(TlsClient),
}

struct Config {
    address: Uri,
    client: AuthClient,
    trust_forward_header: bool,
    response_headers: Vec<HeaderName>,
    response_regex: Option<Regex>,
    request_headers: Vec<HeaderName>,
    cookies: Vec<String>,
    forward_body: bool,
    max_body_size: Option<usize>,
    preserve_location: bool,
    preserve_method: bool,
}

fn header_names(list: &[String], option: &str) -> Result<Vec<HeaderName>, MiddlewareError> {
    list.iter()
        .map(|n| {
            HeaderName::from_bytes(n.trim().as_bytes()).map_err(|_| {
                MiddlewareError::Message(format!("forwardAuth.{option}: invalid header name {n:?}"))
            })
        })
        .collect()
}

/// Builds the `forwardAuth` middleware; plain-HTTP servers share the upstream
/// connection pool, HTTPS ones get a client of their own.
pub fn layer(opts: &Value, clients: &Clients) -> Result<SharedLayer, MiddlewareError> {
    let o: Options = options("forwardAuth", opts)?;
    let invalid = |m: String| MiddlewareError::Message(format!("forwardAuth.{m}"));
    let address: Uri = o
        .address
        .parse()
        .map_err(|e| invalid(format!("address {:?}: {e}", o.address)))?;
    let https = match address.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            return Err(invalid(format!(
                "address {:?}: must be an http:// or https:// URL",
                o.address
            )))
        }
    };
    if address.host().is_none() {
        return Err(invalid(format!("address {:?} has no host", o.address)));
    }
    let client = if https || o.tls.is_some() {
        let t = o.tls.unwrap_or_default();
        if t.ca_optional.is_some() {
            tracing::warn!("forwardAuth.tls.caOptional is deprecated and ignored");
        }
        let tls = crate::provider::docker::tls::client_config(&ClientTls {
            ca: t.ca,
            cert: t.cert,
            key: t.key,
            insecure_skip_verify: t.insecure_skip_verify,
        })
        .map_err(|e| invalid(format!("tls: {e}")))?;
        AuthClient::Tls(clients.with_tls(tls))
    } else {
        AuthClient::Plain(clients.http1().clone())
    };
    let response_regex = match o.auth_response_headers_regex.as_str() {
        "" => None,
        r => Some(Regex::new(r).map_err(|source| MiddlewareError::Regex {
            kind: "forwardAuth",
            regex: r.to_string(),
            source,
        })?),
    };
    let config = Arc::new(Config {
        address,
        client,
        trust_forward_header: o.trust_forward_header,
        response_headers: header_names(&o.auth_response_headers, "authResponseHeaders")?,
        response_regex,
        request_headers: header_names(&o.auth_request_headers, "authRequestHeaders")?,
        cookies: o.add_auth_cookies_to_response,
        forward_body: o.forward_body,
        max_body_size: o.max_body_size.and_then(|n| usize::try_from(n).ok()),
        preserve_location: o.preserve_location_header,
        preserve_method: o.preserve_request_method,
    });
    let layer = HttpLayer::new(ForwardAuth { config });
    Ok(SharedLayer::new("forwardAuth", move |inner| {
        layer.wrap(inner)
    }))
}

/// The forwardAuth middleware's logic.
struct ForwardAuth {
    config: Arc<Config>,
}

impl Handler for ForwardAuth {
    fn handle(&self, req: Request<Body>, next: &mut HttpService) -> ResponseFuture {
        let config = self.config.clone();
        let mut inner = next.clone();
        handler::infallible(async move {
            let (mut parts, mut body) = req.into_parts();
            let mut auth_body = body::empty();
            if config.forward_body && !body.is_end_stream() {
                let limit = config.max_body_size.unwrap_or(usize::MAX);
                match read_limited(body, limit).await {
                    Ok(Some(bytes)) => {
                        auth_body = body::full(bytes.clone());
                        body = body::full(bytes);
                    }
                    Ok(None) => {
                        tracing::debug!(limit, "forwardAuth: request body too large");
                        return Ok(status_only(StatusCode::UNAUTHORIZED));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "forwardAuth: cannot read the request body");
                        return Ok(status_only(StatusCode::INTERNAL_SERVER_ERROR));
                    }
                }
            }
            let (status, auth_headers, auth_bytes) = match ask(&config, &parts, auth_body).await {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::warn!(address = %config.address, error = %e, "forwardAuth: authentication server failed");
                    return Ok(status_only(StatusCode::INTERNAL_SERVER_ERROR));
                }
            };
            if !status.is_success() {
                return Ok(denied(&config, status, auth_headers, auth_bytes));
            }
            headers::copy_auth_headers(
                &mut parts.headers,
                &auth_headers,
                &config.response_headers,
                config.response_regex.as_ref(),
            );
            let auth_cookies: Vec<_> = auth_headers
                .get_all(header::SET_COOKIE)
                .iter()
                .filter(|v| {
                    headers::cookie_name(v).is_some_and(|n| config.cookies.iter().any(|c| c == n))
                })
                .cloned()
                .collect();
            let mut resp = inner.call(Request::from_parts(parts, body)).await?;
            if !auth_cookies.is_empty() {
                let kept: Vec<_> = resp
                    .headers()
                    .get_all(header::SET_COOKIE)
                    .iter()
                    .filter(|v| {
                        !headers::cookie_name(v)
                            .is_some_and(|n| config.cookies.iter().any(|c| c == n))
                    })
                    .cloned()
                    .collect();
                let h = resp.headers_mut();
                h.remove(header::SET_COOKIE);
                for v in kept.into_iter().chain(auth_cookies) {
                    h.append(header::SET_COOKIE, v);
                }
            }
            Ok(resp)
        })
    }
}

/// Why asking the authentication server failed.
#[derive(Debug, thiserror::Error)]
enum AskError {
    #[error("invalid request: {0}")]
    Request(#[from] http::Error),
    #[error("{0}")]
    Client(#[from] hyper_util::client::legacy::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("reading the answer: {0}")]
    Body(BoxError),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// Reads a whole body of at most `limit` bytes; `None` when it is larger.
async fn read_limited<B>(mut body: B, limit: usize) -> Result<Option<Bytes>, BoxError>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(Into::into)?.into_data() {
            if buf.len() + data.len() > limit {
                return Ok(None);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Some(buf.freeze()))
}

/// Sends the authentication request; returns the answer's status, headers and body.
async fn ask(
    config: &Config,
    parts: &http::request::Parts,
    body: Body,
) -> Result<(StatusCode, http::HeaderMap, Bytes), AskError> {
    let method = if config.preserve_method {
        parts.method.clone()
    } else {
        http::Method::GET
    };
    let end = body.is_end_stream();
    let hint = body.size_hint();
    let mut req = Request::builder()
        .method(method)
        .uri(config.address.clone())
        .body(BodySlot::new(body).attempt(end, hint))?;
    *req.headers_mut() =
        headers::auth_request(parts, &config.request_headers, config.trust_forward_header);
    let exchange = async {
        let resp = match &config.client {
            AuthClient::Plain(c) => c.request(req).await?,
            AuthClient::Tls(c) => c.request(req).await?,
        };
        let (p, b) = resp.into_parts();
        let bytes = read_limited(b, MAX_AUTH_RESPONSE)
            .await
            .map_err(AskError::Body)?
            .ok_or(AskError::TooLarge(MAX_AUTH_RESPONSE))?;
        Ok::<_, AskError>((p.status, p.headers, bytes))
    };
    tokio::time::timeout(AUTH_TIMEOUT, exchange)
        .await
        .map_err(|_| AskError::Timeout(AUTH_TIMEOUT))?
}

/// The authentication server's refusal, passed on to the client.
fn denied(
    config: &Config,
    status: StatusCode,
    mut auth_headers: http::HeaderMap,
    body_bytes: Bytes,
) -> Response<Body> {
    headers::remove_hop_by_hop(&mut auth_headers);
    auth_headers.remove(header::CONTENT_LENGTH);
    if !config.preserve_location {
        let location = auth_headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| headers::absolute_location(l, &config.address))
            .and_then(|l| http::HeaderValue::from_str(&l).ok());
        if let Some(l) = location {
            auth_headers.insert(header::LOCATION, l);
        }
    }
    let mut resp = Response::new(body::full(body_bytes));
    *resp.status_mut() = status;
    *resp.headers_mut() = auth_headers;
    resp
}

fn status_only(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = status;
    resp
}

#[cfg(test)]
mod tests;
