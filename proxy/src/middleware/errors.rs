//! `errors`: when the response status is in `status` (codes and inclusive ranges
//! such as `500-599`), the body is replaced by a page fetched from another service
//! with a GET on `query` (`{status}`, `{originalStatus}` and `{url}` substituted).
//! The client gets the page's headers and body with the original status, or the
//! status `statusRewrites` maps it to.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{header, Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use tower::Service as _;

use super::handler::{self, Handler, ResponseFuture};
use super::shared::{options, BuildContext};
use super::{HttpLayer, HttpService, MiddlewareError, SharedLayer};
use crate::body::{self, Body};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    status: Vec<String>,
    #[serde(default)]
    service: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    status_rewrites: BTreeMap<String, u16>,
}

/// An inclusive range of status codes.
type CodeRange = (u16, u16);

/// Parses `"404"` or `"500-599"`.
fn code_range(s: &str) -> Result<CodeRange, MiddlewareError> {
    let bad = || MiddlewareError::Message(format!("errors: invalid status code range {s:?}"));
    let (from, to) = match s.trim().split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s.trim(), s.trim()),
    };
    let from: u16 = from.parse().map_err(|_| bad())?;
    let to: u16 = to.parse().map_err(|_| bad())?;
    if from > to {
        return Err(bad());
    }
    Ok((from, to))
}

struct Config {
    ranges: Vec<CodeRange>,
    rewrites: Vec<(CodeRange, StatusCode)>,
    query: String,
    page: HttpService,
}

impl Config {
    fn catches(&self, status: StatusCode) -> bool {
        let code = status.as_u16();
        self.ranges.iter().any(|(a, b)| (*a..=*b).contains(&code))
    }

    fn rewrite(&self, status: StatusCode) -> StatusCode {
        let code = status.as_u16();
        self.rewrites
            .iter()
            .find(|((a, b), _)| (*a..=*b).contains(&code))
            .map(|(_, to)| *to)
            .unwrap_or(status)
    }

    /// The path and query of the page request.
    fn page_path(&self, status: StatusCode, original: StatusCode, url: &str) -> String {
        let query = self
            .query
            .replace("{status}", status.as_str())
            .replace("{originalStatus}", original.as_str())
            .replace("{url}", &query_escape(url));
        format!("/{}", query.trim_start_matches('/'))
    }
}

/// Escapes like Go's `url.QueryEscape`: unreserved bytes stay, space becomes `+`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Builds the `errors` middleware; its service is resolved through `ctx`.
pub fn layer(opts: &Value, ctx: &mut dyn BuildContext) -> Result<SharedLayer, MiddlewareError> {
    let o: Options = options("errors", opts)?;
    let ranges = o
        .status
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
        .map(code_range)
        .collect::<Result<Vec<_>, _>>()?;
    if ranges.is_empty() {
        return Err(MiddlewareError::Message("errors.status is empty".into()));
    }
    let mut rewrites = Vec::new();
    for (from, to) in &o.status_rewrites {
        let to = StatusCode::from_u16(*to).map_err(|_| {
            MiddlewareError::Message(format!("errors.statusRewrites.{from}: invalid status {to}"))
        })?;
        rewrites.push((code_range(from)?, to));
    }
    if o.service.is_empty() {
        return Err(MiddlewareError::Message("errors.service is empty".into()));
    }
    let page = ctx
        .service(&o.service)
        .map_err(|reason| MiddlewareError::Service {
            kind: "errors",
            service: o.service.clone(),
            reason,
        })?;
    let config = Arc::new(Config {
        ranges,
        rewrites,
        query: o.query,
        page,
    });
    let layer = HttpLayer::new(ErrorPages { config });
    Ok(SharedLayer::new("errors", move |inner| layer.wrap(inner)))
}

/// The errors middleware's logic.
struct ErrorPages {
    config: Arc<Config>,
}

impl Handler for ErrorPages {
    fn handle(&self, req: Request<Body>, next: &mut HttpService) -> ResponseFuture {
        let config = self.config.clone();
        let mut inner = next.clone();
        let url = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let mut headers = req.headers().clone();
        let version = req.version();
        handler::infallible(async move {
            let resp = inner.call(req).await?;
            let original = resp.status();
            if !config.catches(original) {
                return Ok(resp);
            }
            drop(resp);
            let status = config.rewrite(original);
            let path = config.page_path(status, original, &url);
            for h in [
                header::CONTENT_LENGTH,
                header::TRANSFER_ENCODING,
                header::CONTENT_TYPE,
                header::EXPECT,
            ] {
                headers.remove(h);
            }
            let mut page_req = Request::new(body::empty());
            *page_req.method_mut() = Method::GET;
            *page_req.version_mut() = version;
            *page_req.headers_mut() = headers;
            match path.parse() {
                Ok(uri) => *page_req.uri_mut() = uri,
                Err(e) => {
                    tracing::warn!(path, error = %e, "errors: invalid error page path");
                    return Ok(plain(status));
                }
            }
            let mut page = config.page.clone();
            let mut page_resp = page.call(page_req).await?;
            *page_resp.status_mut() = status;
            Ok(page_resp)
        })
    }
}

