//! `retry`: reissues a request when the connection to the server fails before
//! anything was sent, up to `attempts` times with exponential backoff starting at
//! `initialInterval`. As in Traefik, a server that answered (whatever the status)
//! is never asked again.
//!
//! The middleware only marks the request with a [`RetryPolicy`]; the load
//! balancer's forwarder (`crate::forward`) does the retrying, because it alone
//! knows whether the request body is still unread and can be sent again.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tower::util::MapRequestLayer;
use tower::Layer;

use super::shared::options;
use super::{HttpService, MiddlewareError, SharedLayer};
use crate::config::GoDuration;

/// Randomization of each backoff interval, as in Traefik's backoff library: the
/// wait is drawn from ±50 % around the nominal interval.
const RANDOMIZATION: f64 = 0.5;

/// Longest wait between two attempts.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// How the forwarder retries a request whose connection to a server failed. Set
/// as a request extension by the `retry` middleware; when several are stacked, the
/// innermost one applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total number of attempts, the first included (at least 1).
    pub attempts: u32,
    /// The nominal wait before the first retry; zero retries at once.
    pub initial_interval: Duration,
}

impl RetryPolicy {
    /// The nominal wait before retry number `retry` (1 for the second attempt):
    /// Traefik's progression, whose multiplier makes the wait double over all the
    /// attempts (`2^(1/(attempts-1))` per retry).
    pub fn nominal_backoff(&self, retry: u32) -> Duration {
        if self.attempts < 2 || self.initial_interval.is_zero() || retry == 0 {
            return Duration::ZERO;
        }
        let multiplier = 2f64.powf(1.0 / f64::from(self.attempts - 1));
        let secs = self.initial_interval.as_secs_f64() * multiplier.powi(retry as i32 - 1);
        Duration::try_from_secs_f64(secs)
            .unwrap_or(MAX_INTERVAL)
            .min(MAX_INTERVAL)
    }

    /// The randomized wait before retry number `retry`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let nominal = self.nominal_backoff(retry);
        if nominal.is_zero() {
            return nominal;
        }
        let factor = 1.0 + RANDOMIZATION * (2.0 * rand::random::<f64>() - 1.0);
        nominal.mul_f64(factor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    attempts: i64,
    #[serde(default)]
    initial_interval: Option<GoDuration>,
}

/// Builds the `retry` middleware from its options.
pub fn layer(opts: &Value) -> Result<SharedLayer, MiddlewareError> {
    let o: Options = options("retry", opts)?;
    let attempts = u32::try_from(o.attempts)
        .ok()
        .filter(|a| *a >= 1)
        .ok_or_else(|| {
            MiddlewareError::Message(format!(
                "retry.attempts must be at least 1, got {}",
                o.attempts
            ))
        })?;
    let policy = RetryPolicy {
        attempts,
        initial_interval: o.initial_interval.map(|d| d.0).unwrap_or_default(),
    };
    Ok(SharedLayer::new("retry", move |inner: HttpService| {
        HttpService::new(
            MapRequestLayer::new(move |mut req: http::Request<crate::body::Body>| {
                req.extensions_mut().insert(policy);
                req
            })
            .layer(inner),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tower::ServiceExt;

    #[test]
    fn options_parse_from_labels_and_files() {
        assert!(layer(&json!({"attempts": "3", "initialInterval": "100ms"})).is_ok());
        assert!(layer(&json!({"Attempts": 4})).is_ok());
        assert!(matches!(
            layer(&json!({"attempts": 0})),
            Err(MiddlewareError::Message(_))
        ));
        assert!(matches!(
            layer(&json!({"attempts": 2, "interval": "1s"})),
            Err(MiddlewareError::Options { .. })
        ));
    }

    #[test]
    fn backoff_doubles_over_the_attempts() {
        let p = RetryPolicy {
            attempts: 5,
            initial_interval: Duration::from_millis(100),
        };
        assert_eq!(p.nominal_backoff(1), Duration::from_millis(100));
        let last = p.nominal_backoff(5).as_secs_f64();
        assert!((last - 0.2).abs() < 1e-6, "{last}");
        for retry in 1..5 {
            let d = p.backoff(retry).as_secs_f64();
            let n = p.nominal_backoff(retry).as_secs_f64();
            assert!(d >= n * 0.5 - 1e-9 && d <= n * 1.5 + 1e-9, "{d} vs {n}");
        }
        let none = RetryPolicy {
            attempts: 3,
            initial_interval: Duration::ZERO,
        };
        assert_eq!(none.backoff(1), Duration::ZERO);
    }

    #[tokio::test]
    async fn the_request_carries_the_policy() {
        let inner = HttpService::new(tower::service_fn(
            |req: http::Request<crate::body::Body>| async move {
                let attempts = req
                    .extensions()
                    .get::<RetryPolicy>()
                    .map(|p| p.attempts)
                    .unwrap_or(0);
                Ok::<_, std::convert::Infallible>(http::Response::new(crate::body::full(
                    attempts.to_string(),
                )))
            },
        ));
        let svc = layer(&json!({"attempts": 7})).unwrap().wrap(inner);
        let resp = svc
            .oneshot(http::Request::new(crate::body::empty()))
            .await
            .unwrap();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"7");
    }
}
