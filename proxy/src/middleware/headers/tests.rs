//! Tests of the `headers` middleware.

use http::{header, HeaderValue, Request};
use serde_json::{json, Value};

use super::super::handler::testing::{backend, request, run, text};
use super::super::{Built, ClientInfo, HttpLayer};
use super::build;
use crate::body::Body;

fn layer(v: Value) -> HttpLayer {
    match build(&v) {
        Ok(Built::Http(l)) => l,
        other => panic!("{other:?}"),
    }
}

fn with(mut req: Request<Body>, headers: &[(&'static str, &'static str)]) -> Request<Body> {
    for (k, v) in headers {
        req.headers_mut().insert(*k, HeaderValue::from_static(v));
    }
    req
}

#[tokio::test]
async fn custom_headers_set_and_remove() {
    let l = layer(json!({
        "customRequestHeaders": {"X-Script-Name": "test", "X-Drop": ""},
        "customResponseHeaders": {"X-Custom-Response-Header": "value", "Server": ""},
    }));
    let (inner, seen) = backend(&[("server", "backend"), ("x-kept", "1")]);
    let req = with(
        request("GET", "/", "192.0.2.1"),
        &[("x-drop", "x"), ("x-script-name", "old")],
    );
    let resp = run(&l, inner, req).await;
    let h = resp.headers();
    assert_eq!(h["x-custom-response-header"], "value");
    assert!(!h.contains_key("server"));
    assert_eq!(h["x-kept"], "1");
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].headers["x-script-name"], "test");
    assert!(!seen[0].headers.contains_key("x-drop"));
}

#[tokio::test]
async fn cors_preflight_is_answered_here() {
    let l = layer(json!({
        "accessControlAllowMethods": "GET,OPTIONS,PUT",
        "accessControlAllowHeaders": ["X-Token", "Content-Type"],
        "accessControlAllowOriginList": "https://foo.bar.org,https://example.org",
        "accessControlMaxAge": "100",
        "accessControlAllowCredentials": "true",
        "addVaryHeader": true,
    }));
    let (inner, seen) = backend(&[]);
    let req = with(
        request("OPTIONS", "/", "192.0.2.1"),
        &[
            ("origin", "https://foo.bar.org"),
            ("access-control-request-method", "PUT"),
        ],
    );
    let resp = run(&l, inner.clone(), req).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "https://foo.bar.org");
    assert_eq!(h["access-control-allow-methods"], "GET,OPTIONS,PUT");
    assert_eq!(h["access-control-allow-headers"], "X-Token,Content-Type");
    assert_eq!(h["access-control-max-age"], "100");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(
        seen.lock().unwrap().is_empty(),
        "preflight never reaches the service"
    );
    let req = with(
        request("OPTIONS", "/", "192.0.2.1"),
        &[
            ("origin", "https://evil.test"),
            ("access-control-request-method", "PUT"),
        ],
    );
    let resp = run(&l, inner.clone(), req).await;
    assert!(!resp.headers().contains_key("access-control-allow-origin"));
    let plain_options = request("OPTIONS", "/", "192.0.2.1");
    run(&l, inner, plain_options).await;
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "OPTIONS without CORS headers goes through"
    );
}

