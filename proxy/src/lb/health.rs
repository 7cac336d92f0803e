//! Active health checks of one service, run as one task per server.
//!
//! Each server is checked every `interval` while up and every `unhealthyInterval`
//! while down, as in Traefik. The time of the last check is kept in the server's
//! [`ServerHealth`], so a check task restarted by a route-table rebuild carries on
//! with the same rhythm instead of restarting the clock (frequent reloads would
//! otherwise postpone checks indefinitely). A server never checked before is checked
//! right away; Traefik waits one interval first.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Uri;
use tokio::task::JoinSet;

use super::check::{CheckFailure, Checker};
use super::probe::{Probe, Target};
use super::{LbError, ServerHealth};
use crate::config::dynamic::HealthCheck;

/// Keeps the health checks of one service running; dropping it stops them.
pub struct HealthCheckHandle {
    tasks: JoinSet<()>,
}

impl fmt::Debug for HealthCheckHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthCheckHandle")
            .field("servers", &self.tasks.len())
            .finish()
    }
}

/// Starts Traefik-style active health checks of `service`'s servers, each given as
/// its URL and the health state the checks update. Fails, starting nothing, if the
/// configuration cannot be run (see [`super::validate`]) or a server cannot be
/// checked (an `https` server without a `scheme` override). Must be called within a
/// Tokio runtime; the checks run until the returned handle is dropped.
pub fn spawn_health_check(
    service: String,
    cfg: HealthCheck,
    upstreams: Vec<(Uri, Arc<ServerHealth>)>,
) -> Result<HealthCheckHandle, LbError> {
    let probe = Probe::new(&cfg)?;
    let targets = upstreams
        .into_iter()
        .map(|(url, health)| Ok((probe.target(&url)?, health)))
        .collect::<Result<Vec<_>, LbError>>()?;
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| LbError::NoRuntime)?;
    let checker = Arc::new(Checker::new(probe));
    let service: Arc<str> = service.into();
    let mut tasks = JoinSet::new();
    for (target, health) in targets {
        let run = run(Arc::clone(&service), Arc::clone(&checker), target, health);
        tasks.spawn_on(run, &runtime);
    }
    Ok(HealthCheckHandle { tasks })
}

async fn run(service: Arc<str>, checker: Arc<Checker>, target: Target, health: Arc<ServerHealth>) {
    let probe = &checker.probe;
    loop {
        let every = if health.is_healthy() {
            probe.interval
        } else {
            probe.unhealthy_interval
        };
        tokio::time::sleep(next_delay(health.last_checked(), every, Instant::now())).await;
        health.mark_checked(Instant::now());
        let result = checker.check(&target).await;
        record(&service, &target, &health, result);
    }
}

/// How long to wait before the next check, given when the last one started.
fn next_delay(last_check: Option<Instant>, every: Duration, now: Instant) -> Duration {
    last_check.map_or(Duration::ZERO, |last| {
        (last + every).saturating_duration_since(now)
    })
}

