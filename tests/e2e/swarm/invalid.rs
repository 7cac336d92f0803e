//! Broken labels on one service leave the others alone, and wharf says what is wrong
//! where an operator looks: the admin API or its log, naming the service and label.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::docker::{App, AppSpec};
use super::stack::{enter, Stack};

/// Timeouts for what Docker does (scheduling and starting tasks).
const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);

/// How long wharf gets to report a broken service.
const REPORT_TIMEOUT: Duration = Duration::from_secs(15);

/// A service with broken labels, and the label wharf should name.
struct Broken {
    what: &'static str,
    app: App,
    host: String,
    label: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_labels_on_one_service_leave_the_others_untouched() {
    let Some(suite) = enter("invalid_labels").await else {
        return;
    };
    let pid = std::process::id();
    let (good, good_host) = (suite.name("good"), suite.host("good"));
    let good_app = App::create(&suite, &good, &AppSpec::routed(&good, &good_host, 1)).await;
    suite
        .wait_routed(&good_host, DOCKER_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Routers and services are named apart from the swarm service, so a report that
    // names the swarm service is told from one that only names the router.
    let rule_service = suite.name("badrule");
    let rule_host = suite.host("badrule");
    let rule_router = format!("rulerouter{pid}");
    let rule_label = format!("traefik.http.routers.{rule_router}.rule");
    let rule_spec = AppSpec::with_labels(
        [
            ("traefik.enable".to_owned(), "true".to_owned()),
            // Unfinished: `&&` without a right-hand side.
            (rule_label.clone(), format!("Host(`{rule_host}`) &&")),
            (
                format!("traefik.http.services.svc{pid}.loadbalancer.server.port"),
                "80".to_owned(),
            ),
        ],
        1,
    );
    let port_service = suite.name("noport");
    let port_host = suite.host("noport");
    let port_spec = AppSpec::with_labels(
        [
            ("traefik.enable".to_owned(), "true".to_owned()),
            (
                format!("traefik.http.routers.portrouter{pid}.rule"),
                format!("Host(`{port_host}`)"),
            ),
            // No loadbalancer.server.port: swarm services must name their port.
        ],
        1,
    );
    let nan_service = suite.name("nanport");
    let nan_host = suite.host("nanport");
    let nan_label = format!("traefik.http.services.nansvc{pid}.loadbalancer.server.port");
    let nan_spec = AppSpec::with_labels(
        [
            ("traefik.enable".to_owned(), "true".to_owned()),
            (
                format!("traefik.http.routers.nanrouter{pid}.rule"),
                format!("Host(`{nan_host}`)"),
            ),
            (nan_label.clone(), "eighty".to_owned()),
        ],
        1,
    );
    let (rule_app, port_app, nan_app) = tokio::join!(
        App::create(&suite, &rule_service, &rule_spec),
        App::create(&suite, &port_service, &port_spec),
        App::create(&suite, &nan_service, &nan_spec),
    );
    let broken = [
        Broken {
            what: "unfinished rule",
            app: rule_app,
            host: rule_host,
            label: rule_label,
        },
        Broken {
            what: "missing port",
            app: port_app,
            host: port_host,
            label: "loadbalancer.server.port".to_owned(),
        },
        Broken {
            what: "port that is not a number",
            app: nan_app,
            host: nan_host,
            label: nan_label,
        },
    ];
    // Their tasks run, so wharf has seen them.
    for b in &broken {
        let started = Instant::now();
        while b.app.running_tasks().await.is_empty() {
            assert!(
                started.elapsed() < DOCKER_TIMEOUT,
                "{} has no running task",
                b.app.name()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // A service created after the broken ones is routed: the provider goes on.
    let (late, late_host) = (suite.name("late"), suite.host("late"));
    let _late_app = App::create(&suite, &late, &AppSpec::routed(&late, &late_host, 1)).await;
    let late_waited = suite.wait_routed(&late_host, DOCKER_TIMEOUT).await;

    let mut problems = Vec::new();
    match &late_waited {
        Ok(w) => suite.report(&format!(
            "a service created after the broken ones was routed in {} ms",
            w.elapsed.as_millis()
        )),
        Err(e) => problems.push(format!("service created after the broken ones: {e}")),
    }
    let good_reply = suite.get(&good_host, "/").await.expect("GET through wharf");
    let good_tasks = good_app.running_tasks().await;
    if good_reply.status != 200 || !good_tasks.contains(good_reply.text().trim()) {
        problems.push(format!(
            "the good service answered {} {:?} with broken services beside it",
            good_reply.status,
            good_reply.text()
        ));
    }
    for b in &broken {
        let reply = suite.get(&b.host, "/").await.expect("GET through wharf");
        if reply.status == 200 {
            problems.push(format!(
                "{} ({}) is routed: {} {:?}",
                b.what,
                b.app.name(),
                reply.status,
                reply.text()
            ));
        }
        match find_report(&suite, b.app.name(), &b.label).await {
            Ok(evidence) => suite.report(&format!(
                "{} on {}: Host {} -> {}; reported: {evidence}",
                b.what,
                b.app.name(),
                b.host,
                reply.status
            )),
            Err(e) => problems.push(format!("{} on {}: {e}", b.what, b.app.name())),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Polls the admin API's routers and services and wharf's log until one entry or line
/// names both `service` and `label` (case-insensitive); that entry or line.
async fn find_report(stack: &Stack, service: &str, label: &str) -> Result<String, String> {
    let (service_lc, label_lc) = (service.to_lowercase(), label.to_lowercase());
    let names_both = |text: &str| {
        let text = text.to_lowercase();
        text.contains(&service_lc) && text.contains(&label_lc)
    };
    let started = Instant::now();
    let mut mentions = Vec::new();
    loop {
        for path in ["/api/http/routers", "/api/http/services"] {
            if let Ok(Value::Array(items)) = stack.api(path).await {
                for item in items {
                    let text = item.to_string();
                    if names_both(&text) {
                        return Ok(format!("{path}: {text}"));
                    }
                    if text.to_lowercase().contains(&service_lc) {
                        mentions.push(format!("{path}: {text}"));
                    }
                }
            }
        }
        let log = stack.logs().await;
        if let Some(line) = log.lines().find(|l| names_both(l)) {
            return Ok(format!("log: {}", line.trim()));
        }
        if started.elapsed() >= REPORT_TIMEOUT {
            mentions.extend(
                log.lines()
                    .filter(|l| l.to_lowercase().contains(&service_lc))
                    .map(|l| format!("log: {}", l.trim())),
            );
            mentions.dedup();
            return Err(format!(
                "neither the API nor the log names both the service and `{label}` within \
                 {REPORT_TIMEOUT:?}; entries naming the service: {mentions:#?}"
            ));
        }
        mentions.clear();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