#[tokio::test]
async fn cors_headers_on_responses() {
    let l = layer(json!({
        "accessControlAllowOriginListRegex": ["^https://([a-z]+)\\.example\\.org$"],
        "accessControlExposeHeaders": "X-Total",
        "addVaryHeader": true,
    }));
    let (inner, _) = backend(&[("vary", "Accept-Encoding")]);
    let req = with(
        request("GET", "/", "192.0.2.1"),
        &[("origin", "https://app.example.org")],
    );
    let resp = run(&l, inner.clone(), req).await;
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.org");
    assert_eq!(h["access-control-expose-headers"], "X-Total");
    assert_eq!(h["vary"], "Accept-Encoding,Origin");
    assert!(!h.contains_key("access-control-allow-credentials"));
    let req = with(
        request("GET", "/", "192.0.2.1"),
        &[("origin", "https://a.example.org.evil")],
    );
    let resp = run(&l, inner.clone(), req).await;
    assert!(!resp.headers().contains_key("access-control-allow-origin"));
    let l = layer(json!({"accessControlAllowOriginList": "*"}));
    let resp = run(&l, inner, request("GET", "/", "192.0.2.1")).await;
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn security_headers() {
    let l = layer(json!({
        "frameDeny": "true",
        "contentTypeNosniff": true,
        "browserXssFilter": true,
        "contentSecurityPolicy": "default-src 'self'",
        "referrerPolicy": "same-origin",
        "permissionsPolicy": "camera=()",
        "stsSeconds": "31536000",
        "stsIncludeSubdomains": true,
        "stsPreload": true,
        "isDevelopment": false,
    }));
    let (inner, _) = backend(&[]);
    let resp = run(&l, inner.clone(), request("GET", "/", "192.0.2.1")).await;
    let h = resp.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-xss-protection"], "1; mode=block");
    assert_eq!(h["content-security-policy"], "default-src 'self'");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["permissions-policy"], "camera=()");
    assert!(
        !h.contains_key("strict-transport-security"),
        "STS only over TLS"
    );
    let mut req = request("GET", "/", "192.0.2.1");
    if let Some(info) = req.extensions_mut().get_mut::<ClientInfo>() {
        info.tls = true;
    }
    let resp = run(&l, inner.clone(), req).await;
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains; preload"
    );
    let l = layer(json!({
        "stsSeconds": 60,
        "forceSTSHeader": true,
        "frameDeny": true,
        "customFrameOptionsValue": "SAMEORIGIN",
        "customBrowserXSSValue": "0",
    }));
    let resp = run(&l, inner, request("GET", "/", "192.0.2.1")).await;
    let h = resp.headers();
    assert_eq!(h["strict-transport-security"], "max-age=60");
    assert_eq!(h["x-frame-options"], "SAMEORIGIN");
    assert_eq!(h["x-xss-protection"], "0");
}

#[tokio::test]
async fn allowed_hosts_and_ssl_redirect() {
    let l = layer(json!({
        "allowedHosts": ["app.test", "www.app.test"],
        "hostsProxyHeaders": ["X-Forwarded-Host"],
    }));
    let (inner, _) = backend(&[]);
    assert_eq!(
        run(&l, inner.clone(), request("GET", "/", "192.0.2.1"))
            .await
            .status(),
        200
    );
    let req = with(
        request("GET", "/", "192.0.2.1"),
        &[("x-forwarded-host", "evil.test")],
    );
    let resp = run(&l, inner.clone(), req).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(text(resp).await, "Bad Host\n");

    let l = layer(json!({
        "sslRedirect": true,
        "sslProxyHeaders": {"X-Forwarded-Proto": "https"},
    }));
    let resp = run(&l, inner.clone(), request("GET", "/a?b", "192.0.2.1")).await;
    assert_eq!(resp.status(), 301);
    assert_eq!(resp.headers()[header::LOCATION], "https://app.test/a?b");
    let req = with(
        request("GET", "/", "192.0.2.1"),
        &[("x-forwarded-proto", "https")],
    );
    assert_eq!(run(&l, inner.clone(), req).await.status(), 200);
    let l =
        layer(json!({"sslRedirect": true, "sslTemporaryRedirect": true, "sslHost": "secure.test"}));
    let resp = run(&l, inner, request("POST", "/x", "192.0.2.1")).await;
    assert_eq!(resp.status(), 307);
    assert_eq!(resp.headers()[header::LOCATION], "https://secure.test/x");
}

#[test]
fn bad_options_are_named() {
    let e = build(&json!({"customRequestHeaders": {"Bad Header": "x"}})).unwrap_err();
    assert_eq!(
        e.to_string(),
        "headers.customRequestHeaders: \"Bad Header\" is not a header name"
    );
    let e = build(&json!({"customResponseHeaders": {"X-A": "a\nb"}})).unwrap_err();
    assert!(
        e.to_string().starts_with("headers.customResponseHeaders"),
        "{e}"
    );
    let e = build(&json!({"stsSecond": 1})).unwrap_err();
    assert!(e.to_string().contains("did you mean `stsSeconds`"), "{e}");
    let e = build(&json!({"accessControlAllowOriginListRegex": "("})).unwrap_err();
    assert!(e.to_string().starts_with("headers: invalid regexp"), "{e}");
}
