//! `circuitBreaker`: stops sending requests to a service that looks unhealthy.
//!
//! * Closed: requests pass and their outcome is recorded; every `checkPeriod`
//!   (100 ms) the `expression` is evaluated, and when it holds the circuit opens.
//! * Open: every request gets `responseCode` (503) at once, for `fallbackDuration` (10 s).
//! * Recovering: for `recoveryDuration` (10 s) a share of requests growing linearly
//!   from 0 to all of them is let through, the others get the fallback; the
//!   expression is still checked and reopens the circuit when it holds. Then closed.
//!
//! As in Traefik each router gets its own breaker, and the state starts afresh when
//! the route table is rebuilt. The lock around the state is held only to update
//! counters, never across an await.

mod expr;
mod stats;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::{header, HeaderValue, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use tower::Service as _;

pub use expr::{Expr, ExprError};

use super::handler::{self, Handler, ResponseFuture};
use super::shared::options;
use super::{HttpLayer, HttpService, MiddlewareError, SharedLayer};
use crate::body::{self, Body};
use crate::config::GoDuration;
use stats::Stats;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    expression: String,
    #[serde(default)]
    check_period: Option<GoDuration>,
    #[serde(default)]
    fallback_duration: Option<GoDuration>,
    #[serde(default)]
    recovery_duration: Option<GoDuration>,
    #[serde(default)]
    response_code: Option<u16>,
}

/// The configuration shared by the breakers of every router using the middleware.
#[derive(Debug)]
struct Settings {
    expression: String,
    condition: Expr,
    check_period: Duration,
    fallback: Duration,
    recovery: Duration,
    response_code: StatusCode,
}

/// Builds the `circuitBreaker` middleware from its options.
pub fn layer(opts: &Value) -> Result<SharedLayer, MiddlewareError> {
    let o: Options = options("circuitBreaker", opts)?;
    if o.expression.trim().is_empty() {
        return Err(MiddlewareError::Message(
            "circuitBreaker.expression is empty".into(),
        ));
    }
    let condition = Expr::parse(&o.expression)
        .map_err(|e| MiddlewareError::Message(format!("circuitBreaker.expression: {e}")))?;
    let code = o.response_code.unwrap_or(503);
    let response_code = StatusCode::from_u16(code).map_err(|_| {
        MiddlewareError::Message(format!(
            "circuitBreaker.responseCode: invalid status {code}"
        ))
    })?;
    let dur = |d: Option<GoDuration>, default: u64| {
        d.map(|d| d.0)
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_millis(default))
    };
    let settings = Arc::new(Settings {
        expression: o.expression,
        condition,
        check_period: dur(o.check_period, 100),
        fallback: dur(o.fallback_duration, 10_000),
        recovery: dur(o.recovery_duration, 10_000),
        response_code,
    });
    // Each router gets a breaker of its own.
    Ok(SharedLayer::new("circuitBreaker", move |inner| {
        HttpLayer::new(CircuitBreaker {
            breaker: Arc::new(Breaker::new(settings.clone(), Instant::now())),
        })
        .wrap(inner)
    }))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    Recovering {
        since: Instant,
        until: Instant,
        allowed: u64,
        denied: u64,
    },
}

#[derive(Debug)]
struct Inner {
    state: State,
    stats: Stats,
    next_check: Instant,
}

/// One router's breaker.
#[derive(Debug)]
struct Breaker {
    settings: Arc<Settings>,
    inner: Mutex<Inner>,
}

