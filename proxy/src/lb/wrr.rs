//! Lock-free smooth weighted round robin.
//!
//! One cycle of nginx's smooth weighted round robin is computed when the balancer
//! is built (3:1 gives `a a b a`, 5:1:1 gives `a a b a c a a`). Picking is one
//! atomic increment and an array read. When the scheduled server cannot be used (down,
//! ejected or already tried), a server is chosen among the usable ones with
//! probability proportional to weight, seeded by the same counter, so an outage
//! spreads the lost share over the others instead of piling it on the next slot.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Upper bound on one schedule cycle. Weights are first divided by their greatest
/// common divisor; if they still sum to more, they are scaled down to about this
/// total (each non-zero weight staying at least 1), which keeps ratios to within
/// about 1/8192.
pub(crate) const MAX_SCHEDULE: u64 = 8192;

/// Smooth weighted round robin over servers `0..weights.len()`.
#[derive(Debug)]
pub(crate) struct Wrr {
    schedule: Box<[u32]>,
    weights: Box<[u32]>,
    next: AtomicUsize,
}

impl Wrr {
    /// A schedule starting at a random position, so that proxies and reloads do not
    /// all send their first request to the first server.
    pub(crate) fn new(weights: &[u32]) -> Self {
        Self::starting_at(weights, rand::random::<u32>() as usize)
    }

    /// A schedule starting at slot `start`.
    pub(crate) fn starting_at(weights: &[u32], start: usize) -> Self {
        Self {
            schedule: build_schedule(weights).into_boxed_slice(),
            weights: weights.into(),
            next: AtomicUsize::new(start),
        }
    }

    /// The next server for which `usable` holds, or `None` if there is none.
    /// `usable` is never asked about weight-0 servers. O(1) when the scheduled server
    /// is usable, O(servers) otherwise.
    pub(crate) fn pick(&self, usable: impl Fn(usize) -> bool) -> Option<usize> {
        if self.schedule.is_empty() {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let scheduled = self.schedule[turn % self.schedule.len()] as usize;
        if usable(scheduled) {
            return Some(scheduled);
        }
        self.pick_weighted(mix(turn as u64), &usable)
    }

    /// A usable server chosen with probability proportional to its weight, `seed`
    /// standing in for a random number.
    fn pick_weighted(&self, seed: u64, usable: &impl Fn(usize) -> bool) -> Option<usize> {
        let candidates = || {
            self.weights
                .iter()
                .enumerate()
                .filter(|&(i, &w)| w > 0 && usable(i))
        };
        let total: u64 = candidates().map(|(_, &w)| u64::from(w)).sum();
        if total == 0 {
            return None;
        }
        let mut target = seed % total;
        let mut last = None;
        // Availability may change between the two passes; fall back to the last
        // usable server seen rather than to nothing.
        for (i, &w) in candidates() {
            if target < u64::from(w) {
                return Some(i);
            }
            target -= u64::from(w);
            last = Some(i);
        }
        last
    }
}

/// SplitMix64's finaliser: spreads consecutive counters over the whole range.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One cycle of nginx's smooth weighted round robin for `weights`: at each turn
/// every server's credit grows by its weight, the server with the most credit
/// (the first one on ties) is picked and pays the total weight back.
/// O(total weight × servers), done once per rebuild; equal weights take the O(servers)
/// shortcut, which is where large server counts occur.
fn build_schedule(weights: &[u32]) -> Vec<u32> {
    let weights: Vec<i64> = reduce(weights).into_iter().map(i64::from).collect();
    if weights.iter().all(|&w| w <= 1) {
        return (0..weights.len())
            .filter(|&i| weights[i] == 1)
            .map(|i| i as u32)
            .collect();
    }
    let total: i64 = weights.iter().sum();
    let mut credit = vec![0i64; weights.len()];
    let mut schedule = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let mut best: Option<usize> = None;
        for (i, &w) in weights.iter().enumerate().filter(|&(_, &w)| w > 0) {
            credit[i] += w;
            if best.is_none_or(|b| credit[i] > credit[b]) {
                best = Some(i);
            }
        }
        let Some(best) = best else { break };
        credit[best] -= total;
        schedule.push(best as u32);
    }
    schedule
}

