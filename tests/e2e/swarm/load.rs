//! Steady client load through wharf: several loops sending `GET /` one after the other
//! until stopped, some over a new connection per request, some over a keep-alive pool,
//! counting every answer that is not a 200 from a backend.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::client;

/// Failures kept in full per loop (the rest are only counted).
const KEPT_FAILURES: usize = 20;

/// Pause between two requests of a loop: steady load, not a benchmark that would
/// starve the Docker engine of the two CPUs.
const PAUSE: Duration = Duration::from_millis(5);

/// Running client loops; [`Load::stop`] ends them and returns what they saw.
pub struct Load {
    stop: Arc<AtomicBool>,
    started: Instant,
    loops: Vec<JoinHandle<Tally>>,
}

/// What the loops saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests sent.
    pub requests: usize,
    /// Requests that did not get a 200.
    pub failures: usize,
    /// The first failures: time since the load started, and what came back.
    pub failure_samples: Vec<(Duration, String)>,
    /// 200 answers per task name.
    pub by_task: BTreeMap<String, usize>,
    /// The slowest request.
    pub slowest: Duration,
    /// How long the load ran.
    pub elapsed: Duration,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.failure_samples.extend(other.failure_samples);
        for (task, n) in other.by_task {
            *self.by_task.entry(task).or_default() += n;
        }
        self.slowest = self.slowest.max(other.slowest);
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(f64::EPSILON);
        write!(
            f,
            "{} requests in {:.1}s ({:.0}/s), {} failed, slowest {} ms, {} tasks answered",
            self.requests,
            secs,
            self.requests as f64 / secs,
            self.failures,
            self.slowest.as_millis(),
            self.by_task.len()
        )
    }
}

impl Load {
    /// Starts `fresh` loops that open a new connection per request and `pooled` loops
    /// that keep connections alive, all sending `GET /` with `Host: host` to `addr`.
    pub fn start(addr: SocketAddr, host: &str, fresh: usize, pooled: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut loops = Vec::new();
        for i in 0..fresh + pooled {
            let stop = stop.clone();
            let host = host.to_owned();
            let pool = (i >= fresh).then(client::pooled);
            loops.push(tokio::spawn(async move {
                let mut tally = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let result = match &pool {
                        Some(pool) => client::pooled_get(pool, addr, &host, "/").await,
                        None => client::get(addr, &host, "/").await,
                    };
                    tally.requests += 1;
                    tally.slowest = tally.slowest.max(sent.elapsed());
                    let failure = match result {
                        Ok(reply) if reply.status == 200 => {
                            *tally
                                .by_task
                                .entry(reply.text().trim().to_owned())
                                .or_default() += 1;
                            None
                        }
                        Ok(reply) => Some(format!("{} {}", reply.status, reply.text().trim())),
                        Err(e) => Some(format!("{e:#}")),
                    };
                    if let Some(failure) = failure {
                        tally.failures += 1;
                        if tally.failure_samples.len() < KEPT_FAILURES {
                            let kind = if pool.is_some() { "pooled" } else { "fresh" };
                            tally
                                .failure_samples
                                .push((started.elapsed(), format!("{kind}: {failure}")));
                        }
                    }
                    tokio::time::sleep(PAUSE).await;
                }
                tally
            }));
        }
        Load {
            stop,
            started,
            loops,
        }
    }

    /// Stops the loops (each finishes its request in flight) and adds up their tallies.
    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for handle in self.loops {
            total.merge(handle.await.expect("a load loop panicked"));
        }
        total.elapsed = self.started.elapsed();
        total.failure_samples.sort();
        total
    }
}
