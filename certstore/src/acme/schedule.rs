//! When to renew a certificate and when to retry a failed issuance: pure functions
//! over Unix times, so every rule is unit-tested with fixed clocks.
//!
//! * Without ARI, a certificate is renewed once a third of its lifetime remains
//!   (certmagic's ratio; 30 days for Let's Encrypt's 90-day certificates, about 21
//!   days for 64-day and 15 for 45-day ones), plus a small random delay so a fleet
//!   does not renew everything at the same second.
//! * With ARI (RFC 9773), the CA's suggested window decides: a uniformly random point
//!   inside it, or now if the window has already started. A window that ends before it
//!   starts is ignored. Whatever the CA says, a certificate is renewed at the latest
//!   when a twentieth of its lifetime remains.
//! * A failed attempt is retried after `initial`, doubling up to `max`.

use std::time::Duration;

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// The validity of an issued certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Start of validity.
    pub not_before: UnixTime,
    /// End of validity.
    pub not_after: UnixTime,
}

impl Validity {
    /// The lifetime in seconds (at least 1, so ratios stay meaningful).
    pub fn lifetime(&self) -> i64 {
        (self.not_after - self.not_before).max(1)
    }

    /// When a third of the lifetime remains: the default renewal time.
    pub fn one_third_remaining(&self) -> UnixTime {
        self.not_after - self.lifetime() / 3
    }

    /// When a twentieth of the lifetime remains: the latest renewal time, whatever
    /// the CA's renewal window says.
    pub fn emergency(&self) -> UnixTime {
        self.not_after - self.lifetime() / 20
    }
}

/// A renewal window suggested by the CA (RFC 9773 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AriWindow {
    /// Start of the suggested window.
    pub start: UnixTime,
    /// End of the suggested window.
    pub end: UnixTime,
}

/// The longest random delay added to the one-third renewal time.
const MAX_JITTER: i64 = 3600;

/// When to renew a certificate of `validity`, given the CA's ARI window if it has
/// one. `random` is a uniform sample from `[0, 1)`: it picks the point inside the
/// ARI window, or the jitter added to the one-third time.
pub fn renewal_time(
    validity: Validity,
    ari: Option<AriWindow>,
    now: UnixTime,
    random: f64,
) -> UnixTime {
    let random = random.clamp(0.0, 1.0);
    let chosen = match ari.filter(|w| w.end > w.start) {
        Some(w) if w.start <= now => now,
        Some(w) => w.start + ((w.end - w.start) as f64 * random) as i64,
        None => {
            let jitter_span = (validity.lifetime() / 50).clamp(0, MAX_JITTER);
            validity.one_third_remaining() + (jitter_span as f64 * random) as i64
        }
    };
    chosen.min(validity.emergency())
}

/// How long to wait before the next ARI check, from the CA's Retry-After: at
/// least a minute, at most a day.
pub fn ari_recheck(retry_after: Duration) -> Duration {
    retry_after.clamp(Duration::from_secs(60), Duration::from_secs(24 * 3600))
}