/// Applies a check's result and logs status changes.
fn record(service: &str, target: &Target, health: &ServerHealth, result: Result<(), CheckFailure>) {
    let was_up = health.set_healthy(result.is_ok());
    match (was_up, result) {
        (true, Err(reason)) => tracing::warn!(
            service,
            url = %target.server,
            %reason,
            "health check failed, server marked DOWN"
        ),
        (false, Ok(())) => tracing::warn!(
            service,
            url = %target.server,
            reason = "health check passed",
            "server marked UP"
        ),
        (false, Err(reason)) => tracing::debug!(
            service,
            url = %target.server,
            %reason,
            "health check still failing"
        ),
        (true, Ok(())) => {}
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;
    use crate::config::GoDuration;
    use crate::lb::test_server::{closed_port, eventually, TestServer};

    const PATIENCE: Duration = Duration::from_secs(5);

    fn config(interval_ms: u64, unhealthy_ms: u64) -> HealthCheck {
        HealthCheck {
            path: "/health".into(),
            interval: GoDuration(Duration::from_millis(interval_ms)),
            unhealthy_interval: Some(GoDuration(Duration::from_millis(unhealthy_ms))),
            timeout: GoDuration(Duration::from_secs(1)),
            ..HealthCheck::default()
        }
    }

    fn spawn(cfg: HealthCheck, servers: &[(&http::Uri, &Arc<ServerHealth>)]) -> HealthCheckHandle {
        let upstreams = servers
            .iter()
            .map(|(url, health)| ((*url).clone(), Arc::clone(health)))
            .collect();
        spawn_health_check("web".into(), cfg, upstreams).expect("valid health check")
    }

    #[test]
    fn next_check_is_due_one_interval_after_the_last() {
        let now = Instant::now();
        let every = Duration::from_secs(10);
        assert_eq!(next_delay(None, every, now), Duration::ZERO);
        assert_eq!(next_delay(Some(now), every, now), every);
        let three_ago = now - Duration::from_secs(3);
        assert_eq!(
            next_delay(Some(three_ago), every, now),
            Duration::from_secs(7)
        );
        let long_ago = now - Duration::from_secs(60);
        assert_eq!(next_delay(Some(long_ago), every, now), Duration::ZERO);
    }

    #[tokio::test]
    async fn unrunnable_checks_are_refused() {
        let health = Arc::new(ServerHealth::new());
        let grpc = HealthCheck {
            mode: Some("grpc".into()),
            ..HealthCheck::default()
        };
        let url: http::Uri = "http://10.0.0.1".parse().expect("URI");
        let err = spawn_health_check("web".into(), grpc, vec![(url, Arc::clone(&health))]);
        assert_eq!(err.err(), Some(LbError::UnsupportedMode("grpc".into())));
        let https: http::Uri = "https://10.0.0.1".parse().expect("URI");
        let err = spawn_health_check("web".into(), HealthCheck::default(), vec![(https, health)]);
        assert_eq!(err.err(), Some(LbError::UnsupportedScheme("https".into())));
    }

    #[test]
    fn spawning_outside_a_runtime_is_an_error() {
        let err = spawn_health_check("web".into(), HealthCheck::default(), Vec::new());
        assert_eq!(err.err(), Some(LbError::NoRuntime));
    }

    #[tokio::test]
    async fn failing_servers_go_down_and_come_back() {
        let ok = TestServer::start(200).await;
        let failing = TestServer::start(500).await;
        let closed = closed_port().await;
        let closed_url: http::Uri = format!("http://{closed}").parse().expect("URI");
        let [h_ok, h_failing, h_closed] = [(); 3].map(|_| Arc::new(ServerHealth::new()));
        let _handle = spawn(
            config(100, 100),
            &[
                (&ok.url(), &h_ok),
                (&failing.url(), &h_failing),
                (&closed_url, &h_closed),
            ],
        );

        let down = || !h_failing.is_healthy() && !h_closed.is_healthy();
        assert!(
            eventually(PATIENCE, down).await,
            "500 and closed port go DOWN"
        );
        assert_eq!([h_failing.status(), h_closed.status()], ["DOWN", "DOWN"]);
        assert!(
            eventually(PATIENCE, || ok.hits() >= 3).await,
            "checks repeat"
        );
        assert_eq!(h_ok.status(), "UP");

        failing.set_status(200);
        let listener = TcpListener::bind(closed).await.expect("port still free");
        let _back = TestServer::start_on(listener, 204);
        let up = || h_failing.is_healthy() && h_closed.is_healthy();
        assert!(eventually(PATIENCE, up).await, "both recover");
        assert!(h_ok.is_healthy());
    }

    #[tokio::test]
    async fn down_servers_use_the_unhealthy_interval() {
        let server = TestServer::start(500).await;
        let health = Arc::new(ServerHealth::new());
        // Healthy servers every 10 s, down ones every 50 ms.
        let _handle = spawn(config(10_000, 50), &[(&server.url(), &health)]);
        assert!(eventually(PATIENCE, || server.hits() >= 4).await);
        assert!(!health.is_healthy());

        server.set_status(200);
        assert!(eventually(PATIENCE, || health.is_healthy()).await);
        let hits = server.hits();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(server.hits(), hits, "up again: next check in 10 s");
    }

    #[tokio::test]
    async fn a_restarted_check_keeps_the_rhythm() {
        let server = TestServer::start(200).await;
        let health = Arc::new(ServerHealth::new());
        let handle = spawn(config(10_000, 10_000), &[(&server.url(), &health)]);
        assert!(
            eventually(PATIENCE, || server.hits() == 1).await,
            "first check at once"
        );
        drop(handle);
        // As after a reload: same health state, new task. The last check was just
        // now, so the next one is ~10 s away.
        let _handle = spawn(config(10_000, 10_000), &[(&server.url(), &health)]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn dropping_the_handle_stops_the_checks() {
        let server = TestServer::start(200).await;
        let health = Arc::new(ServerHealth::new());
        let handle = spawn(config(50, 50), &[(&server.url(), &health)]);
        assert!(eventually(PATIENCE, || server.hits() >= 2).await);
        drop(handle);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let hits = server.hits();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(server.hits(), hits);
    }
}
