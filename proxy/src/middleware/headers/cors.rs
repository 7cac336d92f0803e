//! The CORS part of the `headers` middleware.

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use regex::Regex;

use super::{header_value, plain, Options, KIND};
use crate::body::{self, Body};
use crate::middleware::MiddlewareError;

/// CORS settings, present when any CORS option is set.
#[derive(Debug, Clone)]
pub(super) struct Cors {
    allow_credentials: bool,
    allow_headers: Option<HeaderValue>,
    allow_methods: Option<HeaderValue>,
    origins: Vec<String>,
    origin_regexes: Vec<Regex>,
    expose_headers: Option<HeaderValue>,
    max_age: i64,
    vary: bool,
}

fn joined(option: &'static str, list: &[String]) -> Result<Option<HeaderValue>, MiddlewareError> {
    if list.is_empty() {
        return Ok(None);
    }
    header_value(option, &list.join(",")).map(Some)
}

impl Cors {
    pub(super) fn new(o: &Options) -> Result<Option<Cors>, MiddlewareError> {
        let any = o.access_control_allow_credentials
            || !o.access_control_allow_headers.is_empty()
            || !o.access_control_allow_methods.is_empty()
            || !o.access_control_allow_origin_list.is_empty()
            || !o.access_control_allow_origin_list_regex.is_empty()
            || !o.access_control_expose_headers.is_empty()
            || o.access_control_max_age != 0
            || o.add_vary_header;
        if !any {
            return Ok(None);
        }
        Ok(Some(Cors {
            allow_credentials: o.access_control_allow_credentials,
            allow_headers: joined("accessControlAllowHeaders", &o.access_control_allow_headers)?,
            allow_methods: joined("accessControlAllowMethods", &o.access_control_allow_methods)?,
            origins: o.access_control_allow_origin_list.clone(),
            origin_regexes: o
                .access_control_allow_origin_list_regex
                .iter()
                .map(|r| crate::middleware::regex(KIND, r))
                .collect::<Result<_, _>>()?,
            expose_headers: joined(
                "accessControlExposeHeaders",
                &o.access_control_expose_headers,
            )?,
            max_age: o.access_control_max_age,
            vary: o.add_vary_header,
        }))
    }

    /// The value for Access-Control-Allow-Origin when `origin` may see the
    /// response: `*` or the origin itself.
    fn allowed_origin(&self, origin: &str) -> Option<HeaderValue> {
        for o in &self.origins {
            if o == "*" || o == origin {
                return HeaderValue::from_str(o).ok();
            }
        }
        if self.origin_regexes.iter().any(|r| r.is_match(origin)) {
            return HeaderValue::from_str(origin).ok();
        }
        None
    }

    /// The answer to a preflight request (OPTIONS with Origin and
    /// Access-Control-Request-Method), or `None` for any other request.
    pub(super) fn preflight<B>(&self, req: &Request<B>) -> Option<Response<Body>> {
        let h = req.headers();
        let origin = h.get(header::ORIGIN)?.to_str().ok()?;
        if req.method() != Method::OPTIONS
            || h.get(header::ACCESS_CONTROL_REQUEST_METHOD)
                .is_none_or(|v| v.is_empty())
            || origin.is_empty()
        {
            return None;
        }
        let mut resp = plain(StatusCode::OK);
        *resp.body_mut() = body::empty();
        resp.headers_mut().remove(header::CONTENT_TYPE);
        let out = resp.headers_mut();
        if self.allow_credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(v) = &self.allow_headers {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
        }
        if let Some(v) = &self.allow_methods {
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v.clone());
        }
        if let Some(v) = self.allowed_origin(origin) {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(self.max_age),
        );
        Some(resp)
    }

    /// CORS headers on a response to a request that carried `origin`.
    pub(super) fn add_response_headers(&self, out: &mut HeaderMap, origin: Option<&HeaderValue>) {
        let origin = origin.and_then(|o| o.to_str().ok()).unwrap_or("");
        if let Some(v) = self.allowed_origin(origin) {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        if self.allow_credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(v) = &self.expose_headers {
            out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
        }
        if self.vary {
            let vary = out
                .get(header::VARY)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            if vary != "Origin" {
                let new = if vary.is_empty() {
                    "Origin".to_string()
                } else {
                    format!("{vary},Origin")
                };
                if let Ok(v) = HeaderValue::from_str(&new) {
                    out.insert(header::VARY, v);
                }
            }
        }
    }
}
