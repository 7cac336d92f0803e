//! When each provider last delivered a configuration, for `/api/providers` and the
//! dashboard. Written by the aggregator, read by the admin API from a snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use serde::Serialize;

/// The providers wharf runs and what each has delivered so far; cheap to clone
/// (clones share the same record).
#[derive(Debug, Clone, Default)]
pub struct ProviderActivity(Arc<ArcSwap<BTreeMap<&'static str, Seen>>>);

/// What is known of one provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Seen {
    /// When it last delivered a configuration.
    last: Option<SystemTime>,
    /// How many configurations it delivered.
    count: u64,
}

/// One provider as `/api/providers` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    /// The provider's name, as in `router@name` (`file`, `docker`, `swarm`).
    pub name: &'static str,
    /// When it last delivered a configuration (RFC 3339), `None` while waiting for
    /// its first one.
    pub last_configuration: Option<String>,
    /// Whole seconds since then, measured by wharf's clock.
    pub seconds_since: Option<u64>,
    /// How many configurations it delivered since wharf started.
    pub configurations: u64,
}

impl ProviderActivity {
    /// A record of the given providers, none of which has delivered anything yet.
    pub fn new(names: &[&'static str]) -> Self {
        let map = names.iter().map(|n| (*n, Seen::default())).collect();
        Self(Arc::new(ArcSwap::from_pointee(map)))
    }

    /// Notes that `provider` delivered a configuration at `at`.
    pub fn record(&self, provider: &'static str, at: SystemTime) {
        self.0.rcu(|current| {
            let mut next = BTreeMap::clone(current);
            let seen = next.entry(provider).or_default();
            seen.last = Some(at);
            seen.count += 1;
            next
        });
    }

    /// Every provider, by name, as seen at `now`.
    pub fn snapshot(&self, now: SystemTime) -> Vec<ProviderStatus> {
        self.0
            .load()
            .iter()
            .map(|(name, seen)| ProviderStatus {
                name,
                last_configuration: seen
                    .last
                    .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
                seconds_since: seen
                    .last
                    .map(|t| now.duration_since(t).unwrap_or(Duration::ZERO).as_secs()),
                configurations: seen.count,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_deliveries_per_provider() {
        let activity = ProviderActivity::new(&["file", "swarm"]);
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let shared = activity.clone();
        shared.record("file", start);
        shared.record("file", start + Duration::from_secs(5));

        let seen = activity.snapshot(start + Duration::from_secs(12));
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].name, "file");
        assert_eq!(seen[0].configurations, 2);
        assert_eq!(
            seen[0].last_configuration.as_deref(),
            Some("2023-11-14T22:13:25Z")
        );
        assert_eq!(seen[0].seconds_since, Some(7));
        assert_eq!(
            seen[1],
            ProviderStatus {
                name: "swarm",
                last_configuration: None,
                seconds_since: None,
                configurations: 0,
            },
            "a provider that sent nothing yet is listed as waiting"
        );
    }

    #[test]
    fn a_clock_going_back_reads_as_zero_seconds() {
        let activity = ProviderActivity::new(&[]);
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        activity.record("docker", at);
        let seen = activity.snapshot(at - Duration::from_secs(3));
        assert_eq!(seen[0].seconds_since, Some(0));
        assert_eq!(seen[0].configurations, 1);
    }
}
