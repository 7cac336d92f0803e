//! End-to-end tests of the label engine: labels in, `DynamicConfig` out. Fixtures
//! are written for these tests, after patterns common in public swarm stacks.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::config::dynamic::{Router, RuleSyntax};

pub(super) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn parse(name: &str, pairs: &[(&str, &str)]) -> Labeled {
    parse_workload(name, &labels(pairs), &LabelSettings::swarm())
        .unwrap()
        .unwrap()
}

pub(super) fn parse_err(name: &str, pairs: &[(&str, &str)]) -> Vec<LabelIssue> {
    parse_workload(name, &labels(pairs), &LabelSettings::swarm()).unwrap_err()
}

fn port(l: &Labeled, service: &str) -> Option<String> {
    let lb = l.config.http.services[service]
        .load_balancer
        .as_ref()
        .unwrap();
    lb.servers[0].port.clone()
}

#[test]
fn normalize_is_traefiks() {
    assert_eq!(normalize("stack_web"), "stack-web");
    assert_eq!(normalize("/my__app.v2_"), "my-app-v2");
    assert_eq!(normalize("café_1"), "café-1");
}

/// The public proxy pattern: an http router that only redirects, an https router
/// with a resolver, the redirect middleware and one service.
#[test]
fn http_to_https_router_pair() {
    let l = parse(
        "chat_app",
        &[
            ("traefik.enable", "true"),
            ("traefik.docker.network", "edge-public"),
            ("traefik.constraint-label", "edge-public"),
            (
                "traefik.http.routers.chat-http.rule",
                "Host(`chat.example.net`)",
            ),
            ("traefik.http.routers.chat-http.entrypoints", "http"),
            ("traefik.http.routers.chat-http.middlewares", "to-https"),
            (
                "traefik.http.routers.chat-https.rule",
                "Host(`chat.example.net`)",
            ),
            ("traefik.http.routers.chat-https.entrypoints", "https"),
            ("traefik.http.routers.chat-https.tls", "true"),
            ("traefik.http.routers.chat-https.tls.certresolver", "le"),
            (
                "traefik.http.middlewares.to-https.redirectscheme.scheme",
                "https",
            ),
            (
                "traefik.http.middlewares.to-https.redirectscheme.permanent",
                "true",
            ),
            (
                "traefik.http.services.chat.loadbalancer.server.port",
                "9000",
            ),
        ],
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.network.as_deref(), Some("edge-public"));
    let routers = &l.config.http.routers;
    assert_eq!(routers.len(), 2);
    assert_eq!(
        routers["chat-http"],
        Router {
            entry_points: vec!["http".into()],
            middlewares: vec!["to-https".into()],
            service: "chat".into(),
            rule: "Host(`chat.example.net`)".into(),
            ..Router::default()
        }
    );
    let https = &routers["chat-https"];
    assert_eq!(https.service, "chat");
    assert_eq!(
        https.tls.as_ref().unwrap().cert_resolver.as_deref(),
        Some("le")
    );
    assert_eq!(port(&l, "chat").as_deref(), Some("9000"));
    assert!(l.config.http.middlewares.contains_key("to-https"));
}

