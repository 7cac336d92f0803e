//! Entrypoint-wide redirection (`entryPoints.<name>.http.redirections.entryPoint`),
//! typically every plain-HTTP request to HTTPS.

use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::body::{self, Body};

/// Where an entrypoint redirects every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Target scheme.
    pub scheme: String,
    /// Target port; omitted from the URL when it is the scheme's default.
    pub port: u16,
    /// 301/308 when true, 302/307 otherwise.
    pub permanent: bool,
}

impl Redirect {
    /// The redirect response for `req`, whose host (without port) is `host`.
    pub fn respond<B>(&self, req: &Request<B>, host: &str) -> Response<Body> {
        let default_port = matches!(
            (self.scheme.as_str(), self.port),
            ("https", 443) | ("http", 80)
        );
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let authority = if default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        };
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let location = format!("{}://{authority}{pq}", self.scheme);
        let safe = req.method() == Method::GET || req.method() == Method::HEAD;
        let status = match (self.permanent, safe) {
            (true, true) => StatusCode::MOVED_PERMANENTLY,
            (true, false) => StatusCode::PERMANENT_REDIRECT,
            (false, true) => StatusCode::FOUND,
            (false, false) => StatusCode::TEMPORARY_REDIRECT,
        };
        let mut resp = Response::new(body::empty());
        *resp.status_mut() = status;
        match HeaderValue::from_str(&location) {
            Ok(v) => {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Err(_) => *resp.status_mut() = StatusCode::BAD_REQUEST,
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_path_and_query() {
        let r = Redirect {
            scheme: "https".into(),
            port: 443,
            permanent: true,
        };
        let req = Request::get("/a/b?c=1").body(()).unwrap();
        let resp = r.respond(&req, "example.com");
        assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(
            resp.headers()[header::LOCATION],
            "https://example.com/a/b?c=1"
        );
        let r = Redirect {
            scheme: "https".into(),
            port: 8443,
            permanent: false,
        };
        let req = Request::post("/x").body(()).unwrap();
        let resp = r.respond(&req, "example.com");
        assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            resp.headers()[header::LOCATION],
            "https://example.com:8443/x"
        );
    }
}
