//! A weighted service: spreads requests over other services by weight.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::Service;

use crate::body::Body;
use crate::middleware::HttpService;

/// Weighted round robin over member services, lock-free.
#[derive(Clone)]
pub struct WeightedService {
    members: Arc<Vec<HttpService>>,
    /// Member index per slot of the weighted schedule.
    schedule: Arc<Vec<u32>>,
    counter: Arc<AtomicU64>,
}

impl WeightedService {
    /// Builds the schedule from `(service, weight)` pairs; zero weights never receive traffic.
    pub fn new(members: Vec<(HttpService, u32)>) -> Self {
        let schedule = smooth_schedule(&members.iter().map(|(_, w)| *w).collect::<Vec<_>>());
        Self {
            members: Arc::new(members.into_iter().map(|(s, _)| s).collect()),
            schedule: Arc::new(schedule),
            counter: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// The order nginx's smooth weighted round robin visits members in, over one cycle.
fn smooth_schedule(weights: &[u32]) -> Vec<u32> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(total.max(0) as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            current[i] += i64::from(*w);
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        out.push(best as u32);
    }
    out
}

impl Service<Request<Body>> for WeightedService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = <HttpService as Service<Request<Body>>>::Future;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if self.schedule.is_empty() {
            return Box::pin(async { Ok(crate::error::ProxyError::NoServer.into_response()) });
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed) as usize % self.schedule.len();
        let idx = self.schedule[n] as usize;
        let mut svc = self.members[idx].clone();
        svc.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_follows_weights_and_interleaves() {
        let s = smooth_schedule(&[3, 1]);
        assert_eq!(s.len(), 4);
        assert_eq!(s.iter().filter(|&&i| i == 0).count(), 3);
        assert_eq!(smooth_schedule(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert!(smooth_schedule(&[0, 2]).iter().all(|&i| i == 1));
        assert!(smooth_schedule(&[0]).is_empty());
    }
}
