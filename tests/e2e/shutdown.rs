//! Graceful shutdown on SIGTERM.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::TcpStream;

use crate::backends::Backend;
use crate::client;
use crate::harness::{eventually, router, service, Options, Wharf};

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

    // While draining, /ping on the admin entrypoint reports the shutdown.
    eventually("/ping to answer 503", Duration::from_secs(2), || async {
        match client::get(admin, "localhost", "/ping").await {
            Ok(reply) if reply.status == 503 => Ok(()),
            Ok(reply) => Err(format!("{} {}", reply.status, reply.text())),
            Err(e) => Err(format!("{e:#}")),
        }
    })
    .await;

    // The web listener is closed: new connections are refused.
    eventually(
        "new connections to the web entrypoint to be refused",
        Duration::from_secs(2),
        || async {
            match TcpStream::connect(web).await {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(()),
                Err(e) => Err(format!("unexpected error {e}")),
                Ok(_) => Err("connection accepted".to_owned()),
            }
        },
    )
    .await;
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "the checks above must run while the slow request is still in flight"
    );

    // The in-flight request still completes normally.
    let reply = in_flight
        .await
        .expect("in-flight request task")
        .expect("the in-flight request completes during the grace period");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["name"], "slow");

    // Then the process exits, cleanly, within the grace period.
    let status = wharf
        .wait_exit(GRACE.saturating_sub(signalled.elapsed()) + Duration::from_millis(500))
        .await;
    let took = signalled.elapsed();
    let status = status.unwrap_or_else(|| panic!("wharf still running {took:?} after SIGTERM"));
    assert!(status.success(), "wharf exited with {status} after SIGTERM");
    assert!(
        took < GRACE,
        "wharf took {took:?} to exit, more than graceTimeOut {GRACE:?}"
    );
}