/// Exponential backoff for failed issuance of one domain set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(60),
            max: Duration::from_secs(6 * 3600),
        }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (`0` means none: no delay).
    /// Never shorter than one second, so a misconfiguration cannot loop tightly.
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let initial = self.initial.max(Duration::from_secs(1));
        let max = self.max.max(initial);
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(31));
        initial.saturating_mul(factor).min(max)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn validity(days: i64) -> Validity {
        Validity {
            not_before: 1_000 * DAY,
            not_after: 1_000 * DAY + days * DAY,
        }
    }

    #[test]
    fn renews_at_one_third_remaining_for_each_lifetime() {
        for (days, remaining) in [(90, 30), (64, 21), (45, 15), (6, 2)] {
            let v = validity(days);
            let t = renewal_time(v, None, v.not_before, 0.0);
            let left = (v.not_after - t) / DAY;
            assert_eq!(left, remaining, "{days}-day certificate");
        }
    }

    #[test]
    fn jitter_is_bounded_by_an_hour_and_by_the_lifetime() {
        let v = validity(90);
        let base = v.one_third_remaining();
        assert_eq!(renewal_time(v, None, v.not_before, 0.0), base);
        let late = renewal_time(v, None, v.not_before, 0.999_999);
        assert!(late > base && late <= base + MAX_JITTER, "{}", late - base);
        // A one-hour certificate gets at most 1/50 of its life as jitter.
        let short = Validity {
            not_before: 0,
            not_after: 3600,
        };
        assert!(renewal_time(short, None, 0, 0.999_999) - short.one_third_remaining() <= 72);
    }

    #[test]
    fn ari_window_in_the_future_picks_a_point_inside_it() {
        let v = validity(90);
        let w = AriWindow {
            start: v.not_before + 50 * DAY,
            end: v.not_before + 52 * DAY,
        };
        let now = v.not_before + DAY;
        assert_eq!(renewal_time(v, Some(w), now, 0.0), w.start);
        assert_eq!(renewal_time(v, Some(w), now, 0.5), w.start + DAY);
        let last = renewal_time(v, Some(w), now, 0.999_999);
        assert!(last < w.end && last > w.end - 10);
    }

    #[test]
    fn ari_window_already_open_means_now() {
        let v = validity(90);
        let w = AriWindow {
            start: v.not_before + 10 * DAY,
            end: v.not_before + 11 * DAY,
        };
        let now = v.not_before + 20 * DAY;
        assert_eq!(renewal_time(v, Some(w), now, 0.7), now);
        // A window moved into the past by the CA (e.g. revocation): renew at once.
        let past = AriWindow {
            start: now - 2 * DAY,
            end: now - DAY,
        };
        assert_eq!(renewal_time(v, Some(past), now, 0.3), now);
    }

    #[test]
    fn ari_window_later_than_one_third_is_followed_but_capped_at_the_emergency_time() {
        let v = validity(90);
        let later = AriWindow {
            start: v.not_before + 70 * DAY,
            end: v.not_before + 72 * DAY,
        };
        let t = renewal_time(v, Some(later), v.not_before, 0.0);
        assert_eq!(t, later.start);
        assert!(t > v.one_third_remaining());
        let too_late = AriWindow {
            start: v.not_after - DAY,
            end: v.not_after,
        };
        assert_eq!(
            renewal_time(v, Some(too_late), v.not_before, 0.5),
            v.emergency()
        );
    }

    #[test]
    fn an_inverted_ari_window_is_ignored() {
        let v = validity(90);
        let bad = AriWindow {
            start: v.not_before + 5 * DAY,
            end: v.not_before + 4 * DAY,
        };
        assert_eq!(
            renewal_time(v, Some(bad), v.not_before, 0.0),
            v.one_third_remaining()
        );
    }

    #[test]
    fn ari_recheck_is_clamped() {
        assert_eq!(ari_recheck(Duration::ZERO), Duration::from_secs(60));
        assert_eq!(
            ari_recheck(Duration::from_secs(21_600)),
            Duration::from_secs(21_600)
        );
        assert_eq!(
            ari_recheck(Duration::from_secs(10 * DAY as u64)),
            Duration::from_secs(DAY as u64)
        );
    }

    #[test]
    fn backoff_doubles_from_initial_to_the_cap() {
        let b = Backoff::default();
        let mins: Vec<u64> = (0..=12).map(|n| b.delay(n).as_secs() / 60).collect();
        assert_eq!(
            mins,
            vec![0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360, 360]
        );
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(6 * 3600));
    }

    #[test]
    fn backoff_never_goes_below_a_second() {
        let b = Backoff {
            initial: Duration::ZERO,
            max: Duration::ZERO,
        };
        assert_eq!(b.delay(1), Duration::from_secs(1));
        assert_eq!(b.delay(5), Duration::from_secs(1));
        let fast = Backoff {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(10),
        };
        let secs: Vec<u64> = (1..=5).map(|n| fast.delay(n).as_secs()).collect();
        assert_eq!(secs, vec![2, 4, 8, 10, 10]);
    }
}
