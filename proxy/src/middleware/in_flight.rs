//! `inFlightReq`: at most `amount` requests in progress per source (the Host by
//! default); one more gets 429. A request counts until its response body ends.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body::Frame;
use serde::Deserialize;
use serde_json::Value;

use super::handler::{forward, status_response, Handler, HttpLayer, ResponseFuture};
use super::source::{Source, SourceCriterionOptions};
use super::{parse, Built, HttpService, MiddlewareError};
use crate::body::{self, Body, BoxError};

const KIND: &str = "inFlightReq";
const SHARDS: usize = 16;

/// `inFlightReq` options.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Options {
    amount: i64,
    #[serde(rename = "sourceCriterion")]
    source_criterion: Option<SourceCriterionOptions>,
}

/// Builds an `inFlightReq` middleware.
pub fn build(opts: &Value) -> Result<Built, MiddlewareError> {
    let o: Options = parse(KIND, opts)?;
    if o.amount < 1 {
        return Err(MiddlewareError::invalid(
            KIND,
            "amount",
            "must be at least 1",
        ));
    }
    let source = Source::new(KIND, o.source_criterion.as_ref(), Source::Host)?;
    Ok(Built::Http(HttpLayer::new(InFlight {
        source,
        counts: Arc::new(Counts {
            max: o.amount as usize,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }),
    })))
}

struct InFlight {
    source: Source,
    counts: Arc<Counts>,
}

/// Requests in progress by source; a source is forgotten when it has none.
struct Counts {
    max: usize,
    shards: Vec<Mutex<HashMap<String, usize>>>,
}

impl Counts {
    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        match self.shards[(h.finish() as usize) % SHARDS].lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Counts one more request for `key`, unless it is at the limit.
    fn acquire(self: &Arc<Self>, key: String) -> Option<Permit> {
        let mut shard = self.shard(&key);
        let n = shard.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        drop(shard);
        Some(Permit {
            counts: self.clone(),
            key,
        })
    }
}

/// One request in progress; released when dropped.
struct Permit {
    counts: Arc<Counts>,
    key: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut shard = self.counts.shard(&self.key);
        if let Some(n) = shard.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                shard.remove(&self.key);
            }
        }
    }
}

/// A response body that holds a [`Permit`] until it ends or is dropped.
struct PermitBody {
    inner: Body,
    permit: Option<Permit>,
}

impl http_body::Body for PermitBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(poll, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.permit = None;
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Handler for InFlight {
    fn handle(&self, req: Request<Body>, next: &mut HttpService) -> ResponseFuture {
        let key = self.source.key(&req).unwrap_or_default();
        let Some(permit) = self.counts.acquire(key) else {
            let resp = status_response(StatusCode::TOO_MANY_REQUESTS);
            return Box::pin(async move { resp });
        };
        let fut = forward(req, next);
        Box::pin(async move {
            let resp = fut.await;
            resp.map(|inner| {
                body::boxed(PermitBody {
                    inner,
                    permit: Some(permit),
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use http::header;
    use http_body_util::BodyExt;
    use serde_json::json;

    use super::super::handler::testing::{backend, request, run};
    use super::*;

    fn layer(v: Value) -> HttpLayer {
        match build(&v) {
            Ok(Built::Http(l)) => l,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn limits_requests_until_their_bodies_end() {
        let l = layer(json!({"amount": "2"}));
        let (inner, _) = backend(&[]);
        let call = |peer: &'static str| run(&l, inner.clone(), request("GET", "/", peer));
        let first = call("192.0.2.1").await;
        let second = call("192.0.2.2").await;
        assert_eq!(
            call("192.0.2.3").await.status(),
            429,
            "same Host, two bodies open"
        );
        let mut other = request("GET", "/", "192.0.2.1");
        other
            .headers_mut()
            .insert(header::HOST, http::HeaderValue::from_static("other.test"));
        assert_eq!(run(&l, inner.clone(), other).await.status(), 200);
        first.into_body().collect().await.unwrap();
        let fourth = call("192.0.2.3").await;
        assert_eq!(fourth.status(), 200, "a finished body frees its slot");
        assert_eq!(call("192.0.2.3").await.status(), 429);
        drop((second, fourth));
        let a = call("192.0.2.4").await;
        let b = call("192.0.2.4").await;
        assert_eq!(
            (a.status().as_u16(), b.status().as_u16()),
            (200, 200),
            "dropped bodies free their slots"
        );
    }

    #[tokio::test]
    async fn source_criterion_by_ip() {
        let l = layer(json!({"amount": 1, "sourceCriterion": {"ipStrategy": {}}}));
        let (inner, _) = backend(&[]);
        let _a = run(&l, inner.clone(), request("GET", "/", "192.0.2.1")).await;
        assert_eq!(
            run(&l, inner.clone(), request("GET", "/", "192.0.2.1"))
                .await
                .status(),
            429
        );
        assert_eq!(
            run(&l, inner, request("GET", "/", "192.0.2.2"))
                .await
                .status(),
            200
        );
    }

    #[test]
    fn bad_options_are_named() {
        let e = build(&json!({})).unwrap_err();
        assert_eq!(e.to_string(), "inFlightReq.amount: must be at least 1");
        let e =
            build(&json!({"amount": 1, "sourcecriterion": {"requestHeader": "x"}})).unwrap_err();
        assert!(
            e.to_string().contains("did you mean `requestHeaderName`"),
            "{e}"
        );
    }
}
