//! The dashboard at `/dashboard/`: one HTML page, one script and one stylesheet,
//! embedded in the binary, that poll the JSON API and render what wharf is doing.
//! `/` and `/dashboard` redirect to `/dashboard/`, as in Traefik.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use crate::body::{self, Body};
use crate::server::State;

/// Where the dashboard lives on the admin entrypoint.
const PREFIX: &str = "/dashboard/";

/// Only scripts, styles and API calls from the admin entrypoint itself.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    /// Its ETag, computed on first use.
    etag: OnceLock<String>,
}

impl Asset {
    const fn new(body: &'static str, content_type: &'static str) -> Self {
        Self {
            body,
            content_type,
            etag: OnceLock::new(),
        }
    }

    /// A strong ETag from the content and wharf's version.
    fn etag(&self) -> &str {
        self.etag.get_or_init(|| {
            let mut h = DefaultHasher::new();
            env!("CARGO_PKG_VERSION").hash(&mut h);
            self.body.hash(&mut h);
            format!("\"{:016x}\"", h.finish())
        })
    }
}

static INDEX: Asset = Asset::new(
    include_str!("dashboard/index.html"),
    "text/html; charset=utf-8",
);
static SCRIPT: Asset = Asset::new(
    include_str!("dashboard/app.js"),
    "text/javascript; charset=utf-8",
);
static STYLE: Asset = Asset::new(
    include_str!("dashboard/style.css"),
    "text/css; charset=utf-8",
);

/// Answers `path` when it belongs to the dashboard (`/`, `/dashboard`,
/// `/dashboard/...`) and the dashboard is enabled; `None` otherwise.
pub fn handle(path: &str, headers: &HeaderMap, state: &State) -> Option<Response<Body>> {
    if !state.admin.dashboard {
        return None;
    }
    if path == "/" || path == "/dashboard" {
        return Some(redirect(PREFIX));
    }
    let file = path.strip_prefix(PREFIX)?;
    Some(match file {
        "" | "index.html" => serve(&INDEX, headers),
        "app.js" => serve(&SCRIPT, headers),
        "style.css" => serve(&STYLE, headers),
        _ => not_found(),
    })
}

/// The asset, or 304 when the client's copy (`If-None-Match`) is current.
fn serve(asset: &Asset, headers: &HeaderMap) -> Response<Body> {
    let etag = asset.etag();
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        });
    let mut resp = if fresh {
        let mut resp = Response::new(body::empty());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        resp
    } else {
        let mut resp = Response::new(body::full(asset.body));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        resp
    };
    let h = resp.headers_mut();
    // Revalidate on every load: the files change with the binary, the ETag tells.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn redirect(to: &'static str) -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::FOUND;
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    resp
}

fn not_found() -> Response<Body> {
    let mut resp = Response::new(body::full("404 page not found\n"));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(dashboard: bool) -> State {
        State {
            table: arc_swap::ArcSwap::from_pointee(crate::router::RouteTable::default()),
            terminating: Default::default(),
            terminating_status: 503,
            admin: crate::server::AdminInfo {
                dashboard,
                ..Default::default()
            },
            challenges: None,
            label_issues: Vec::new(),
        }
    }

    fn get(path: &str, headers: &HeaderMap, state: &State) -> Response<Body> {
        handle(path, headers, state).unwrap_or_else(|| panic!("{path} is not served"))
    }

    #[test]
    fn root_and_bare_prefix_redirect_to_the_dashboard() {
        let s = state(true);
        for path in ["/", "/dashboard"] {
            let resp = get(path, &HeaderMap::new(), &s);
            assert_eq!(resp.status(), StatusCode::FOUND, "{path}");
            assert_eq!(resp.headers()[header::LOCATION], "/dashboard/", "{path}");
        }
    }

    #[test]
    fn assets_have_their_content_type_and_cache_headers() {
        let s = state(true);
        for (path, kind) in [
            ("/dashboard/", "text/html"),
            ("/dashboard/index.html", "text/html"),
            ("/dashboard/app.js", "text/javascript"),
            ("/dashboard/style.css", "text/css"),
        ] {
            let resp = get(path, &HeaderMap::new(), &s);
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let h = resp.headers();
            let ct = h[header::CONTENT_TYPE].to_str().unwrap();
            assert!(ct.starts_with(kind), "{path}: {ct}");
            assert_eq!(h[header::CACHE_CONTROL], "no-cache", "{path}");
            assert!(h.contains_key(header::ETAG), "{path}");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        }
        let page = get("/dashboard/", &HeaderMap::new(), &s);
        let script = get("/dashboard/app.js", &HeaderMap::new(), &s);
        assert_ne!(
            page.headers()[header::ETAG],
            script.headers()[header::ETAG],
            "each file has its own ETag"
        );
    }

    #[test]
    fn a_current_etag_gets_not_modified() {
        let s = state(true);
        let first = get("/dashboard/app.js", &HeaderMap::new(), &s);
        let tag = first.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, tag.clone());
        let again = get("/dashboard/app.js", &headers, &s);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], tag);

        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"old\""));
        let stale = get("/dashboard/app.js", &headers, &s);
        assert_eq!(stale.status(), StatusCode::OK);
    }

    #[test]
    fn unknown_files_are_not_found_and_other_paths_pass_through() {
        let s = state(true);
        let resp = get("/dashboard/../secret", &HeaderMap::new(), &s);
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(handle("/api/overview", &HeaderMap::new(), &s).is_none());
        assert!(handle("/dashboardx", &HeaderMap::new(), &s).is_none());
    }

    #[test]
    fn disabled_dashboard_serves_nothing() {
        let s = state(false);
        for path in ["/", "/dashboard", "/dashboard/", "/dashboard/app.js"] {
            assert!(handle(path, &HeaderMap::new(), &s).is_none(), "{path}");
        }
    }

    #[test]
    fn the_page_loads_its_script_and_stylesheet_only() {
        let html = INDEX.body;
        assert!(html.contains("src=\"app.js\""), "relative script URL");
        assert!(
            html.contains("href=\"style.css\""),
            "relative stylesheet URL"
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no CDN"
        );
        assert!(
            !SCRIPT.body.contains("innerHTML"),
            "the script builds the page with DOM nodes, never innerHTML"
        );
    }
}
