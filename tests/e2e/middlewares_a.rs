//! HTTP middlewares (part 1) through the real binary: redirects, basic auth,
//! headers with CORS, IP allow lists, rate and in-flight limits and buffering,
//! referenced with provider-qualified names (`name@file`) from a file provider.

use http::Request;
use serde_json::{json, Value};

use crate::backends::{seen_header, Backend};
use crate::client::{self, empty, full, Reply};
use crate::harness::{service, Wharf};

/// `test:test`, as in Traefik's documentation.
const USERS: &str = "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/";
/// `Basic` credentials for `test:test`.
const GOOD_AUTH: &str = "Basic dGVzdDp0ZXN0";

fn routed(rule: &str, middlewares: &[&str]) -> Value {
    json!({
        "rule": rule,
        "service": "echo",
        "entryPoints": ["web"],
        "middlewares": middlewares,
    })
}

fn dynamic(backend: &Backend) -> Value {
    json!({ "http": {
        "routers": {
            "app": routed("Host(`app.test`)", &["local@file", "auth@file", "hdrs@file", "limit@file"]),
            "old": routed("Host(`old.test`)", &["to-https@file"]),
            "moved": routed("Host(`moved.test`)", &["moved@file"]),
            "deny": routed("Host(`deny.test`)", &["private-only@file"]),
            "upload": routed("Host(`upload.test`)", &["small-bodies@file"]),
            "broken": routed("Host(`broken.test`)", &["bad-limit@file"]),
        },
        "services": { "echo": service(&[&backend.url()]) },
        "middlewares": {
            "local": { "ipAllowList": { "sourceRange": "127.0.0.0/8, ::1" } },
            "auth": { "basicAuth": {
                "users": USERS,
                "realm": "wharf-e2e",
                "headerField": "X-WebAuth-User",
                "removeHeader": "true",
            }},
            "hdrs": { "headers": {
                "customRequestHeaders": { "X-Script-Name": "e2e", "X-Drop-Me": "" },
                "customResponseHeaders": { "X-Served-By": "wharf" },
                "accessControlAllowOriginList": "https://ui.test",
                "accessControlAllowMethods": "GET,PUT",
                "accessControlMaxAge": "60",
                "frameDeny": "true",
            }},
            "limit": { "rateLimit": {
                "average": "1",
                "period": "1m",
                "burst": "3",
                "sourceCriterion": { "requestHeaderName": "X-Client" },
            }},
            "to-https": { "redirectScheme": { "scheme": "https", "permanent": "true" } },
            "moved": { "redirectRegex": {
                "regex": "^http://moved\\.test/(.*)",
                "replacement": "http://new.test/${1}",
            }},
            "private-only": { "ipWhiteList": { "sourceRange": ["10.0.0.0/8"] } },
            "small-bodies": { "buffering": { "maxRequestBodyBytes": "16" } },
            "bad-limit": { "rateLimit": { "average": "lots" } },
        },
    }})
}

async fn send(
    wharf: &Wharf,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&'static str>,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.map_or_else(empty, full))
        .expect("valid request");
    client::send_h1(wharf.web(), req)
        .await
        .unwrap_or_else(|e| panic!("{method} {host}{path} through wharf failed: {e:#}"))
}

