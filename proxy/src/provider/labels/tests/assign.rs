//! Automatic assignment, default rules, rule validation and constraints.

use super::*;

const PORT_A: (&str, &str) = ("traefik.http.services.a.loadbalancer.server.port", "80");
const PORT_B: (&str, &str) = ("traefik.http.services.b.loadbalancer.server.port", "81");

#[test]
fn one_service_is_attached_to_every_router() {
    let l = parse(
        "app",
        &[
            PORT_A,
            ("traefik.http.routers.x.rule", "Host(`x`)"),
            ("traefik.http.routers.y.entrypoints", "web"),
        ],
    );
    assert_eq!(l.config.http.routers["x"].service, "a");
    assert_eq!(l.config.http.routers["y"].service, "a");
    assert_eq!(
        l.config.http.routers["y"].rule, "Host(`app`)",
        "default rule"
    );
}

#[test]
fn two_services_and_no_router_gives_no_router() {
    let l = parse("app", &[PORT_A, PORT_B]);
    assert!(l.config.http.routers.is_empty());
    assert_eq!(l.config.http.services.len(), 2);
    assert_eq!(l.warnings[0].kind, IssueKind::TooManyServices);
    assert_eq!(l.warnings[0].severity, Severity::Warning);
}

#[test]
fn router_without_service_among_two_is_dropped() {
    let l = parse(
        "app",
        &[
            PORT_A,
            PORT_B,
            ("traefik.http.routers.x.rule", "Host(`x`)"),
            ("traefik.http.routers.y.rule", "Host(`y`)"),
            ("traefik.http.routers.y.service", "b"),
        ],
    );
    assert_eq!(l.config.http.routers.keys().collect::<Vec<_>>(), vec!["y"]);
    let w = &l.warnings[0];
    assert_eq!(
        (w.kind.clone(), w.severity),
        (IssueKind::TooManyServices, Severity::Error)
    );
    assert_eq!(w.label.as_deref(), Some("traefik.http.routers.x.rule"));
    assert!(w.message.contains("traefik.http.routers.x.service"), "{w}");
}

#[test]
fn routers_to_other_providers_need_no_port() {
    let l = parse(
        "proxy_traefik",
        &[
            ("traefik.http.routers.dash.rule", "Host(`dash.example`)"),
            ("traefik.http.routers.dash.service", "api@internal"),
        ],
    );
    assert!(l.config.http.services.is_empty());
    assert_eq!(l.config.http.routers["dash"].service, "api@internal");
}

