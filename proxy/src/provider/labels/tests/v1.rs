//! Traefik v1.7 labels.

use serde_json::json;

use super::*;

fn mw(l: &Labeled, name: &str) -> serde_json::Value {
    serde_json::to_value(&l.config.http.middlewares[name]).unwrap()
}

#[test]
fn frontend_and_backend_labels() {
    let l = parse(
        "docs_wiki",
        &[
            ("traefik.enable", "true"),
            ("traefik.docker.network", "proxy"),
            ("traefik.frontend.rule", "Host:wiki.example.org"),
            ("traefik.port", "3000"),
            ("traefik.protocol", "https"),
            ("traefik.weight", "5"),
            ("traefik.frontend.entryPoints", "http, https"),
            ("traefik.frontend.priority", "10"),
            ("traefik.frontend.passHostHeader", "false"),
            ("traefik.tags", "public"),
        ],
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.network.as_deref(), Some("proxy"));
    let r = &l.config.http.routers["docs-wiki"];
    assert_eq!(r.rule, "Host:wiki.example.org");
    assert_eq!(r.rule_syntax, Some(RuleSyntax::V1));
    assert_eq!(r.entry_points, vec!["http", "https"]);
    assert_eq!(r.priority, 10);
    assert_eq!(r.service, "docs-wiki");
    let lb = l.config.http.services["docs-wiki"]
        .load_balancer
        .clone()
        .unwrap();
    assert!(!lb.pass_host_header);
    assert_eq!(lb.servers[0].port.as_deref(), Some("3000"));
    assert_eq!(lb.servers[0].scheme.as_deref(), Some("https"));
    assert_eq!(lb.servers[0].weight, Some(5));
}

#[test]
fn backend_name_stickiness_healthcheck_and_lbswarm() {
    let l = parse(
        "shop_cart",
        &[
            ("traefik.port", "8080"),
            ("traefik.backend", "cart_pool"),
            ("traefik.backend.loadbalancer.stickiness", "true"),
            ("traefik.backend.loadbalancer.stickiness.cookieName", "cart"),
            ("traefik.backend.loadbalancer.swarm", "true"),
            ("traefik.backend.healthcheck.path", "/ping"),
            ("traefik.backend.healthcheck.interval", "5s"),
        ],
    );
    assert!(l.lbswarm);
    assert_eq!(l.config.http.routers["shop-cart"].service, "cart-pool");
    assert_eq!(l.config.http.routers["shop-cart"].rule, "Host(`shop-cart`)");
    let lb = l.config.http.services["cart-pool"]
        .load_balancer
        .clone()
        .unwrap();
    let cookie = lb.sticky.unwrap().cookie.unwrap();
    assert_eq!(cookie.name.as_deref(), Some("cart"));
    let hc = lb.health_check.unwrap();
    assert_eq!(hc.path, "/ping");
    assert_eq!(hc.interval.0.as_secs(), 5);
}

#[test]
fn redirects() {
    let l = parse(
        "cloud_app",
        &[
            ("traefik.port", "80"),
            ("traefik.frontend.rule", "Host:cloud.example.org"),
            ("traefik.frontend.redirect.permanent", "true"),
            (
                "traefik.frontend.redirect.regex",
                "^https://(.*)/.well-known/(card|cal)dav",
            ),
            (
                "traefik.frontend.redirect.replacement",
                "https://$1/remote.php/dav/",
            ),
        ],
    );
    assert_eq!(
        l.config.http.routers["cloud-app"].middlewares,
        vec!["cloud-app-redirect"]
    );
    assert_eq!(
        mw(&l, "cloud-app-redirect"),
        json!({"redirectRegex": {
            "regex": "^https://(.*)/.well-known/(card|cal)dav",
            "replacement": "https://$1/remote.php/dav/",
            "permanent": true
        }})
    );
    let l = parse(
        "web",
        &[
            ("traefik.port", "80"),
            ("traefik.frontend.redirect.entryPoint", "https"),
        ],
    );
    assert_eq!(
        mw(&l, "web-redirect"),
        json!({"redirectScheme": {"scheme": "https", "permanent": false}})
    );
    let e = parse_err(
        "web",
        &[
            ("traefik.port", "80"),
            ("traefik.frontend.redirect.regex", "^x"),
        ],
    );
    assert_eq!(
        e[0].label.as_deref(),
        Some("traefik.frontend.redirect.regex")
    );
}