fn header(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middlewares_by_qualified_name_over_http() {
    let backend = Backend::echo("echo").await;
    let wharf = Wharf::start(dynamic(&backend)).await;

    // Authentication, then headers, on a router with four middlewares.
    let reply = send(&wharf, "GET", "app.test", "/", &[("x-client", "a")], None).await;
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(
        header(&reply, "www-authenticate").as_deref(),
        Some("Basic realm=\"wharf-e2e\"")
    );
    let auth = [
        ("authorization", GOOD_AUTH),
        ("x-client", "b"),
        ("x-drop-me", "1"),
        ("origin", "https://ui.test"),
    ];
    let reply = send(&wharf, "GET", "app.test", "/hello", &auth, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echo = reply.json();
    assert_eq!(
        seen_header(&echo, "x-webauth-user").as_deref(),
        Some("test")
    );
    assert_eq!(seen_header(&echo, "authorization"), None, "removeHeader");
    assert_eq!(seen_header(&echo, "x-script-name").as_deref(), Some("e2e"));
    assert_eq!(seen_header(&echo, "x-drop-me"), None);
    assert_eq!(header(&reply, "x-served-by").as_deref(), Some("wharf"));
    assert_eq!(header(&reply, "x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(
        header(&reply, "access-control-allow-origin").as_deref(),
        Some("https://ui.test")
    );

    // A CORS preflight is answered by the middleware, after authentication.
    let hits = backend.hits();
    let preflight = [
        ("authorization", GOOD_AUTH),
        ("x-client", "c"),
        ("origin", "https://ui.test"),
        ("access-control-request-method", "PUT"),
    ];
    let reply = send(&wharf, "OPTIONS", "app.test", "/", &preflight, None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        header(&reply, "access-control-allow-methods").as_deref(),
        Some("GET,PUT")
    );
    assert_eq!(
        header(&reply, "access-control-max-age").as_deref(),
        Some("60")
    );
    assert_eq!(
        backend.hits(),
        hits,
        "the preflight never reached the backend"
    );

    // Rate limit per X-Client: a burst of 3, then 429 with Retry-After.
    let limited = [("authorization", GOOD_AUTH), ("x-client", "d")];
    for i in 0..3 {
        let reply = send(&wharf, "GET", "app.test", "/", &limited, None).await;
        assert_eq!(reply.status, 200, "request {i} of the burst");
    }
    let reply = send(&wharf, "GET", "app.test", "/", &limited, None).await;
    assert_eq!(reply.status, 429, "{}", reply.text());
    let retry: u64 = header(&reply, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let other = [("authorization", GOOD_AUTH), ("x-client", "e")];
    assert_eq!(
        send(&wharf, "GET", "app.test", "/", &other, None)
            .await
            .status,
        200
    );

    // Redirects.
    let reply = send(&wharf, "GET", "old.test", "/a?b=1", &[], None).await;
    assert_eq!(reply.status, 301);
    assert_eq!(
        header(&reply, "location").as_deref(),
        Some("https://old.test/a?b=1")
    );
    let reply = send(&wharf, "POST", "moved.test", "/x/y", &[], None).await;
    assert_eq!(reply.status, 307);
    assert_eq!(
        header(&reply, "location").as_deref(),
        Some("http://new.test/x/y")
    );

    // The loopback client is not in 10.0.0.0/8.
    let reply = send(&wharf, "GET", "deny.test", "/", &[], None).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.text(), "Forbidden");

    // Buffering: a body over maxRequestBodyBytes never reaches the backend.
    let reply = send(&wharf, "POST", "upload.test", "/", &[], Some("small")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["bodyBytes"], 5);
    let hits = backend.hits();
    let reply = send(
        &wharf,
        "POST",
        "upload.test",
        "/",
        &[],
        Some("this body is much too large"),
    )
    .await;
    assert_eq!(reply.status, 413);
    assert_eq!(backend.hits(), hits);

    // A broken middleware disables only the router that uses it.
    assert_eq!(
        send(&wharf, "GET", "broken.test", "/", &[], None)
            .await
            .status,
        404
    );
    let routers = wharf.api("/api/http/routers").await;
    let broken = routers
        .as_array()
        .and_then(|list| list.iter().find(|r| r["name"] == "broken@file"))
        .unwrap_or_else(|| panic!("broken@file in {routers}"))
        .clone();
    assert_eq!(broken["status"], "disabled", "{broken}");
    let errors = broken["error"].to_string();
    assert!(
        errors.contains("bad-limit@file") && errors.contains("average"),
        "{errors}"
    );
    let middlewares = wharf.api("/api/http/middlewares").await;
    let bad = middlewares
        .as_array()
        .and_then(|list| list.iter().find(|m| m["name"] == "bad-limit@file"))
        .unwrap_or_else(|| panic!("bad-limit@file in {middlewares}"))
        .clone();
    assert_eq!(bad["status"], "disabled", "{bad}");
}