#[test]
fn middleware_only_labels_still_get_the_default_router() {
    let l = parse_workload(
        "auth_mw",
        &labels(&[("traefik.http.middlewares.gzip.compress", "true")]),
        &LabelSettings::docker(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(l.config.http.routers["auth-mw"].service, "auth-mw");
    assert!(l.config.http.middlewares.contains_key("gzip"));
}

#[test]
fn tcp_only_labels_make_no_http_router() {
    let l = parse(
        "db_pg",
        &[
            ("traefik.tcp.routers.pg.rule", "HostSNI(`*`)"),
            ("traefik.tcp.services.pg.loadbalancer.server.port", "5432"),
        ],
    );
    assert!(l.config.http.routers.is_empty());
    assert!(l.config.http.services.is_empty());
    assert!(l.config.tcp.is_some());
}

#[test]
fn default_rule_templates() {
    let mut s = LabelSettings::swarm();
    s.default_rule =
        "Host(`{{ index .Labels \"app.host\" }}`) && PathPrefix(`/{{ .Name }}`)".into();
    let l = parse_workload(
        "shop_api",
        &labels(&[PORT_A, ("app.host", "shop.example")]),
        &s,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        l.config.http.routers["shop-api"].rule,
        "Host(`shop.example`) && PathPrefix(`/shop-api`)"
    );

    s.default_rule = "Host(`{{ .Name | sha1sum }}`)".into();
    let l = parse_workload("shop_api", &labels(&[PORT_A]), &s)
        .unwrap()
        .unwrap();
    assert!(l.config.http.routers.is_empty());
    assert_eq!(l.warnings[0].kind, IssueKind::DefaultRule);
    assert!(
        l.warnings[0].message.contains("sha1sum"),
        "{}",
        l.warnings[0]
    );
}

#[test]
fn invalid_rules_name_their_label_and_drop_only_their_router() {
    let l = parse(
        "app",
        &[
            PORT_A,
            ("traefik.http.routers.ok.rule", "Host(`ok.example`)"),
            ("traefik.http.routers.bad.rule", "Host(`bad.example`"),
        ],
    );
    assert!(l.config.http.routers.contains_key("ok"));
    assert!(!l.config.http.routers.contains_key("bad"));
    let w = &l.warnings[0];
    assert_eq!(w.kind, IssueKind::InvalidRule);
    assert_eq!(w.label.as_deref(), Some("traefik.http.routers.bad.rule"));
    assert!(w.to_string().contains("traefik.http.routers.bad.rule"));
}

#[test]
fn rule_syntax_from_label_or_settings() {
    let v2_rule = (
        "traefik.http.routers.r.rule",
        "Host(`a.example`, `b.example`)",
    );
    let l = parse("app", &[PORT_A, v2_rule]);
    assert!(
        l.config.http.routers.is_empty(),
        "v2 multi-value Host is not v3"
    );
    let l = parse(
        "app",
        &[PORT_A, v2_rule, ("traefik.http.routers.r.rulesyntax", "v2")],
    );
    assert!(l.config.http.routers.contains_key("r"));
    let mut s = LabelSettings::swarm();
    s.default_rule_syntax = RuleSyntax::V2;
    let l = parse_workload("app", &labels(&[PORT_A, v2_rule]), &s)
        .unwrap()
        .unwrap();
    assert!(l.config.http.routers.contains_key("r"));
}

#[test]
fn constraints_filter_workloads() {
    let mut s = LabelSettings::swarm();
    s.constraints =
        Some("Label(`traefik.constraint-label`, `edge`) && !LabelRegex(`tier`, `^int`)".into());
    let public = labels(&[
        PORT_A,
        ("traefik.constraint-label", "edge"),
        ("tier", "web"),
    ]);
    assert!(parse_workload("a", &public, &s).unwrap().is_some());
    let internal = labels(&[
        PORT_A,
        ("traefik.constraint-label", "edge"),
        ("tier", "internal"),
    ]);
    assert!(parse_workload("a", &internal, &s).unwrap().is_none());
    let other = labels(&[PORT_A, ("traefik.constraint-label", "intranet")]);
    assert!(parse_workload("a", &other, &s).unwrap().is_none());
    // A workload filtered out is not checked further.
    let broken = labels(&[("traefik.http.routers.x.rulee", "y")]);
    assert!(parse_workload("a", &broken, &s).unwrap().is_none());

    s.constraints = Some("Label(`a`,`b`) || LabelRegex(`zone`, `eu`)".into());
    let eu = labels(&[PORT_A, ("zone", "eu-west")]);
    assert!(parse_workload("a", &eu, &s).unwrap().is_some());
    s.constraints = Some("Label(`a`)".into());
    let e = parse_workload("a", &eu, &s).unwrap_err();
    assert_eq!(e[0].kind, IssueKind::Constraints);
}

#[test]
fn errors_of_one_workload_are_all_reported() {
    let e = parse_err(
        "app",
        &[
            ("traefik.http.routers.web.rulee", "Host(`a`)"),
            ("traefik.http.routers.web.priority", "x"),
            (
                "traefik.http.services.web.loadbalancer.server.port",
                "99999",
            ),
        ],
    );
    let labels: Vec<_> = e.iter().filter_map(|i| i.label.as_deref()).collect();
    assert!(labels.contains(&"traefik.http.routers.web.rulee"), "{e:?}");
    assert!(
        labels.contains(&"traefik.http.routers.web.priority"),
        "{e:?}"
    );
    // Port checks run once the labels decode.
    let e = parse_err(
        "app",
        &[(
            "traefik.http.services.web.loadbalancer.server.port",
            "99999",
        )],
    );
    assert_eq!(
        e[0].label.as_deref(),
        Some("traefik.http.services.web.loadbalancer.server.port")
    );
}
