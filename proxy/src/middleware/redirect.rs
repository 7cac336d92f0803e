//! `redirectScheme` and `redirectRegex`: both look at the request's full URL
//! (`scheme://host[:port]/path?query`, the scheme from X-Forwarded-Proto as the
//! request path set it) and answer a redirect when the rewritten URL differs.

use http::{header, HeaderValue, Method, Request, StatusCode};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::handler::{forward, status_response, ClientInfo, Handler, HttpLayer, ResponseFuture};
use super::{parse, Built, HttpService, MiddlewareError};
use crate::body::Body;

/// `redirectScheme` options.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct SchemeOptions {
    scheme: String,
    port: String,
    permanent: bool,
}

/// `redirectRegex` options.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RegexOptions {
    regex: String,
    replacement: String,
    permanent: bool,
}

/// Builds a `redirectScheme` middleware.
pub fn scheme(opts: &Value) -> Result<Built, MiddlewareError> {
    let o: SchemeOptions = parse("redirectScheme", opts)?;
    let scheme = o.scheme.trim().to_ascii_lowercase();
    if scheme.is_empty() {
        return Err(MiddlewareError::invalid(
            "redirectScheme",
            "scheme",
            "a target scheme is required",
        ));
    }
    let port = o.port.trim().to_string();
    if !port.is_empty() && port.parse::<u16>().is_err() {
        return Err(MiddlewareError::invalid(
            "redirectScheme",
            "port",
            format!("{port:?} is not a port number"),
        ));
    }
    Ok(Built::Http(HttpLayer::new(Redirect {
        target: Target::Scheme { scheme, port },
        permanent: o.permanent,
    })))
}

/// Builds a `redirectRegex` middleware.
pub fn regex(opts: &Value) -> Result<Built, MiddlewareError> {
    let o: RegexOptions = parse("redirectRegex", opts)?;
    if o.regex.is_empty() {
        return Err(MiddlewareError::invalid(
            "redirectRegex",
            "regex",
            "a regular expression is required",
        ));
    }
    let regex = super::regex("redirectRegex", &o.regex)?;
    Ok(Built::Http(HttpLayer::new(Redirect {
        target: Target::Regex {
            regex,
            replacement: o.replacement,
        },
        permanent: o.permanent,
    })))
}

/// Where a redirect points.
#[derive(Debug)]
enum Target {
    /// The same URL with another scheme and port (the scheme's default when empty).
    Scheme { scheme: String, port: String },
    /// The URL rewritten by a regular expression.
    Regex { regex: Regex, replacement: String },
}

#[derive(Debug)]
struct Redirect {
    target: Target,
    permanent: bool,
}

impl Handler for Redirect {
    fn handle(&self, req: Request<Body>, next: &mut HttpService) -> ResponseFuture {
        match self.location(&req) {
            Some(location) => {
                let resp = self.respond(req.method(), &location);
                Box::pin(async move { resp })
            }
            None => forward(req, next),
        }
    }
}

impl Redirect {
    /// The URL to redirect to, or `None` to let the request through.
    fn location<B>(&self, req: &Request<B>) -> Option<String> {
        let url = RequestUrl::of(req);
        let (old, new) = match &self.target {
            Target::Scheme { scheme, port } => {
                let port = if port.is_empty() || is_default_port(scheme, port) {
                    String::new()
                } else {
                    format!(":{port}")
                };
                let new = format!("{scheme}://{}{port}{}", url.host, url.uri);
                (url.normalized(), new)
            }
            Target::Regex { regex, replacement } => {
                let old = url.raw();
                if !regex.is_match(&old) {
                    return None;
                }
                let new = regex.replace_all(&old, replacement.as_str()).into_owned();
                (old, new)
            }
        };
        (new != old).then_some(new)
    }

