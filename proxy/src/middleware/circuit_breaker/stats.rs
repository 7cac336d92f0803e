//! The circuit breaker's statistics over a sliding window, with the windows
//! Traefik uses: request and status counts over the last 10 seconds (ten 1-second
//! buckets), latencies over the last minute (six 10-second histograms, 1 µs to
//! 1 h at 2 significant figures).

use std::collections::HashMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::expr::{Metric, Metrics};

/// Counter buckets and their width.
const COUNT_BUCKETS: u64 = 10;
const COUNT_WIDTH: Duration = Duration::from_secs(1);
/// Latency histograms and their width.
const HIST_BUCKETS: u64 = 6;
const HIST_WIDTH: Duration = Duration::from_secs(10);
/// Largest latency recorded, in microseconds (one hour).
const HIST_MAX_US: u64 = 3_600_000_000;

#[derive(Debug, Default, Clone)]
struct Counts {
    epoch: u64,
    total: u64,
    net_errors: u64,
    codes: HashMap<u16, u64>,
}

/// Request statistics of one circuit breaker.
#[derive(Debug)]
pub struct Stats {
    start: Instant,
    counts: Vec<Counts>,
    hists: Vec<(u64, Option<Histogram<u32>>)>,
}

impl Stats {
    /// Empty statistics whose windows start at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            start: now,
            counts: vec![Counts::default(); COUNT_BUCKETS as usize],
            hists: (0..HIST_BUCKETS).map(|_| (0, new_histogram())).collect(),
        }
    }

    /// Forgets everything (when the circuit opens).
    pub fn reset(&mut self, now: Instant) {
        *self = Self::new(now);
    }

    /// Records one response.
    pub fn record(&mut self, now: Instant, status: u16, latency: Duration) {
        let (count_epoch, hist_epoch) = self.epochs(now);
        let c = &mut self.counts[(count_epoch % COUNT_BUCKETS) as usize];
        if c.epoch != count_epoch || c.total == 0 {
            *c = Counts {
                epoch: count_epoch,
                ..Counts::default()
            };
        }
        c.total += 1;
        if status == 502 || status == 504 {
            c.net_errors += 1;
        }
        *c.codes.entry(status).or_default() += 1;
        let h = &mut self.hists[(hist_epoch % HIST_BUCKETS) as usize];
        if h.0 != hist_epoch {
            h.0 = hist_epoch;
            if let Some(hist) = &mut h.1 {
                hist.reset();
            }
        }
        if let Some(hist) = &mut h.1 {
            let us = u64::try_from(latency.as_micros()).unwrap_or(HIST_MAX_US);
            hist.saturating_record(us.clamp(1, HIST_MAX_US));
        }
    }

    /// The metrics as of `now`.
    pub fn at(&self, now: Instant) -> View<'_> {
        View { stats: self, now }
    }

    fn epochs(&self, now: Instant) -> (u64, u64) {
        let elapsed = now.saturating_duration_since(self.start);
        (
            (elapsed.as_nanos() / COUNT_WIDTH.as_nanos()) as u64,
            (elapsed.as_nanos() / HIST_WIDTH.as_nanos()) as u64,
        )
    }

    fn live_counts(&self, now: Instant) -> impl Iterator<Item = &Counts> {
        let (epoch, _) = self.epochs(now);
        self.counts
            .iter()
            .filter(move |c| c.total > 0 && epoch.saturating_sub(c.epoch) < COUNT_BUCKETS)
    }

    fn latency_ms(&self, now: Instant, quantile: f64) -> f64 {
        let (_, epoch) = self.epochs(now);
        let mut merged: Option<Histogram<u32>> = None;
        for (e, h) in &self.hists {
            let Some(h) = h else { continue };
            if h.is_empty() || epoch.saturating_sub(*e) >= HIST_BUCKETS {
                continue;
            }
            match &mut merged {
                None => merged = Some(h.clone()),
                Some(m) => {
                    if m.add(h).is_err() {
                        return 0.0;
                    }
                }
            }
        }
        merged
            .map(|m| m.value_at_quantile(quantile / 100.0) as f64 / 1000.0)
            .unwrap_or(0.0)
    }
}

fn new_histogram() -> Option<Histogram<u32>> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 2).ok()
}

/// The statistics read at one instant.
pub struct View<'a> {
    stats: &'a Stats,
    now: Instant,
}

impl Metrics for View<'_> {
    fn value(&self, m: &Metric) -> f64 {
        let counts = || self.stats.live_counts(self.now);
        match m {
            Metric::NetworkErrorRatio => {
                let total: u64 = counts().map(|c| c.total).sum();
                let errors: u64 = counts().map(|c| c.net_errors).sum();
                if total == 0 {
                    0.0
                } else {
                    errors as f64 / total as f64
                }
            }
            Metric::ResponseCodeRatio(from, to, by_from, by_to) => {
                let mut a = 0u64;
                let mut b = 0u64;
                for (code, n) in counts().flat_map(|c| c.codes.iter()) {
                    if (*from..*to).contains(code) {
                        a += n;
                    }
                    if (*by_from..*by_to).contains(code) {
                        b += n;
                    }
                }
                if b == 0 {
                    0.0
                } else {
                    a as f64 / b as f64
                }
            }
            Metric::LatencyAtQuantileMs(q) => self.stats.latency_ms(self.now, *q),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ratios_cover_the_last_ten_seconds() {
        let t0 = Instant::now();
        let mut s = Stats::new(t0);
        for _ in 0..3 {
            s.record(t0, 200, MS);
        }
        s.record(t0, 502, MS);
        s.record(t0 + Duration::from_millis(1500), 500, MS);
        let now = t0 + Duration::from_secs(2);
        let v = s.at(now);
        assert!((v.value(&Metric::NetworkErrorRatio) - 0.2).abs() < 1e-9);
        let r = v.value(&Metric::ResponseCodeRatio(500, 600, 0, 600));
        assert!((r - 0.4).abs() < 1e-9, "{r}");
        assert_eq!(v.value(&Metric::ResponseCodeRatio(500, 600, 600, 700)), 0.0);
        // Ten seconds later the first second has left the window.
        let later = t0 + Duration::from_millis(10_500);
        let v = s.at(later);
        assert_eq!(v.value(&Metric::NetworkErrorRatio), 0.0);
        assert_eq!(v.value(&Metric::ResponseCodeRatio(500, 600, 0, 600)), 1.0);
        let gone = t0 + Duration::from_secs(12);
        assert_eq!(
            s.at(gone).value(&Metric::ResponseCodeRatio(0, 600, 0, 600)),
            0.0
        );
    }

    #[test]
    fn latency_quantiles_come_from_the_histograms() {
        let t0 = Instant::now();
        let mut s = Stats::new(t0);
        for i in 1..=100u64 {
            s.record(t0, 200, Duration::from_millis(i));
        }
        let v = s.at(t0);
        let p50 = v.value(&Metric::LatencyAtQuantileMs(50.0));
        assert!((49.0..=51.0).contains(&p50), "{p50}");
        let p99 = v.value(&Metric::LatencyAtQuantileMs(99.0));
        assert!((98.0..=100.5).contains(&p99), "{p99}");
        assert_eq!(
            s.at(t0 + Duration::from_secs(61))
                .value(&Metric::LatencyAtQuantileMs(50.0)),
            0.0
        );
        s.reset(t0);
        assert_eq!(s.at(t0).value(&Metric::LatencyAtQuantileMs(50.0)), 0.0);
    }
}
