//! `headers`: custom request and response headers (an empty value removes the
//! header), CORS (preflight requests are answered here), and the security
//! headers Traefik takes from unrolled/secure (STS, frame options, XSS filter,
//! CSP, allowed hosts, the deprecated SSL redirect options). `isDevelopment` is
//! accepted and has no effect.

mod cors;
mod secure;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::handler::{status_response, Handler, HttpLayer, ResponseFuture};
use super::{parse, Built, HttpService, MiddlewareError};
use crate::body::Body;
use cors::Cors;
use secure::Secure;

const KIND: &str = "headers";

/// `headers` options, with Traefik v2/v3 names.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Options {
    custom_request_headers: BTreeMap<String, String>,
    custom_response_headers: BTreeMap<String, String>,
    access_control_allow_credentials: bool,
    access_control_allow_headers: Vec<String>,
    access_control_allow_methods: Vec<String>,
    access_control_allow_origin_list: Vec<String>,
    access_control_allow_origin_list_regex: Vec<String>,
    access_control_expose_headers: Vec<String>,
    access_control_max_age: i64,
    add_vary_header: bool,
    allowed_hosts: Vec<String>,
    hosts_proxy_headers: Vec<String>,
    ssl_redirect: bool,
    ssl_temporary_redirect: bool,
    ssl_host: String,
    ssl_force_host: bool,
    ssl_proxy_headers: BTreeMap<String, String>,
    sts_seconds: i64,
    sts_include_subdomains: bool,
    sts_preload: bool,
    #[serde(rename = "forceSTSHeader")]
    force_sts_header: bool,
    frame_deny: bool,
    custom_frame_options_value: String,
    content_type_nosniff: bool,
    browser_xss_filter: bool,
    #[serde(rename = "customBrowserXSSValue")]
    custom_browser_xss_value: String,
    content_security_policy: String,
    content_security_policy_report_only: String,
    public_key: String,
    referrer_policy: String,
    feature_policy: String,
    permissions_policy: String,
    is_development: bool,
}

/// Builds a `headers` middleware.
pub fn build(opts: &Value) -> Result<Built, MiddlewareError> {
    let o: Options = parse(KIND, opts)?;
    Ok(Built::Http(HttpLayer::new(Headers {
        request: header_edits("customRequestHeaders", &o.custom_request_headers)?,
        response: header_edits("customResponseHeaders", &o.custom_response_headers)?,
        cors: Cors::new(&o)?,
        secure: Secure::new(&o)?,
    })))
}

/// One header to set (`Some`) or remove (`None`).
type Edit = (HeaderName, Option<HeaderValue>);

fn header_name(option: &'static str, name: &str) -> Result<HeaderName, MiddlewareError> {
    HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        MiddlewareError::invalid(KIND, option, format!("{name:?} is not a header name"))
    })
}

fn header_value(option: &'static str, value: &str) -> Result<HeaderValue, MiddlewareError> {
    HeaderValue::from_str(value).map_err(|_| {
        MiddlewareError::invalid(
            KIND,
            option,
            format!("{value:?} is not a valid header value"),
        )
    })
}

fn header_edits(
    option: &'static str,
    map: &BTreeMap<String, String>,
) -> Result<Vec<Edit>, MiddlewareError> {
    map.iter()
        .map(|(k, v)| {
            let value = if v.is_empty() {
                None
            } else {
                Some(header_value(option, v)?)
            };
            Ok((header_name(option, k)?, value))
        })
        .collect()
}

fn apply(headers: &mut HeaderMap, edits: &[Edit]) {
    for (name, value) in edits {
        match value {
            Some(v) => {
                headers.insert(name.clone(), v.clone());
            }
            None => {
                headers.remove(name);
            }
        }
    }
}

struct Headers {
    request: Vec<Edit>,
    response: Vec<Edit>,
    cors: Option<Cors>,
    secure: Secure,
}

impl Handler for Headers {
    fn handle(&self, mut req: Request<Body>, next: &mut HttpService) -> ResponseFuture {
        let ssl = self.secure.is_ssl(&req);
        if let Some(resp) = self.secure.check_request(&req, ssl) {
            return Box::pin(async move { resp });
        }
        if let Some(cors) = &self.cors {
            if let Some(mut resp) = cors.preflight(&req) {
                self.secure.add_response_headers(resp.headers_mut(), ssl);
                return Box::pin(async move { resp });
            }
        }
        let origin = req.headers().get(header::ORIGIN).cloned();
        apply(req.headers_mut(), &self.request);
        let fut = super::handler::forward(req, next);
        let response = self.response.clone();
        let cors = self.cors.clone();
        let secure = self.secure.clone();
        Box::pin(async move {
            let mut resp: Response<Body> = fut.await;
            apply(resp.headers_mut(), &response);
            if let Some(cors) = &cors {
                cors.add_response_headers(resp.headers_mut(), origin.as_ref());
            }
            secure.add_response_headers(resp.headers_mut(), ssl);
            resp
        })
    }
}

/// An empty 200 answer (CORS preflight) or an error page.
fn plain(status: StatusCode) -> Response<Body> {
    status_response(status)
}
