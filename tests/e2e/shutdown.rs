//! Graceful shutdown on SIGTERM.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::TcpStream;

use crate::backends::Backend;
use crate::client;
use crate::harness::{eventually, poll_until, router, service, Options, Wharf};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_cleanly() {
    const GRACE: Duration = Duration::from_secs(10);
    let slow = Backend::slow("slow", Duration::from_secs(3)).await;
    let options = Options {
        grace_timeout: "10s".into(),
        ..Options::default()
    };
    let mut wharf = Wharf::start_with(
        options,
        json!({ "http": {
            "routers": { "slow": router("Host(`slow.test`)", "slow") },
            "services": { "slow": service(&[&slow.url()]) },
        }}),
    )
    .await;
    let web = wharf.web();
    let admin = wharf.admin();

    let in_flight = tokio::spawn(async move { client::get(web, "slow.test", "/").await });
    eventually(
        "the slow request to reach the backend",
        Duration::from_secs(10),
        || async {
            if slow.hits() >= 1 {
                Ok(())
            } else {
                Err("no request yet")
            }
        },
    )
    .await;

    let signalled = Instant::now();
    wharf.terminate();
    // Every property is checked, then all violations are reported together.
    let mut problems: Vec<String> = Vec::new();

    // While draining, /ping on the admin entrypoint reports the shutdown.
    let ping = poll_until(Duration::from_secs(2), || async {
        match client::get(admin, "localhost", "/ping").await {
            Ok(reply) if reply.status == 503 => Ok(()),
            Ok(reply) => Err(format!("{} {}", reply.status, reply.text())),
            Err(e) => Err(format!("{e:#}")),
        }
    })
    .await;
    if let Err(last) = ping {
        problems.push(format!(
            "/ping did not answer 503 within 2s of SIGTERM; last: {last}"
        ));
    }

    // The web listener is closed: new connections are refused.
    let refused = poll_until(Duration::from_secs(2), || async {
        match TcpStream::connect(web).await {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(()),
            Err(e) => Err(format!("unexpected error {e}")),
            Ok(_) => Err("the connection was accepted".to_owned()),
        }
    })
    .await;
    if let Err(last) = refused {
        problems.push(format!(
            "new connections to the web entrypoint were not refused within 2s of SIGTERM; \
             last: {last}"
        ));
    }
    if signalled.elapsed() >= Duration::from_secs(3) {
        problems.push(format!(
            "the checks above ended {:?} after SIGTERM, after the slow request",
            signalled.elapsed()
        ));
    }

    // The in-flight request still completes normally.
    match in_flight.await.expect("in-flight request task") {
        Ok(reply) if reply.status == 200 && reply.json()["name"] == "slow" => {}
        Ok(reply) => problems.push(format!(
            "the in-flight request got {} {}",
            reply.status,
            reply.text()
        )),
        Err(e) => problems.push(format!("the in-flight request failed: {e:#}")),
    }

    // Then the process exits, cleanly, within the grace period.
    let status = wharf
        .wait_exit(GRACE.saturating_sub(signalled.elapsed()) + Duration::from_millis(500))
        .await;
    let took = signalled.elapsed();
    match status {
        None => problems.push(format!("wharf still running {took:?} after SIGTERM")),
        Some(status) if !status.success() => {
            problems.push(format!("wharf exited with {status} after SIGTERM"))
        }
        Some(_) if took >= GRACE => problems.push(format!(
            "wharf took {took:?} to exit, more than graceTimeOut {GRACE:?}"
        )),
        Some(_) => {}
    }
    assert!(problems.is_empty(), "graceful shutdown: {problems:#?}");
}
