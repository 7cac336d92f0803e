//! Registration and exposition of the metrics.

use std::collections::HashSet;

use http::Method;

use super::*;

fn outcome(code: u16, method: &Method) -> Outcome<'_> {
    Outcome {
        code,
        method,
        protocol: "http",
        seconds: 0.2,
        request_bytes: 3,
        response_bytes: 10,
        tls: None,
    }
}

fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(prefix))
}

#[test]
fn requests_are_counted_per_scope_with_traefik_names() {
    let m = Metrics::new(&Prometheus::default(), false);
    let ep = m.entrypoint("web").unwrap();
    let route = m.route(&"r@file".into(), &"s@file".into()).unwrap();
    assert!(route.router.is_none(), "router labels are off by default");
    for _ in 0..3 {
        ep.record(&outcome(200, &Method::GET));
        route.record(&outcome(200, &Method::GET));
    }
    ep.record(&outcome(404, &Method::POST));
    let ext = Method::from_bytes(b"PURGE").unwrap();
    ep.record(&outcome(200, &ext));
    m.retried("s@file", 2);
    m.reloaded();
    m.open_connections("web").inc();
    let text = m.encode();
    assert_eq!(
        line(
            &text,
            r#"traefik_entrypoint_requests_total{code="200",method="GET",protocol="http",entrypoint="web"}"#
        ),
        Some(
            r#"traefik_entrypoint_requests_total{code="200",method="GET",protocol="http",entrypoint="web"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"traefik_entrypoint_requests_total{code="404",method="POST",protocol="http",entrypoint="web"} 1"#), "{text}");
    assert!(text.contains(r#"traefik_entrypoint_requests_total{code="200",method="PURGE",protocol="http",entrypoint="web"} 1"#), "{text}");
    assert!(text.contains(r#"traefik_service_requests_total{code="200",method="GET",protocol="http",service="s@file"} 3"#), "{text}");
    assert!(text.contains(r#"traefik_service_responses_bytes_total{code="200",method="GET",protocol="http",service="s@file"} 30"#), "{text}");
    assert!(text.contains(r#"traefik_service_requests_bytes_total{code="200",method="GET",protocol="http",service="s@file"} 9"#), "{text}");
    assert!(text.contains(r#"traefik_entrypoint_request_duration_seconds_bucket{le="0.3",code="200",method="GET",protocol="http",entrypoint="web"} 3"#), "{text}");
    assert!(text.contains(r#"traefik_entrypoint_request_duration_seconds_bucket{le="0.1",code="200",method="GET",protocol="http",entrypoint="web"} 0"#), "{text}");
    assert!(
        text.contains(r#"traefik_service_retries_total{service="s@file"} 2"#),
        "{text}"
    );
    assert!(text.contains("traefik_config_reloads_total 1"), "{text}");
    assert!(
        text.contains(r#"traefik_open_connections{entrypoint="web",protocol="TCP"} 1"#),
        "{text}"
    );
    assert!(!text.contains("traefik_router_requests_total"), "{text}");
}

#[test]
fn options_choose_the_scopes_and_buckets() {
    let settings = Prometheus {
        add_routers_labels: true,
        add_services_labels: false,
        add_entry_points_labels: false,
        buckets: vec![0.5, 2.0],
        ..Prometheus::default()
    };
    let m = Metrics::new(&settings, false);
    assert!(m.entrypoint("web").is_none());
    assert!(m
        .route(&"api@internal".into(), &"api@internal".into())
        .is_none());
    let route = m.route(&"r@file".into(), &"s@file".into()).unwrap();
    assert!(route.service.is_none());
    route.record(&Outcome {
        tls: Some(TlsInfo::for_tests("1.3", "TLS_AES_128_GCM_SHA256")),
        ..outcome(502, &Method::GET)
    });
    let text = m.encode();
    assert!(text.contains(r#"traefik_router_requests_total{code="502",method="GET",protocol="http",router="r@file",service="s@file"} 1"#), "{text}");
    assert!(
        text.contains(r#"traefik_router_request_duration_seconds_bucket{le="0.5","#),
        "{text}"
    );
    assert!(text.contains(r#"traefik_router_requests_tls_total{tls_version="1.3",tls_cipher="TLS_AES_128_GCM_SHA256",router="r@file",service="s@file"} 1"#), "{text}");
    assert!(!text.contains("traefik_service_requests_total"), "{text}");
    assert!(
        !text.contains("traefik_entrypoint_requests_total"),
        "{text}"
    );
}

#[test]
fn service_scopes_are_shared_and_pruned() {
    let m = Metrics::new(&Prometheus::default(), false);
    let a = m.route(&"a@file".into(), &"s@file".into()).unwrap();
    let b = m.route(&"b@file".into(), &"s@file".into()).unwrap();
    assert!(Arc::ptr_eq(
        a.service.as_ref().unwrap(),
        b.service.as_ref().unwrap()
    ));
    m.retain_services(&HashSet::new());
    let c = m.route(&"a@file".into(), &"s@file".into()).unwrap();
    assert!(!Arc::ptr_eq(
        a.service.as_ref().unwrap(),
        c.service.as_ref().unwrap()
    ));
    // A new scope still adds to the same exported series.
    a.record(&outcome(200, &Method::GET));
    c.record(&outcome(200, &Method::GET));
    let text = m.encode();
    assert!(text.contains(r#"traefik_service_requests_total{code="200",method="GET",protocol="http",service="s@file"} 2"#), "{text}");
}
