//! A crash and restart of the Docker daemon.
//!
//! dockerd 20.10 refuses `--live-restore` on a swarm node ("incompatible with swarm
//! mode"), so the daemon cannot be restarted without touching the containers:
//!
//! 1. while the daemon is down (killed: a crash), the containers keep running under
//!    their containerd shims, and wharf must keep serving the routes it has, from the
//!    node's address (connections to 127.0.0.1 go through `docker-proxy`, which dies
//!    with the daemon);
//! 2. when it is back it stops those containers and swarm starts new tasks, wharf's
//!    among them: an outage this test measures but cannot hold against wharf;
//! 3. afterwards wharf routes the old service again, and changes come through.
//!
//! The test only kills a daemon `tests/swarm/dockerd.sh` started (`tests/run` starts
//! one when none runs, as on CI); elsewhere it reports itself skipped.

use std::time::{Duration, Instant};

use tokio::process::Command;

use super::docker::{docker_ok, App, AppSpec};
use super::load::Load;
use super::stack::{enter, repo};

/// Timeouts for what Docker does (scheduling and starting tasks, restarting).
const DOCKER_TIMEOUT: Duration = Duration::from_secs(90);

/// How long the daemon stays down.
const DOWN_FOR: Duration = Duration::from_secs(3);

/// How long wharf gets to pick up a change once it runs again.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `tests/swarm/dockerd.sh ACTION`; its output, or an error with it.
async fn dockerd(action: &str) -> Result<String, String> {
    let out = Command::new(repo().join("tests/swarm/dockerd.sh"))
        .arg(action)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run dockerd.sh {action}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "dockerd.sh {action} failed ({}): {text}",
            out.status
        ))
    }
}

/// What the threads of process `pid` wait in, from `/proc` (`comm: wchan` with
/// counts): `anon_pipe_write` means blocked writing to a full pipe, such as a stdout
/// nobody reads.
fn thread_waits(pid: &str) -> String {
    let mut waits = std::collections::BTreeMap::<String, usize>::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("(process {pid} is gone)");
    };
    for task in tasks.flatten() {
        let read = |file: &str| {
            std::fs::read_to_string(task.path().join(file))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        *waits
            .entry(format!("{}: {}", read("comm"), read("wchan")))
            .or_default() += 1;
    }
    waits
        .iter()
        .map(|(wait, n)| format!("{n}x {wait}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_survive_a_docker_daemon_crash_and_later_changes_come_through() {
    let Some(suite) = enter("dockerd_restart").await else {
        return;
    };
    if dockerd("owned").await.is_err() {
        suite.report(
            "SKIPPED: the running dockerd was not started by tests/swarm/dockerd.sh \
             (tests/run starts one when none runs); killing someone else's daemon is \
             not this test's call",
        );
        return;
    }
    let (name, host) = (suite.name("restart"), suite.host("restart"));
    let app = App::create(&suite, &name, &AppSpec::routed(&name, &host, 2)).await;
    suite
        .wait_routed(&host, DOCKER_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let wharf_before = suite.wharf_container().await;
    let wharf_pid = docker_ok(&["inspect", "--format", "{{.State.Pid}}", &wharf_before]).await;
    let mut problems = Vec::new();

    // 1. The daemon is down.
    let external = suite.web_external();
    let load = Load::start(external, &host, 1, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    dockerd("kill").await.unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(DOWN_FOR).await;
    let down = load.stop().await;
    suite.report(&format!(
        "dockerd killed; load on {external} until {}s after: {down}",
        DOWN_FOR.as_secs()
    ));
    for (at, failure) in &down.failure_samples {
        suite.report(&format!("  failure at {:.2}s: {failure}", at.as_secs_f64()));
    }
    if down.failures > 0 {
        problems.push(format!(
            "{} of {} requests failed while the daemon was down; first: {:?}; wharf's \
             threads were waiting in: {}",
            down.failures,
            down.requests,
            down.failure_samples,
            thread_waits(wharf_pid.trim())
        ));
    }

    // 2. The daemon comes back and replaces the containers.
    let load = Load::start(external, &host, 1, 0);
    let started = Instant::now();
    dockerd("ensure").await.unwrap_or_else(|e| panic!("{e}"));
    let back_after = started.elapsed();
    let served = suite.wait_routed(&host, DOCKER_TIMEOUT).await;
    let back = load.stop().await;
    let wharf_after = suite.wharf_container().await;
    suite.report(&format!(
        "dockerd back after {:.1}s; wharf's container {}; the route answered again \
         {:.1}s after the daemon did; load meanwhile: {back}",
        back_after.as_secs_f64(),
        if wharf_before == wharf_after {
            "kept running"
        } else {
            "was replaced (no live-restore in swarm mode)"
        },
        served
            .as_ref()
            .map(|w| w.elapsed.as_secs_f64())
            .unwrap_or(f64::NAN),
    ));
    if let Err(e) = served {
        problems.push(format!("the route did not come back: {e}"));
    }

    // 3. Changes after the restart come through: a new service, and a removal.
    let (late, late_host) = (suite.name("afterrestart"), suite.host("afterrestart"));
    let late_app = App::create(&suite, &late, &AppSpec::routed(&late, &late_host, 1)).await;
    match suite.wait_routed(&late_host, CHANGE_TIMEOUT).await {
        Ok(w) => suite.report(&format!(
            "a service created after the restart was routed {} ms after `docker service \
             create --detach` returned",
            w.elapsed.as_millis()
        )),
        Err(e) => problems.push(format!("service created after the restart: {e}")),
    }
    app.remove().await;
    match suite.wait_status(&host, 404, CHANGE_TIMEOUT).await {
        Ok(w) => suite.report(&format!(
            "a service removed after the restart answered 404 {} ms after `docker \
             service rm` returned",
            w.elapsed.as_millis()
        )),
        Err(e) => problems.push(format!("service removed after the restart: {e}")),
    }
    drop(late_app);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