    fn respond(&self, method: &Method, location: &str) -> http::Response<Body> {
        let get = method == Method::GET;
        let status = match (self.permanent, get) {
            (true, true) => StatusCode::MOVED_PERMANENTLY,
            (true, false) => StatusCode::PERMANENT_REDIRECT,
            (false, true) => StatusCode::FOUND,
            (false, false) => StatusCode::TEMPORARY_REDIRECT,
        };
        match HeaderValue::from_str(location) {
            Ok(v) => {
                let mut resp = status_response(status);
                resp.headers_mut().insert(header::LOCATION, v);
                resp
            }
            Err(_) => status_response(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

fn is_default_port(scheme: &str, port: &str) -> bool {
    matches!((scheme, port), ("http", "80") | ("https", "443"))
}

/// The parts of the URL the client asked for.
struct RequestUrl {
    scheme: &'static str,
    /// Host without port (IPv6 in brackets).
    host: String,
    /// Port as sent, if any.
    port: Option<String>,
    /// Path and query.
    uri: String,
}

impl RequestUrl {
    fn of<B>(req: &Request<B>) -> Self {
        let tls = req
            .extensions()
            .get::<ClientInfo>()
            .map(|c| c.tls)
            .unwrap_or(req.uri().scheme_str() == Some("https"));
        let scheme = match req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("https" | "wss") => "https",
            Some("http" | "ws") => "http",
            _ if tls => "https",
            _ => "http",
        };
        let raw_host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or("");
        let (host, port) = split_host_port(raw_host);
        let uri = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        Self {
            scheme,
            host: host.to_string(),
            port: port.map(str::to_string),
            uri,
        }
    }

    /// `scheme://host[:port]uri` with the port as sent.
    fn raw(&self) -> String {
        match &self.port {
            Some(p) => format!("{}://{}:{p}{}", self.scheme, self.host, self.uri),
            None => format!("{}://{}{}", self.scheme, self.host, self.uri),
        }
    }

    /// Like [`RequestUrl::raw`], without the scheme's default port.
    fn normalized(&self) -> String {
        match &self.port {
            Some(p) if !is_default_port(self.scheme, p) => {
                format!("{}://{}:{p}{}", self.scheme, self.host, self.uri)
            }
            _ => format!("{}://{}{}", self.scheme, self.host, self.uri),
        }
    }
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`.
fn split_host_port(raw: &str) -> (&str, Option<&str>) {
    if raw.starts_with('[') {
        if let Some(end) = raw.find(']') {
            let port = raw[end + 1..].strip_prefix(':').filter(|p| !p.is_empty());
            return (&raw[..=end], port);
        }
        return (raw, None);
    }
    match raw.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (raw, None),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::handler::testing::{backend, request, run};
    use super::*;

    fn layer(b: Built) -> HttpLayer {
        match b {
            Built::Http(l) => l,
            other => panic!("{other:?}"),
        }
    }

    async fn call(
        l: &HttpLayer,
        method: &str,
        host: &str,
        uri: &str,
        proto: &str,
    ) -> (u16, Option<String>, usize) {
        let (inner, seen) = backend(&[]);
        let mut req = request(method, uri, "192.0.2.1");
        req.headers_mut()
            .insert(header::HOST, HeaderValue::from_str(host).unwrap());
        req.headers_mut()
            .insert("x-forwarded-proto", HeaderValue::from_str(proto).unwrap());
        let resp = run(l, inner, req).await;
        let location = resp
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string());
        let hits = seen.lock().unwrap().len();
        (resp.status().as_u16(), location, hits)
    }

    #[tokio::test]
    async fn scheme_redirect_statuses_and_ports() {
        let l = layer(scheme(&json!({"scheme": "https"})).unwrap());
        assert_eq!(
            call(&l, "GET", "app.test:8000", "/a?b=1", "http").await,
            (302, Some("https://app.test/a?b=1".into()), 0)
        );
        assert_eq!(
            call(&l, "POST", "app.test", "/a", "http").await,
            (307, Some("https://app.test/a".into()), 0)
        );
        assert_eq!(
            call(&l, "GET", "app.test", "/a", "https").await,
            (200, None, 1)
        );
        assert_eq!(
            call(&l, "GET", "app.test:443", "/a", "https").await,
            (200, None, 1)
        );
        let l = layer(
            scheme(&json!({"scheme": "https", "permanent": "true", "port": "8443"})).unwrap(),
        );
        assert_eq!(
            call(&l, "GET", "[::1]:8000", "/", "http").await,
            (301, Some("https://[::1]:8443/".into()), 0)
        );
        assert_eq!(
            call(&l, "PUT", "app.test", "/", "http").await,
            (308, Some("https://app.test:8443/".into()), 0)
        );
        assert_eq!(
            call(&l, "GET", "app.test:8443", "/", "https").await,
            (200, None, 1)
        );
        let l = layer(scheme(&json!({"scheme": "https", "port": 443})).unwrap());
        assert_eq!(
            call(&l, "GET", "app.test:80", "/x", "http").await,
            (302, Some("https://app.test/x".into()), 0)
        );
    }

    #[tokio::test]
    async fn regex_redirect_matches_the_full_url() {
        let l = layer(
            regex(&json!({
                "regex": "^https?://localhost/(.*)",
                "replacement": "http://mydomain/${1}",
                "permanent": true,
            }))
            .unwrap(),
        );
        assert_eq!(
            call(&l, "GET", "localhost", "/foo?x=y", "http").await,
            (301, Some("http://mydomain/foo?x=y".into()), 0)
        );
        assert_eq!(
            call(&l, "GET", "other", "/foo", "http").await,
            (200, None, 1)
        );
        let l = layer(
            regex(&json!({"regex": "^http://(.*):8000/(.*)", "replacement": "https://$1/$2"}))
                .unwrap(),
        );
        assert_eq!(
            call(&l, "GET", "a.test:8000", "/p", "http").await,
            (302, Some("https://a.test/p".into()), 0)
        );
        let same = layer(regex(&json!({"regex": "^(.*)$", "replacement": "$1"})).unwrap());
        assert_eq!(
            call(&same, "GET", "a.test", "/p", "http").await,
            (200, None, 1)
        );
    }

    #[test]
    fn bad_options_are_named() {
        let e = scheme(&json!({"port": "443"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "redirectScheme.scheme: a target scheme is required"
        );
        let e = scheme(&json!({"scheme": "https", "port": "x"})).unwrap_err();
        assert!(e.to_string().starts_with("redirectScheme.port"), "{e}");
        assert!(matches!(
            regex(&json!({"regex": "(", "replacement": "x"})),
            Err(MiddlewareError::Regex { .. })
        ));
        let e = regex(&json!({"regex": "a", "replacment": "x"})).unwrap_err();
        assert!(e.to_string().contains("did you mean `replacement`"), "{e}");
        assert_eq!(split_host_port("a:1"), ("a", Some("1")));
        assert_eq!(split_host_port("::1"), ("::1", None));
    }
}
