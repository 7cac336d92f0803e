//! Routing by service labels in the three Traefik dialects, through wharf's host port.

use std::time::{Duration, Instant};

use super::docker::{App, AppSpec};
use super::stack::enter;

/// How long a new service gets to become routable (generous: this test checks
/// routing, `lifecycle` checks the latency).
const ROUTED_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_of_each_traefik_dialect_route_through_the_host_port() {
    let Some(suite) = enter("routing_three_dialects").await else {
        return;
    };
    let (v3, v2, v1) = (suite.name("v3"), suite.name("v2"), suite.name("v1"));
    let v3_host = suite.host("v3");
    let (v2_host_a, v2_host_b) = (suite.host("v2a"), suite.host("v2b"));
    let (v1_host_a, v1_host_b) = (suite.host("v1a"), suite.host("v1b"));

    // v3: one host per Host(); the port label is mandatory on swarm.
    let v3_rule = format!("Host(`{v3_host}`)");
    let v3_labels = [
        ("traefik.enable".to_owned(), "true".to_owned()),
        (format!("traefik.http.routers.{v3}.rule"), v3_rule),
        (
            format!("traefik.http.services.{v3}.loadbalancer.server.port"),
            "80".to_owned(),
        ),
    ];
    // v2 syntax kept by a v3 router: several hosts in one Host() mean "any of them".
    let v2_rule = format!("Host(`{v2_host_a}`, `{v2_host_b}`)");
    let v2_labels = [
        ("traefik.enable".to_owned(), "true".to_owned()),
        (format!("traefik.http.routers.{v2}.rule"), v2_rule),
        (
            format!("traefik.http.routers.{v2}.rulesyntax"),
            "v2".to_owned(),
        ),
        (
            format!("traefik.http.services.{v2}.loadbalancer.server.port"),
            "80".to_owned(),
        ),
    ];
    // v1.7: `Matcher:a,b` and traefik.port.
    let v1_labels = [
        ("traefik.enable".to_owned(), "true".to_owned()),
        (
            "traefik.frontend.rule".to_owned(),
            format!("Host:{v1_host_a},{v1_host_b}"),
        ),
        ("traefik.port".to_owned(), "80".to_owned()),
    ];
    let (v3_spec, v2_spec, v1_spec) = (
        AppSpec::with_labels(v3_labels, 1),
        AppSpec::with_labels(v2_labels, 1),
        AppSpec::with_labels(v1_labels, 1),
    );
    let created = Instant::now();
    let (v3_app, v2_app, v1_app) = tokio::join!(
        App::create(&suite, &v3, &v3_spec),
        App::create(&suite, &v2, &v2_spec),
        App::create(&suite, &v1, &v1_spec),
    );

    let mut problems = Vec::new();
    for (dialect, app, host) in [
        ("v3", &v3_app, &v3_host),
        ("v2", &v2_app, &v2_host_a),
        ("v2", &v2_app, &v2_host_b),
        ("v1", &v1_app, &v1_host_a),
        ("v1", &v1_app, &v1_host_b),
    ] {
        match suite.wait_routed(host, ROUTED_TIMEOUT).await {
            Ok(waited) => {
                let body = waited.body;
                let tasks = app.running_tasks().await;
                suite.report(&format!(
                    "{dialect} labels: Host {host} -> {body} ({:.2}s after the services were created)",
                    created.elapsed().as_secs_f64()
                ));
                if !tasks.contains(&body) {
                    problems.push(format!(
                        "{dialect}: Host {host} answered {body:?}, not a task of {} ({tasks:?})",
                        app.name()
                    ));
                }
            }
            Err(e) => problems.push(format!("{dialect}: {e}")),
        }
    }
    // A host no label names is not routed.
    let other = suite
        .get(&suite.host("unknown"), "/")
        .await
        .expect("GET through wharf");
    if other.status != 404 {
        problems.push(format!(
            "an unknown host answered {} {}, not 404",
            other.status,
            other.text()
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
