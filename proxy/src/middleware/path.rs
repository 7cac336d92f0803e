//! Path rewriting middlewares: `stripPrefix`, `stripPrefixRegex`, `addPrefix`,
//! `replacePath` and `replacePathRegex`, with Traefik's behaviour and headers
//! (`X-Forwarded-Prefix`, `X-Replaced-Path`).

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Uri};
use regex::Regex;

/// One path rewrite.
#[derive(Debug, Clone)]
pub enum PathRewrite {
    /// Remove the first matching prefix; sets `X-Forwarded-Prefix`.
    StripPrefix(Vec<String>),
    /// Remove the first regex match found at the start of the path; sets `X-Forwarded-Prefix`.
    StripPrefixRegex(Vec<Regex>),
    /// Prepend a prefix.
    AddPrefix(String),
    /// Replace the whole path; sets `X-Replaced-Path`.
    ReplacePath(String),
    /// Regex replacement on the path; sets `X-Replaced-Path` when it matches.
    ReplacePathRegex(Regex, String),
}

impl PathRewrite {
    /// Rewrites the request's path in place.
    pub fn apply<B>(&self, req: &mut Request<B>) {
        let path = req.uri().path().to_string();
        match self {
            PathRewrite::StripPrefix(prefixes) => {
                if let Some(p) = prefixes
                    .iter()
                    .find(|p| !p.is_empty() && path.starts_with(p.as_str()))
                {
                    set_path(req, &leading_slash(&path[p.len()..]));
                    set_header(req, "x-forwarded-prefix", p);
                }
            }
            PathRewrite::StripPrefixRegex(regexes) => {
                for re in regexes {
                    if let Some(m) = re.find(&path) {
                        if m.start() == 0 && !m.as_str().is_empty() {
                            set_path(req, &leading_slash(&path[m.end()..]));
                            set_header(req, "x-forwarded-prefix", m.as_str());
                            break;
                        }
                    }
                }
            }
            PathRewrite::AddPrefix(prefix) => set_path(req, &format!("{prefix}{path}")),
            PathRewrite::ReplacePath(new) => {
                set_header(req, "x-replaced-path", &path);
                set_path(req, new);
            }
            PathRewrite::ReplacePathRegex(re, replacement) => {
                if re.is_match(&path) {
                    let new = re.replace_all(&path, replacement.as_str()).into_owned();
                    set_header(req, "x-replaced-path", &path);
                    set_path(req, &new);
                }
            }
        }
    }
}

fn leading_slash(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

fn set_header<B>(req: &mut Request<B>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        req.headers_mut().insert(name, v);
    }
}

/// Replaces the path of the request URI, keeping the query.
fn set_path<B>(req: &mut Request<B>, path: &str) {
    let pq = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut parts = req.uri().clone().into_parts();
    match pq.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return,
    }
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

/// A tower layer applying a [`PathRewrite`].
#[derive(Debug, Clone)]
pub struct PathRewriteLayer(pub Arc<PathRewrite>);

impl<S> tower::Layer<S> for PathRewriteLayer {
    type Service = PathRewriteService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        PathRewriteService {
            rewrite: self.0.clone(),
            inner,
        }
    }
}

/// The service produced by [`PathRewriteLayer`].
#[derive(Debug, Clone)]
pub struct PathRewriteService<S> {
    rewrite: Arc<PathRewrite>,
    inner: S,
}

impl<S, B> tower::Service<Request<B>> for PathRewriteService<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> S::Future {
        self.rewrite.apply(&mut req);
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rw: PathRewrite, uri: &str) -> Request<()> {
        let mut req = Request::builder().uri(uri).body(()).unwrap();
        rw.apply(&mut req);
        req
    }

    #[test]
    fn strip_prefix_keeps_query_and_sets_header() {
        let r = run(
            PathRewrite::StripPrefix(vec!["/api".into()]),
            "/api/users?x=1",
        );
        assert_eq!(r.uri().to_string(), "/users?x=1");
        assert_eq!(r.headers()["x-forwarded-prefix"], "/api");
        let r = run(PathRewrite::StripPrefix(vec!["/api".into()]), "/api");
        assert_eq!(r.uri().path(), "/");
        let r = run(PathRewrite::StripPrefix(vec!["/other".into()]), "/api");
        assert_eq!(r.uri().path(), "/api");
        assert!(!r.headers().contains_key("x-forwarded-prefix"));
    }

    #[test]
    fn strip_prefix_regex_only_at_start() {
        let re = Regex::new("/foo/[a-z0-9]+/").unwrap();
        let r = run(
            PathRewrite::StripPrefixRegex(vec![re.clone()]),
            "/foo/abc/bar",
        );
        assert_eq!(r.uri().path(), "/bar");
        assert_eq!(r.headers()["x-forwarded-prefix"], "/foo/abc/");
        let r = run(PathRewrite::StripPrefixRegex(vec![re]), "/x/foo/abc/bar");
        assert_eq!(r.uri().path(), "/x/foo/abc/bar");
    }

    #[test]
    fn add_and_replace() {
        assert_eq!(
            run(PathRewrite::AddPrefix("/v1".into()), "/a?q")
                .uri()
                .to_string(),
            "/v1/a?q"
        );
        let r = run(PathRewrite::ReplacePath("/new".into()), "/old");
        assert_eq!(r.uri().path(), "/new");
        assert_eq!(r.headers()["x-replaced-path"], "/old");
        let re = Regex::new("^/foo/(.*)").unwrap();
        let r = run(
            PathRewrite::ReplacePathRegex(re.clone(), "/bar/$1".into()),
            "/foo/x/y",
        );
        assert_eq!(r.uri().path(), "/bar/x/y");
        let r = run(PathRewrite::ReplacePathRegex(re, "/bar/$1".into()), "/nope");
        assert_eq!(r.uri().path(), "/nope");
        assert!(!r.headers().contains_key("x-replaced-path"));
    }
}