impl Breaker {
    fn new(settings: Arc<Settings>, now: Instant) -> Self {
        Self {
            settings,
            inner: Mutex::new(Inner {
                state: State::Closed,
                stats: Stats::new(now),
                next_check: now,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a request arriving at `now` gets the fallback response.
    fn reject(&self, now: Instant) -> bool {
        let mut s = self.lock();
        if let State::Open { until } = s.state {
            if now < until {
                return true;
            }
            tracing::info!(expression = %self.settings.expression, "circuit breaker recovering");
            s.state = State::Recovering {
                since: now,
                until: now + self.settings.recovery,
                allowed: 0,
                denied: 0,
            };
        }
        match &mut s.state {
            State::Closed | State::Open { .. } => false,
            State::Recovering { until, .. } if now >= *until => {
                tracing::info!(expression = %self.settings.expression, "circuit breaker closed");
                s.state = State::Closed;
                false
            }
            State::Recovering {
                since,
                allowed,
                denied,
                ..
            } => {
                let target = now.saturating_duration_since(*since).as_secs_f64()
                    / self.settings.recovery.as_secs_f64();
                let share = (*allowed + 1) as f64 / (*allowed + *denied + 1) as f64;
                if share <= target {
                    *allowed += 1;
                    false
                } else {
                    *denied += 1;
                    true
                }
            }
        }
    }

    /// Records a response and, when a check is due, opens the circuit if the
    /// condition holds.
    fn record(&self, now: Instant, status: StatusCode, latency: Duration) {
        let mut s = self.lock();
        if matches!(s.state, State::Open { .. }) {
            return;
        }
        s.stats.record(now, status.as_u16(), latency);
        if now < s.next_check {
            return;
        }
        s.next_check = now + self.settings.check_period;
        if self.settings.condition.eval(&s.stats.at(now)) {
            tracing::warn!(
                expression = %self.settings.expression,
                fallback = ?self.settings.fallback,
                "circuit breaker open"
            );
            s.state = State::Open {
                until: now + self.settings.fallback,
            };
            s.stats.reset(now);
        }
    }

    fn fallback(&self) -> Response<Body> {
        let code = self.settings.response_code;
        let mut resp = Response::new(body::full(code.canonical_reason().unwrap_or("")));
        *resp.status_mut() = code;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        resp
    }
}

/// The circuitBreaker middleware's logic.
struct CircuitBreaker {
    breaker: Arc<Breaker>,
}

impl Handler for CircuitBreaker {
    fn handle(&self, req: Request<Body>, next: &mut HttpService) -> ResponseFuture {
        let breaker = self.breaker.clone();
        let mut inner = next.clone();
        handler::infallible(async move {
            let start = Instant::now();
            if breaker.reject(start) {
                return Ok(breaker.fallback());
            }
            let resp = inner.call(req).await?;
            let end = Instant::now();
            breaker.record(end, resp.status(), end.saturating_duration_since(start));
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicU16, Ordering};
    use tower::ServiceExt;

    fn upstream(status: Arc<AtomicU16>) -> HttpService {
        HttpService::new(tower::service_fn(move |_req: Request<Body>| {
            let code = status.load(Ordering::SeqCst);
            async move {
                let mut resp = Response::new(body::full("upstream"));
                *resp.status_mut() = StatusCode::from_u16(code).unwrap();
                Ok::<_, Infallible>(resp)
            }
        }))
    }

    async fn status(svc: &HttpService) -> u16 {
        let resp = svc
            .clone()
            .oneshot(Request::new(body::empty()))
            .await
            .unwrap();
        resp.status().as_u16()
    }

    async fn advance(ms: u64) {
        tokio::time::advance(Duration::from_millis(ms)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn opens_falls_back_recovers_and_closes() {
        let code = Arc::new(AtomicU16::new(200));
        let l = layer(&json!({"expression": "NetworkErrorRatio() > 0.5"})).unwrap();
        let svc = l.wrap(upstream(code.clone()));
        for _ in 0..5 {
            assert_eq!(status(&svc).await, 200);
        }
        advance(200).await;
        code.store(502, Ordering::SeqCst);
        // The errors are served until a check finds the ratio above 0.5.
        let mut served = 0;
        while status(&svc).await == 502 {
            served += 1;
            assert!(served < 50, "never opened");
            advance(20).await;
        }
        assert!(served >= 5, "opened after {served} errors");
        let resp = svc
            .clone()
            .oneshot(Request::new(body::empty()))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let text = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&text[..], b"Service Unavailable");
        code.store(200, Ordering::SeqCst);
        advance(9_000).await;
        assert_eq!(
            status(&svc).await,
            503,
            "still open during fallbackDuration"
        );
        advance(1_500).await;
        // Recovering: at first almost nothing passes, half way about half does.
        assert_eq!(status(&svc).await, 503);
        advance(5_000).await;
        let mut passed = 0;
        for _ in 0..10 {
            if status(&svc).await == 200 {
                passed += 1;
            }
        }
        assert!((3..=7).contains(&passed), "{passed} of 10 passed half way");
        advance(5_100).await;
        for _ in 0..10 {
            assert_eq!(status(&svc).await, 200);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failures_while_recovering_reopen_and_each_router_has_its_own_breaker() {
        let code = Arc::new(AtomicU16::new(500));
        let l = layer(&json!({
            "expression": "ResponseCodeRatio(500, 600, 0, 600) > 0.25",
            "checkPeriod": "1s", "fallbackDuration": "2s", "recoveryDuration": "4s",
            "responseCode": "418",
        }))
        .unwrap();
        let a = l.wrap(upstream(code.clone()));
        let b = l.wrap(upstream(code.clone()));
        assert_eq!(status(&a).await, 500);
        assert_eq!(status(&a).await, 418);
        assert_eq!(status(&b).await, 500, "router b's breaker is still closed");
        advance(3_000).await;
        // Recovering: once a request passes and fails, the circuit opens again.
        let mut seen = Vec::new();
        for _ in 0..40 {
            seen.push(status(&a).await);
            advance(100).await;
        }
        let first_pass = seen.iter().position(|s| *s == 500).expect("one passed");
        assert!(
            seen[first_pass + 1..].iter().take(5).all(|s| *s == 418),
            "{seen:?}"
        );
    }

    #[test]
    fn bad_options_are_reported() {
        for bad in [
            json!({"expression": ""}),
            json!({"expression": "Nope() > 1"}),
            json!({"expression": "NetworkErrorRatio() > 1", "responseCode": 1000}),
        ] {
            assert!(
                matches!(layer(&bad), Err(MiddlewareError::Message(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            layer(&json!({"expression": "NetworkErrorRatio() > 1", "checkPeriod": "soon"})),
            Err(MiddlewareError::Options { .. })
        ));
        let e = layer(&json!({"expression": "NetworkErrorRatio() >"})).unwrap_err();
        assert!(e.to_string().contains("circuitBreaker.expression"), "{e}");
    }
}
