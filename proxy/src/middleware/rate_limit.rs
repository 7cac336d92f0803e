//! `rateLimit`: a token bucket per source (client IP by default) refilled at
//! `average` requests per `period` and holding up to `burst` tokens, with
//! Traefik's semantics: a request that would wait at most a short delay
//! (half the refill interval, 500 ms below one request per second) is delayed,
//! a later one gets 429 with `Retry-After`.
//!
//! Buckets live in a sharded map; a shard's lock is held only to update one
//! bucket. Memory is bounded: a full shard first forgets buckets that have
//! refilled completely (they behave as new ones), then some busy ones.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderValue, Request, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use super::handler::{forward, status_response, Handler, HttpLayer, ResponseFuture};
use super::source::{IpStrategy, Source, SourceCriterionOptions};
use super::{parse, Built, HttpService, MiddlewareError};
use crate::body::Body;
use crate::config::duration::GoDuration;

const KIND: &str = "rateLimit";
const SHARDS: usize = 16;
/// Sources remembered per shard (65,536 in all per middleware).
const SHARD_CAPACITY: usize = 4096;

/// `rateLimit` options.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Options {
    average: i64,
    period: GoDuration,
    burst: i64,
    #[serde(rename = "sourceCriterion")]
    source_criterion: Option<SourceCriterionOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            average: 0,
            period: GoDuration(Duration::from_secs(1)),
            burst: 1,
            source_criterion: None,
        }
    }
}

/// Builds a `rateLimit` middleware.
pub fn build(opts: &Value) -> Result<Built, MiddlewareError> {
    let o: Options = parse(KIND, opts)?;
    if o.average < 0 {
        return Err(MiddlewareError::invalid(
            KIND,
            "average",
            "must not be negative",
        ));
    }
    if o.burst < 0 {
        return Err(MiddlewareError::invalid(
            KIND,
            "burst",
            "must not be negative",
        ));
    }
    let source = Source::new(
        KIND,
        o.source_criterion.as_ref(),
        Source::Ip(IpStrategy::default()),
    )?;
    let period = if o.period.0.is_zero() {
        Duration::from_secs(1)
    } else {
        o.period.0
    };
    let limiter = Limiter::new(
        o.average as f64 / period.as_secs_f64(),
        o.burst.max(1) as f64,
    );
    Ok(Built::Http(HttpLayer::new(RateLimit {
        source,
        limiter: Arc::new(limiter),
    })))
}

struct RateLimit {
    source: Source,
    /// Shared with in-flight requests that wait before going through.
    limiter: Arc<Limiter>,
}