/// Middleware options arrive from v2/v3 labels as strings; every middleware
/// builds from them.
#[test]
fn v2_label_middlewares_build_from_strings() {
    let l = parse(
        "shop_web",
        &[
            ("traefik.http.routers.shop.rule", "Host(`shop.example`)"),
            (
                "traefik.http.routers.shop.middlewares",
                "limit,allow,hdrs,auth,inflight,buf,to-https",
            ),
            ("traefik.http.middlewares.limit.ratelimit.average", "100"),
            ("traefik.http.middlewares.limit.ratelimit.burst", "50"),
            ("traefik.http.middlewares.limit.ratelimit.period", "1m"),
            (
                "traefik.http.middlewares.limit.ratelimit.sourcecriterion.ipstrategy.depth",
                "1",
            ),
            (
                "traefik.http.middlewares.allow.ipallowlist.sourcerange",
                "10.0.0.0/8,192.168.0.0/16",
            ),
            (
                "traefik.http.middlewares.allow.ipallowlist.ipstrategy.excludedips",
                "10.0.0.1,10.0.0.2",
            ),
            (
                "traefik.http.middlewares.hdrs.headers.customresponseheaders.X-Served-By",
                "wharf",
            ),
            (
                "traefik.http.middlewares.hdrs.headers.accesscontrolallowmethods",
                "GET,OPTIONS",
            ),
            (
                "traefik.http.middlewares.hdrs.headers.stsseconds",
                "31536000",
            ),
            ("traefik.http.middlewares.hdrs.headers.framedeny", "true"),
            (
                "traefik.http.middlewares.auth.basicauth.users",
                "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/",
            ),
            (
                "traefik.http.middlewares.auth.basicauth.removeheader",
                "true",
            ),
            ("traefik.http.middlewares.inflight.inflightreq.amount", "10"),
            (
                "traefik.http.middlewares.buf.buffering.maxrequestbodybytes",
                "2000000",
            ),
            (
                "traefik.http.middlewares.to-https.redirectscheme.scheme",
                "https",
            ),
            (
                "traefik.http.middlewares.to-https.redirectscheme.port",
                "443",
            ),
            (
                "traefik.http.middlewares.to-https.redirectscheme.permanent",
                "true",
            ),
            ("traefik.http.services.shop.loadbalancer.server.port", "80"),
        ],
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config.http.middlewares.len(), 7);
    for (name, mw) in &l.config.http.middlewares {
        let built = crate::middleware::build(mw);
        assert!(built.is_ok(), "{name}: {built:?}");
    }
}

#[test]
fn wharf_prefix_reads_the_same_tree_and_wins() {
    let l = parse(
        "app",
        &[
            ("traefik.http.routers.web.rule", "Host(`old.example`)"),
            ("wharf.http.routers.web.rule", "Host(`new.example`)"),
            ("WHARF.http.routers.web.EntryPoints", "web"),
            ("wharf.http.services.web.loadbalancer.server.port", "80"),
        ],
    );
    let r = &l.config.http.routers["web"];
    assert_eq!(r.rule, "Host(`new.example`)");
    assert_eq!(r.entry_points, vec!["web"]);
}

#[test]
fn sticky_without_cookie_is_reported() {
    let l = parse(
        "vote_result",
        &[
            (
                "traefik.http.services.result.loadbalancer.server.port",
                "80",
            ),
            ("traefik.http.services.result.loadbalancer.sticky", "true"),
        ],
    );
    let lb = l.config.http.services["result"]
        .load_balancer
        .as_ref()
        .unwrap();
    assert_eq!(lb.sticky.as_ref().unwrap().cookie, None);
    assert_eq!(
        l.warnings[0].label.as_deref(),
        Some("traefik.http.services.result.loadbalancer.sticky")
    );
}

#[test]
fn no_labels_gives_default_router_and_service() {
    let l = parse(
        "shop_api",
        &[("traefik.http.services.x.loadbalancer.server.port", "80")],
    );
    let r = &l.config.http.routers["shop-api"];
    assert_eq!(r.rule, "Host(`shop-api`)");
    assert_eq!(r.service, "x");
    assert_eq!(l.config.http.services.len(), 1);
}

#[test]
fn missing_port_on_swarm_rejects_only_that_workload() {
    let errors = parse_err("shop_api", &[("traefik.enable", "true")]);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, IssueKind::MissingPort);
    assert!(errors[0]
        .message
        .contains("traefik.http.services.shop-api.loadbalancer.server.port"));
    assert!(errors[0].to_string().starts_with("shop_api: "));
    // Outside Swarm mode the container's exposed port is used later.
    let l = parse_workload("shop_api", &BTreeMap::new(), &LabelSettings::docker())
        .unwrap()
        .unwrap();
    assert_eq!(port(&l, "shop-api"), None);
}

#[test]
fn enable_and_exposed_by_default() {
    let s = LabelSettings::swarm();
    let off = labels(&[("traefik.enable", "false")]);
    assert!(parse_workload("a", &off, &s).unwrap().is_none());
    let mut s = LabelSettings::swarm();
    s.exposed_by_default = false;
    let port = ("traefik.http.services.a.loadbalancer.server.port", "80");
    assert!(parse_workload("a", &labels(&[port]), &s).unwrap().is_none());
    let on = labels(&[port, ("traefik.enable", "true")]);
    assert!(parse_workload("a", &on, &s).unwrap().is_some());
    let bad = labels(&[port, ("traefik.enable", "yes")]);
    let e = parse_workload("a", &bad, &s).unwrap_err();
    assert_eq!(e[0].label.as_deref(), Some("traefik.enable"));
}

mod assign;
mod v1;
