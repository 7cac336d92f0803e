//! A rolling update under steady load: not one request may fail.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::docker::{docker_ok, App, AppSpec};
use super::load::Load;
use super::stack::enter;

/// Timeouts for what Docker does (scheduling and starting tasks).
const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);

/// Client loops opening a new connection per request, and loops keeping one alive.
const FRESH_LOOPS: usize = 2;
const POOLED_LOOPS: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_update_of_three_replicas_under_load_fails_no_request() {
    let Some(suite) = enter("rolling_update_under_load").await else {
        return;
    };
    let (name, host) = (suite.name("roll"), suite.host("roll"));
    let app = App::create(&suite, &name, &AppSpec::routed(&name, &host, 3)).await;
    let old = wait_for_tasks(&suite, &app, &host, &BTreeSet::new()).await;

    let load = Load::start(suite.web(), &host, FRESH_LOOPS, POOLED_LOOPS);
    // Some load before the update starts, so a failure at once would show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    // Swarm's defaults: one task at a time, stop-first. The short monitor period only
    // makes the command return sooner after the last task runs.
    docker_ok(&[
        "service",
        "update",
        "--force",
        "--detach=false",
        "--update-monitor",
        "1s",
        "--no-resolve-image",
        app.name(),
    ])
    .await;
    let update_took = started.elapsed();
    // Keep the load on until every new task answers.
    let new = wait_for_tasks(&suite, &app, &host, &old).await;
    let tally = load.stop().await;
    suite.report(&format!(
        "`docker service update --force` of 3 replicas took {:.1}s under load: {tally}; \
         old tasks {} replaced by {}",
        update_took.as_secs_f64(),
        old.len(),
        new.len()
    ));
    for (at, failure) in &tally.failure_samples {
        suite.report(&format!("  failure at {:.2}s: {failure}", at.as_secs_f64()));
    }
    assert_eq!(
        tally.failures, 0,
        "{} of {} requests failed during the update; first: {:?}",
        tally.failures, tally.requests, tally.failure_samples
    );
}

/// Waits until requests reach exactly the service's three running tasks, none of them
/// in `old`, and returns their names.
async fn wait_for_tasks(
    suite: &super::stack::Stack,
    app: &App,
    host: &str,
    old: &BTreeSet<String>,
) -> BTreeSet<String> {
    let started = Instant::now();
    let mut seen = BTreeSet::new();
    let mut last = String::new();
    loop {
        assert!(
            started.elapsed() < DOCKER_TIMEOUT,
            "three new tasks did not answer within {DOCKER_TIMEOUT:?}; last: {last}"
        );
        match suite.get(host, "/").await {
            Ok(reply) if reply.status == 200 => {
                let task = reply.text().trim().to_owned();
                if !old.contains(&task) {
                    seen.insert(task);
                }
                last = format!("answered by {seen:?}");
            }
            Ok(reply) => last = format!("{} {}", reply.status, reply.text().trim()),
            Err(e) => last = format!("{e:#}"),
        }
        if seen.len() >= 3 {
            let running = app.running_tasks().await;
            if seen == running {
                return running;
            }
            seen.retain(|task| running.contains(task));
            last = format!("answered by {seen:?}, running {running:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