impl Handler for RateLimit {
    fn handle(&self, req: Request<Body>, next: &mut HttpService) -> ResponseFuture {
        let key = self.source.key(&req).unwrap_or_default();
        match self.limiter.reserve(&key, Instant::now()) {
            Decision::Go => forward(req, next),
            Decision::Wait(delay) => {
                let mut next = next.clone();
                Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    forward(req, &mut next).await
                })
            }
            Decision::Reject(delay) => {
                let mut resp = status_response(StatusCode::TOO_MANY_REQUESTS);
                let secs = delay.as_secs_f64().ceil() as u64;
                resp.headers_mut()
                    .insert("retry-after", HeaderValue::from(secs));
                if let Ok(v) = HeaderValue::from_str(&format!("{delay:?}")) {
                    resp.headers_mut().insert("x-retry-in", v);
                }
                Box::pin(async move { resp })
            }
        }
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Decision {
    /// Go on now.
    Go,
    /// Go on after this delay (a token is reserved).
    Wait(Duration),
    /// Refuse; a token would be there after this delay.
    Reject(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by source.
struct Limiter {
    /// Tokens per second; infinite when `average` is 0 (no limit).
    rate: f64,
    burst: f64,
    max_delay: Duration,
    shards: Vec<Mutex<HashMap<String, Bucket>>>,
}

impl Limiter {
    fn new(rate: f64, burst: f64) -> Self {
        let max_delay = if rate <= 0.0 {
            Duration::ZERO
        } else if rate < 1.0 {
            Duration::from_millis(500)
        } else {
            Duration::from_secs_f64(1.0 / (2.0 * rate.floor()))
        };
        Self {
            rate,
            burst,
            max_delay,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn reserve(&self, key: &str, now: Instant) -> Decision {
        if self.rate <= 0.0 {
            return Decision::Go;
        }
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let shard = &self.shards[(h.finish() as usize) % SHARDS];
        let mut buckets = match shard.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !buckets.contains_key(key) && buckets.len() >= SHARD_CAPACITY {
            self.evict(&mut buckets, now);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let available = self.refilled(bucket, now) - 1.0;
        if available >= 0.0 {
            *bucket = Bucket {
                tokens: available,
                at: now,
            };
            return Decision::Go;
        }
        let delay = Duration::from_secs_f64(-available / self.rate);
        if delay > self.max_delay {
            return Decision::Reject(delay);
        }
        *bucket = Bucket {
            tokens: available,
            at: now,
        };
        Decision::Wait(delay)
    }

    fn refilled(&self, b: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        (b.tokens + elapsed * self.rate).min(self.burst)
    }

    /// Makes room in a full shard: forgets refilled buckets, then, if the shard is
    /// still full, an eighth of it (in the map's arbitrary order), so the cost of
    /// a sweep is spread over the many inserts that follow it.
    fn evict(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        buckets.retain(|_, b| self.refilled(b, now) < self.burst);
        if buckets.len() >= SHARD_CAPACITY {
            let excess = buckets.len() - SHARD_CAPACITY * 7 / 8;
            let victims: Vec<String> = buckets.keys().take(excess).cloned().collect();
            for k in victims {
                buckets.remove(&k);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|b| b.len()).unwrap_or(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::handler::testing::{backend, request, run, text};
    use super::*;

    fn layer(v: Value) -> HttpLayer {
        match build(&v) {
            Ok(Built::Http(l)) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bucket_follows_average_period_and_burst() {
        // 2 per second, burst 3.
        let l = Limiter::new(2.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.reserve("a", t0), Decision::Go);
        }
        // The next token comes in 500 ms; max delay at 2/s is 250 ms.
        assert_eq!(
            l.reserve("a", t0),
            Decision::Reject(Duration::from_millis(500))
        );
        assert_eq!(l.reserve("b", t0), Decision::Go, "sources are separate");
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!(
            l.reserve("a", t1),
            Decision::Wait(Duration::from_millis(200))
        );
        let t2 = t0 + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(l.reserve("a", t2), Decision::Go);
        }
        assert!(matches!(l.reserve("a", t2), Decision::Reject(_)));
        let off = Limiter::new(0.0, 1.0);
        for _ in 0..100 {
            assert_eq!(off.reserve("a", t0), Decision::Go);
        }
    }

    #[test]
    fn memory_is_bounded() {
        let l = Limiter::new(1.0, 5.0);
        let t0 = Instant::now();
        for i in 0..(SHARDS * SHARD_CAPACITY + 5000) {
            l.reserve(&i.to_string(), t0);
        }
        assert!(l.len() <= SHARDS * SHARD_CAPACITY, "{}", l.len());
        // Later, refilled buckets make room without losing busy ones.
        let t1 = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            l.reserve("busy", t1);
        }
        for i in 0..(SHARDS * SHARD_CAPACITY / 2) {
            l.reserve(&format!("new{i}"), t1);
        }
        assert!(matches!(l.reserve("busy", t1), Decision::Reject(_)));
        assert!(l.len() <= SHARDS * SHARD_CAPACITY, "{}", l.len());
    }

    #[tokio::test]
    async fn answers_429_with_retry_after_per_source() {
        let l = layer(json!({"average": "1", "period": "1m", "burst": "2"}));
        let call = |peer: &'static str| {
            let l = l.clone();
            async move {
                let (inner, _) = backend(&[]);
                run(&l, inner, request("GET", "/", peer)).await
            }
        };
        assert_eq!(call("192.0.2.1").await.status(), 200);
        assert_eq!(call("192.0.2.1").await.status(), 200);
        let resp = call("192.0.2.1").await;
        assert_eq!(resp.status(), 429);
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((59..=60).contains(&retry), "{retry}");
        assert_eq!(text(resp).await, "Too Many Requests");
        assert_eq!(call("192.0.2.2").await.status(), 200);
    }

    #[tokio::test]
    async fn short_waits_are_delayed_not_refused() {
        tokio::time::pause();
        let l = layer(
            json!({"average": 10, "burst": 1, "sourceCriterion": {"requestHeaderName": "X-Key"}}),
        );
        let (inner, seen) = backend(&[]);
        assert_eq!(
            run(&l, inner.clone(), request("GET", "/", "192.0.2.1"))
                .await
                .status(),
            200
        );
        let start = Instant::now();
        // 100 ms until the next token; the max delay at 10/s is 50 ms.
        assert_eq!(
            run(&l, inner.clone(), request("GET", "/", "192.0.2.1"))
                .await
                .status(),
            429
        );
        tokio::time::advance(Duration::from_millis(60)).await;
        assert_eq!(
            run(&l, inner, request("GET", "/", "192.0.2.1"))
                .await
                .status(),
            200
        );
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn bad_options_are_named() {
        let e = build(&json!({"average": -1})).unwrap_err();
        assert_eq!(e.to_string(), "rateLimit.average: must not be negative");
        let e = build(&json!({"average": 1, "period": "soon"})).unwrap_err();
        assert!(e.to_string().contains("`period`"), "{e}");
        let e = build(
            &json!({"average": 1, "sourceCriterion": {"requestHost": true, "ipStrategy": {}}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("mutually exclusive"), "{e}");
    }
}