#[test]
fn auth_headers_and_whitelist_in_order() {
    let l = parse(
        "ops_grafana",
        &[
            ("traefik.port", "3000"),
            (
                "traefik.frontend.auth.basic.users",
                "admin:$apr1$x1$y, ops:$apr1$x2$z",
            ),
            ("traefik.frontend.auth.basic.removeHeader", "true"),
            (
                "traefik.frontend.headers.customRequestHeaders",
                "X-Forwarded-Proto:https||X-Script-Name:/grafana",
            ),
            ("traefik.frontend.headers.SSLRedirect", "true"),
            ("traefik.frontend.headers.STSSeconds", "31536000"),
            ("traefik.frontend.headers.frameDeny", "true"),
            (
                "traefik.frontend.whiteList.sourceRange",
                "10.0.0.0/8, 192.168.0.0/16",
            ),
        ],
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(
        l.config.http.routers["ops-grafana"].middlewares,
        vec![
            "ops-grafana-ipallowlist",
            "ops-grafana-headers",
            "ops-grafana-auth"
        ]
    );
    assert_eq!(
        mw(&l, "ops-grafana-auth"),
        json!({"basicAuth": {"users": ["admin:$apr1$x1$y", "ops:$apr1$x2$z"], "removeHeader": true}})
    );
    assert_eq!(
        mw(&l, "ops-grafana-headers"),
        json!({"headers": {
            "customRequestHeaders": {"X-Forwarded-Proto": "https", "X-Script-Name": "/grafana"},
            "sslRedirect": true,
            "stsSeconds": 31536000,
            "frameDeny": true
        }})
    );
    assert_eq!(
        mw(&l, "ops-grafana-ipallowlist"),
        json!({"ipAllowList": {"sourceRange": ["10.0.0.0/8", "192.168.0.0/16"]}})
    );
}

#[test]
fn forward_auth() {
    let l = parse(
        "media_app",
        &[
            ("traefik.port", "8096"),
            ("traefik.frontend.auth.forward.address", "http://oauth:4181"),
            (
                "traefik.frontend.auth.forward.authResponseHeaders",
                "X-Forwarded-User",
            ),
            ("traefik.frontend.auth.forward.trustForwardHeader", "true"),
        ],
    );
    assert_eq!(
        mw(&l, "media-app-forwardauth"),
        json!({"forwardAuth": {
            "address": "http://oauth:4181",
            "authResponseHeaders": ["X-Forwarded-User"],
            "trustForwardHeader": true
        }})
    );
}

/// Two segments on one service (a web UI and a websocket endpoint); the
/// container-level keys are the segments' defaults.
#[test]
fn segments_make_one_router_and_service_each() {
    let l = parse(
        "vault_app",
        &[
            ("traefik.docker.network", "proxy"),
            ("traefik.frontend.entryPoints", "https"),
            ("traefik.ui.port", "80"),
            ("traefik.ui.frontend.rule", "Host:vault.example.org"),
            ("traefik.hub.port", "3012"),
            (
                "traefik.hub.frontend.rule",
                "Host:vault.example.org;Path:/notifications/hub",
            ),
            ("traefik.hub.frontend.entryPoints", "wss"),
        ],
    );
    let routers = &l.config.http.routers;
    assert_eq!(routers.len(), 2);
    assert_eq!(routers["vault-app-ui"].entry_points, vec!["https"]);
    assert_eq!(routers["vault-app-hub"].entry_points, vec!["wss"]);
    assert_eq!(routers["vault-app-hub"].service, "vault-app-hub");
    assert_eq!(
        routers["vault-app-hub"].rule,
        "Host:vault.example.org;Path:/notifications/hub"
    );
    assert_eq!(port_of(&l, "vault-app-ui"), "80");
    assert_eq!(port_of(&l, "vault-app-hub"), "3012");
}

fn port_of(l: &Labeled, service: &str) -> String {
    let lb = l.config.http.services[service]
        .load_balancer
        .as_ref()
        .unwrap();
    lb.servers[0].port.clone().unwrap()
}

#[test]
fn v1_errors_name_their_labels() {
    let e = parse_err("app", &[("traefik.frontend.rule", "Host:a.example")]);
    assert_eq!(e[0].kind, IssueKind::MissingPort);
    assert!(e[0].message.contains("`traefik.port`"), "{}", e[0]);
    let e = parse_err("app", &[("traefik.api.frontend.rule", "Host:a.example")]);
    assert!(e[0].message.contains("`traefik.api.port`"), "{}", e[0]);
    let e = parse_err("app", &[("traefik.port", "eighty")]);
    assert_eq!(e[0].label.as_deref(), Some("traefik.port"));

    let l = parse(
        "app",
        &[
            ("traefik.port", "80"),
            ("traefik.frontend.rule", "Host:a.example;Bogus:/x"),
        ],
    );
    assert!(l.config.http.routers.is_empty());
    let w = &l.warnings[0];
    assert_eq!(
        (w.kind.clone(), w.severity),
        (IssueKind::InvalidRule, Severity::Error)
    );
    assert_eq!(w.label.as_deref(), Some("traefik.frontend.rule"));

    let l = parse(
        "app",
        &[
            ("traefik.port", "80"),
            ("traefik.frontend.entryPonts", "web"),
        ],
    );
    assert_eq!(
        l.warnings[0].kind,
        IssueKind::UnknownKey {
            suggestion: Some("traefik.frontend.entrypoints".into())
        }
    );
}

#[test]
fn v2_labels_win_over_v1_labels() {
    let l = parse(
        "blog_app",
        &[
            ("traefik.frontend.rule", "Host:blog.example.org"),
            ("traefik.port", "2368"),
            ("traefik.http.routers.blog.rule", "Host(`blog.example.org`)"),
        ],
    );
    assert_eq!(l.config.http.routers.len(), 1);
    assert_eq!(l.config.http.routers["blog"].rule_syntax, None);
    assert_eq!(
        l.config.http.services["blog-app"]
            .load_balancer
            .as_ref()
            .unwrap()
            .servers[0]
            .port
            .as_deref(),
        Some("2368")
    );
    assert_eq!(l.warnings.len(), 1);
    assert_eq!(l.warnings[0].kind, IssueKind::Ignored);
    assert_eq!(
        l.warnings[0].label.as_deref(),
        Some("traefik.frontend.rule")
    );
}

#[test]
fn v1_rules_with_modifiers_keep_v1_syntax() {
    let l = parse(
        "api",
        &[
            ("traefik.port", "8000"),
            (
                "traefik.frontend.rule",
                "Host:api.example.org;PathPrefixStrip:/v1",
            ),
        ],
    );
    let r = &l.config.http.routers["api"];
    assert_eq!(r.rule, "Host:api.example.org;PathPrefixStrip:/v1");
    assert_eq!(r.rule_syntax, Some(RuleSyntax::V1));
    assert!(
        r.middlewares.is_empty(),
        "the route table applies v1 modifiers"
    );
}

/// The middlewares v1 frontend labels turn into build, and behave as v1 did, in
/// the order the router applies them.
#[tokio::test]
async fn v1_frontend_middlewares_build_and_apply() {
    use crate::middleware::handler::testing::{backend, request};
    use crate::middleware::{self, Built, HttpService};
    use base64::Engine;
    use tower::Service;

    let l = parse(
        "ops_grafana",
        &[
            ("traefik.port", "3000"),
            (
                "traefik.frontend.auth.basic",
                "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/",
            ),
            ("traefik.frontend.auth.basic.removeHeader", "true"),
            ("traefik.frontend.auth.headerField", "X-WebAuth-User"),
            (
                "traefik.frontend.headers.customRequestHeaders",
                "X-Script-Name:/grafana||X-Drop:",
            ),
            (
                "traefik.frontend.headers.customResponseHeaders",
                "X-Served-By:wharf",
            ),
            ("traefik.frontend.headers.SSLRedirect", "true"),
            (
                "traefik.frontend.headers.SSLProxyHeaders",
                "X-Forwarded-Proto:https",
            ),
            ("traefik.frontend.headers.STSSeconds", "315360"),
            ("traefik.frontend.headers.frameDeny", "true"),
            ("traefik.frontend.whiteList.sourceRange", "10.0.0.0/8"),
            ("traefik.frontend.whiteList.useXForwardedFor", "true"),
        ],
    );
    let router = &l.config.http.routers["ops-grafana"];
    let (inner, seen) = backend(&[]);
    let mut svc: HttpService = inner;
    for name in router.middlewares.iter().rev() {
        let built = middleware::build(&l.config.http.middlewares[name]);
        let built = match built {
            Ok(b @ Built::Http(_)) => b,
            other => panic!("{name}: {other:?}"),
        };
        svc = built.wrap(svc);
    }
    let auth = base64::engine::general_purpose::STANDARD.encode("test:test");
    let mut send = |proto: &'static str, xff: &'static str, with_auth: bool| {
        let mut req = request("GET", "/dash", "192.0.2.1");
        if let Some(info) = req.extensions_mut().get_mut::<middleware::ClientInfo>() {
            info.forwarded_for = Some(http::HeaderValue::from_static(xff));
        }
        let h = req.headers_mut();
        h.insert("x-forwarded-proto", http::HeaderValue::from_static(proto));
        if with_auth {
            h.insert(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_str(&format!("Basic {auth}")).unwrap(),
            );
        }
        svc.call(req)
    };
    assert_eq!(send("https", "1.2.3.4", true).await.unwrap().status(), 403);
    let resp = send("http", "10.0.0.9", true).await.unwrap();
    assert_eq!(resp.status(), 301, "SSLRedirect");
    assert_eq!(resp.headers()["location"], "https://app.test/dash");
    assert_eq!(
        send("https", "10.0.0.9", false).await.unwrap().status(),
        401
    );
    let resp = send("https", "10.0.0.9", true).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=315360"
    );
    assert_eq!(resp.headers()["x-served-by"], "wharf");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let h = &seen[0].headers;
    assert_eq!(h["x-script-name"], "/grafana");
    assert_eq!(h["x-webauth-user"], "test");
    assert!(!h.contains_key(http::header::AUTHORIZATION));
}

/// `traefik.frontend.redirect.*` and `auth.basic.usersFile` build too.
#[test]
fn v1_redirects_and_users_file_build() {
    let l = parse(
        "web",
        &[
            ("traefik.port", "80"),
            ("traefik.frontend.redirect.entryPoint", "https"),
            ("traefik.frontend.redirect.permanent", "true"),
            (
                "traefik.frontend.auth.basic.usersFile",
                "/nonexistent/wharf.htpasswd",
            ),
        ],
    );
    assert!(crate::middleware::build(&l.config.http.middlewares["web-redirect"]).is_ok());
    let e = crate::middleware::build(&l.config.http.middlewares["web-auth"]).unwrap_err();
    assert!(e.to_string().starts_with("basicAuth.usersFile"), "{e}");
    let l = parse(
        "cloud",
        &[
            ("traefik.port", "80"),
            ("traefik.frontend.redirect.regex", "^http://(.*)/old/(.*)"),
            ("traefik.frontend.redirect.replacement", "https://$1/new/$2"),
        ],
    );
    assert!(crate::middleware::build(&l.config.http.middlewares["cloud-redirect"]).is_ok());
}
