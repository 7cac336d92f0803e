//! How fast wharf follows services being created, scaled and removed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::docker::{now_since_epoch, App, AppSpec};
use super::stack::enter;

/// The promise: a change is routed within a second.
const PROMISE: Duration = Duration::from_secs(1);

/// Timeouts for what Docker does (scheduling and starting tasks).
const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_service_is_routable_within_a_second() {
    let Some(suite) = enter("new_service_latency").await else {
        return;
    };
    let (name, host) = (suite.name("new"), suite.host("new"));
    let spec = AppSpec {
        wait: true,
        ..AppSpec::routed(&name, &host, 1)
    };
    let started = Instant::now();
    let app = App::create(&suite, &name, &spec).await;
    let create_took = started.elapsed();
    let returned_at = now_since_epoch();
    let waited = suite
        .wait_routed(&host, DOCKER_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let running_at = app.task_state_time(&waited.body).await;
    let since_running = (returned_at + waited.elapsed).saturating_sub(running_at);
    suite.report(&format!(
        "new service routable {} ms after `docker service create` returned ({} ms after \
         Docker marked its task running; the create command itself took {} ms); \
         answers before: {}",
        ms(waited.elapsed),
        ms(since_running),
        ms(create_took),
        waited.before_text()
    ));
    assert!(
        waited.elapsed < PROMISE,
        "routable only {} ms after `docker service create` returned",
        ms(waited.elapsed)
    );
    assert!(
        since_running < PROMISE,
        "routable only {} ms after its task was running",
        ms(since_running)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_service_answers_404_within_a_second() {
    let Some(suite) = enter("removed_service_latency").await else {
        return;
    };
    let (name, host) = (suite.name("gone"), suite.host("gone"));
    let app = App::create(&suite, &name, &AppSpec::routed(&name, &host, 1)).await;
    suite
        .wait_routed(&host, DOCKER_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    app.remove().await;
    let waited = suite
        .wait_status(&host, 404, DOCKER_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    suite.report(&format!(
        "removed service answers 404 {} ms after `docker service rm` returned; answers before: {}",
        ms(waited.elapsed),
        waited.before_text()
    ));
    assert!(
        waited.elapsed < PROMISE,
        "404 only {} ms after the service was removed",
        ms(waited.elapsed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_from_one_to_three_spreads_requests_over_the_three_tasks() {
    let Some(suite) = enter("scale_1_to_3").await else {
        return;
    };
    let (name, host) = (suite.name("scale"), suite.host("scale"));
    let app = App::create(&suite, &name, &AppSpec::routed(&name, &host, 1)).await;
    suite
        .wait_routed(&host, DOCKER_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    app.scale(3).await;
    // When each task first answered, per task name (wall clock).
    let mut first_seen = BTreeMap::new();
    let scaled = Instant::now();
    let mut last = String::new();
    let tasks = loop {
        assert!(
            scaled.elapsed() < DOCKER_TIMEOUT,
            "three tasks did not answer within {DOCKER_TIMEOUT:?}; last: {last}"
        );
        match suite.get(&host, "/").await {
            Ok(reply) if reply.status == 200 => {
                first_seen
                    .entry(reply.text().trim().to_owned())
                    .or_insert_with(now_since_epoch);
                last = format!("answered by {:?}", first_seen.keys());
            }
            Ok(reply) => last = format!("{} {}", reply.status, reply.text().trim()),
            Err(e) => last = format!("{e:#}"),
        }
        if first_seen.len() >= 3 {
            let running = app.running_tasks().await;
            let seen: BTreeSet<String> = first_seen.keys().cloned().collect();
            if seen == running {
                break running;
            }
            last = format!("answered by {seen:?}, running {running:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut lags = Vec::new();
    for task in &tasks {
        let running_at = app.task_state_time(task).await;
        lags.push(first_seen[task].saturating_sub(running_at));
    }
    let worst = lags.iter().max().copied().unwrap_or_default();

    // A fresh window of requests: every task gets its share.
    const WINDOW: usize = 30;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..WINDOW {
        let reply = suite.get(&host, "/").await.expect("GET through wharf");
        assert_eq!(reply.status, 200, "{}", reply.text());
        *counts.entry(reply.text().trim().to_owned()).or_default() += 1;
    }
    suite.report(&format!(
        "scaled 1 -> 3: all three tasks answering {:.2}s after `docker service scale` \
         returned; a new task answered at most {} ms after Docker marked it running; \
         {WINDOW} requests spread {:?}",
        scaled.elapsed().as_secs_f64(),
        ms(worst),
        counts.values().collect::<Vec<_>>()
    ));
    assert_eq!(
        counts.keys().cloned().collect::<BTreeSet<_>>(),
        tasks,
        "{WINDOW} requests reached {counts:?}"
    );
    assert!(
        counts.values().all(|&n| n >= WINDOW / 3 / 2),
        "uneven spread over the three tasks: {counts:?}"
    );
    assert!(
        worst < PROMISE,
        "a new task was answered only {} ms after it was running",
        ms(worst)
    );
}