/// Divides weights by their GCD, then scales them down if they still sum to more
/// than [`MAX_SCHEDULE`].
fn reduce(weights: &[u32]) -> Vec<u32> {
    let g = weights.iter().fold(0, |g, &w| gcd(g, w)).max(1);
    let mut reduced: Vec<u32> = weights.iter().map(|&w| w / g).collect();
    let total: u64 = reduced.iter().map(|&w| u64::from(w)).sum();
    if total > MAX_SCHEDULE {
        for w in reduced.iter_mut().filter(|w| **w > 0) {
            let scaled = (u64::from(*w) * MAX_SCHEDULE / total).max(1);
            *w = u32::try_from(scaled).unwrap_or(u32::MAX);
        }
    }
    reduced
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(wrr: &Wrr, picks: usize, usable: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut counts = vec![0; wrr.weights.len()];
        for _ in 0..picks {
            counts[wrr.pick(&usable).expect("a usable server")] += 1;
        }
        counts
    }

    #[test]
    fn weights_three_to_one_are_exact_and_smooth() {
        let wrr = Wrr::new(&[3, 1]);
        assert_eq!(counts(&wrr, 400, |_| true), [300, 100]);
        let wrr = Wrr::starting_at(&[3, 1], 0);
        let seq: Vec<_> = (0..8).map(|_| wrr.pick(|_| true).expect("pick")).collect();
        assert_eq!(seq, [0, 0, 1, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn equal_weights_are_plain_round_robin() {
        let wrr = Wrr::starting_at(&[1, 1, 1], 0);
        let seq: Vec<_> = (0..6).map(|_| wrr.pick(|_| true).expect("pick")).collect();
        assert_eq!(seq, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn schedule_is_smooth_for_skewed_weights() {
        // 5:1:1 must not send five requests in a row to the heavy server.
        let schedule = build_schedule(&[5, 1, 1]);
        assert_eq!(schedule.len(), 7);
        assert_eq!(schedule.iter().filter(|&&i| i == 0).count(), 5);
        let longest_run = schedule
            .chunk_by(|a, b| a == b)
            .map(<[u32]>::len)
            .max()
            .expect("non-empty");
        assert!(longest_run <= 2, "{schedule:?}");
    }

    #[test]
    fn weight_zero_is_never_picked() {
        let wrr = Wrr::new(&[0, 2, 0, 1]);
        assert_eq!(counts(&wrr, 300, |_| true), [0, 200, 0, 100]);
        let wrr = Wrr::new(&[0, 0]);
        assert_eq!(wrr.pick(|_| true), None);
        assert_eq!(Wrr::new(&[]).pick(|_| true), None);
    }

    #[test]
    fn unusable_servers_are_skipped_and_their_share_spread() {
        let wrr = Wrr::new(&[1, 1, 1]);
        let c = counts(&wrr, 3000, |i| i != 0);
        assert_eq!(c[0], 0);
        // Server 0's third is shared by 1 and 2, not handed to its neighbour.
        for &n in &c[1..] {
            assert!((1300..=1700).contains(&n), "{c:?}");
        }
        assert_eq!(wrr.pick(|_| false), None);
    }

    #[test]
    fn fallback_respects_weights() {
        let wrr = Wrr::new(&[1, 3, 1]);
        let c = counts(&wrr, 5000, |i| i != 2);
        assert_eq!(c[2], 0);
        let ratio = c[1] as f64 / c[0] as f64;
        assert!((2.6..=3.4).contains(&ratio), "{c:?}");
    }

    #[test]
    fn large_weights_are_reduced() {
        assert_eq!(reduce(&[300, 100, 0]), [3, 1, 0]);
        let schedule = build_schedule(&[1_000_000, 1, 3_000_000]);
        assert!(schedule.len() as u64 <= MAX_SCHEDULE + 3);
        let count = |i| schedule.iter().filter(|&&s| s == i).count();
        assert_eq!(count(1), 1, "a tiny weight keeps a slot");
        let ratio = count(2) as f64 / count(0) as f64;
        assert!((2.99..=3.01).contains(&ratio));
    }
}