/// The status text alone, when no page can be asked for.
fn plain(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(body::full(status.canonical_reason().unwrap_or("")));
    *resp.status_mut() = status;
    resp
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::forward::client::Clients;
    use http_body_util::BodyExt;
    use serde_json::json;
    use tower::ServiceExt;

    struct Ctx {
        page: HttpService,
        clients: Clients,
        asked: Vec<String>,
    }

    impl BuildContext for Ctx {
        fn service(&mut self, name: &str) -> Result<HttpService, String> {
            self.asked.push(name.to_string());
            if name == "missing" {
                return Err("the service does not exist".into());
            }
            Ok(self.page.clone())
        }
        fn clients(&self) -> &Clients {
            &self.clients
        }
    }

    fn ctx() -> Ctx {
        let page = HttpService::new(tower::service_fn(|req: Request<Body>| async move {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let mut resp = Response::new(body::full(format!("page {} for {host}", req.uri())));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, "text/html".parse().unwrap());
            Ok::<_, Infallible>(resp)
        }));
        Ctx {
            page,
            clients: Clients::new(Default::default()),
            asked: Vec::new(),
        }
    }

    /// An upstream answering with the status given in the path (`/503`).
    fn upstream() -> HttpService {
        HttpService::new(tower::service_fn(|req: Request<Body>| async move {
            let code: u16 = req.uri().path()[1..].parse().unwrap_or(200);
            let mut resp = Response::new(body::full("upstream"));
            *resp.status_mut() = StatusCode::from_u16(code).unwrap();
            Ok::<_, Infallible>(resp)
        }))
    }

    async fn get(svc: &HttpService, path: &str) -> (StatusCode, String, Option<String>) {
        let req = Request::builder()
            .uri(path)
            .header(header::HOST, "app.test")
            .body(body::empty())
            .unwrap();
        let resp = svc.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap(), ct)
    }

    #[tokio::test]
    async fn caught_statuses_get_the_page_with_the_original_status() {
        let mut ctx = ctx();
        let l = layer(
            &json!({"status": "500-599,404", "service": "pages", "query": "/{status}.html?from={url}"}),
            &mut ctx,
        )
        .unwrap();
        assert_eq!(ctx.asked, vec!["pages"]);
        let svc = l.wrap(upstream());
        let (status, body, ct) = get(&svc, "/503?a=b%20c").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            "page /503.html?from=%2F503%3Fa%3Db%2520c for app.test"
        );
        assert_eq!(ct.as_deref(), Some("text/html"));
        let (status, body, _) = get(&svc, "/404").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.starts_with("page /404.html"), "{body}");
        let (status, body, _) = get(&svc, "/200").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "upstream"));
        let (status, body, _) = get(&svc, "/418").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::IM_A_TEAPOT, "upstream")
        );
    }

    #[tokio::test]
    async fn status_rewrites_change_the_status_sent() {
        let mut ctx = ctx();
        let l = layer(
            &json!({"status": ["418", "502-504"], "service": "pages", "query": "{status}-{originalStatus}",
                    "statusRewrites": {"418": "404", "502-504": 500}}),
            &mut ctx,
        )
        .unwrap();
        let svc = l.wrap(upstream());
        let (status, body, _) = get(&svc, "/418").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.starts_with("page /404-418 "), "{body}");
        let (status, _, _) = get(&svc, "/503").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn bad_options_are_reported() {
        let mut ctx = ctx();
        assert!(matches!(
            layer(&json!({"status": "5xx", "service": "pages"}), &mut ctx),
            Err(MiddlewareError::Message(_))
        ));
        assert!(matches!(
            layer(&json!({"status": "599-500", "service": "pages"}), &mut ctx),
            Err(MiddlewareError::Message(_))
        ));
        assert!(matches!(
            layer(&json!({"status": "500", "service": ""}), &mut ctx),
            Err(MiddlewareError::Message(_))
        ));
        let err = layer(&json!({"status": "500", "service": "missing"}), &mut ctx).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        assert!(matches!(
            layer(
                &json!({"status": "500", "service": "pages", "qery": "/"}),
                &mut ctx
            ),
            Err(MiddlewareError::Options { .. })
        ));
    }
}
