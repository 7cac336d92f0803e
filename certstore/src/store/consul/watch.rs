//! Watches of the Consul backend: blocking queries on the prefix, compared with the
//! last state seen.
//!
//! Each query is `GET <path>?recurse&index=<last X-Consul-Index>&wait=`; whatever it
//! returns is compared with the previous answer, so an early return, a timeout or a
//! reconnection after an outage all report exactly what changed meanwhile. As
//! Consul's documentation asks, an index that goes backwards is reset to 0 (the
//! next query answers at once), an index of 0 is treated as 1, and queries are
//! spaced at least [`MIN_INTERVAL`] apart. Errors are retried with exponential
//! backoff (up to [`MAX_BACKOFF`]), never in a tight loop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{backend, Inner};
use crate::store::{StoreError, WatchEvent, WatchStream};

/// Shortest time between the starts of two blocking queries.
const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// First pause after a failed query.
const MIN_BACKOFF: Duration = Duration::from_millis(200);

/// Longest pause between retries while Consul is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts watching `prefix` (normalized); the state at return is the baseline.
pub(super) async fn watch(inner: Arc<Inner>, prefix: String) -> Result<WatchStream, StoreError> {
    let path = inner.list_path(&prefix);
    let (pairs, index) = inner
        .api
        .blocking_list(&path, 0, inner.options.watch_wait)
        .await
        .map_err(backend(&prefix))?;
    let known = versions(&inner, &prefix, pairs);
    let (tx, rx) = mpsc::channel(256);
    let task = tokio::spawn(run(inner, prefix, path, known, sane(0, index), tx));
    Ok(WatchStream::new(rx, Some(task.abort_handle())))
}

/// The versions of the store keys in `pairs` under `prefix`.
fn versions(inner: &Inner, prefix: &str, pairs: Vec<super::api::Pair>) -> BTreeMap<String, u64> {
    inner
        .entries(prefix, pairs)
        .into_iter()
        .map(|(k, e)| (k, e.version))
        .collect()
}

/// The index to send next, given the previous one and the one Consul returned.
fn sane(previous: u64, returned: u64) -> u64 {
    if returned < previous {
        0
    } else {
        returned.max(1)
    }
}

/// The events turning `old` into `new`, in key order.
fn diff(old: &BTreeMap<String, u64>, new: &BTreeMap<String, u64>) -> Vec<WatchEvent> {
    let mut events: Vec<WatchEvent> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| WatchEvent::Put {
            key: k.clone(),
            version: *v,
        })
        .collect();
    events.extend(
        old.keys()
            .filter(|k| !new.contains_key(*k))
            .map(|k| WatchEvent::Deleted { key: k.clone() }),
    );
    events.sort_by(|a, b| a.key().cmp(b.key()));
    events
}

async fn run(
    inner: Arc<Inner>,
    prefix: String,
    path: String,
    mut known: BTreeMap<String, u64>,
    mut index: u64,
    tx: mpsc::Sender<WatchEvent>,
) {
    let wait = inner.options.watch_wait;
    let mut backoff = MIN_BACKOFF;
    let mut failing = false;
    loop {
        let started = Instant::now();
        match inner.api.blocking_list(&path, index, wait).await {
            Ok((pairs, returned)) => {
                if failing {
                    tracing::info!(prefix = %prefix, address = %inner.api.address, "store watch reconnected");
                    failing = false;
                }
                backoff = MIN_BACKOFF;
                let current = versions(&inner, &prefix, pairs);
                for event in diff(&known, &current) {
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                known = current;
                index = sane(index, returned);
                tokio::time::sleep_until(started + MIN_INTERVAL).await;
            }
            Err(e) => {
                if failing {
                    tracing::debug!(prefix = %prefix, error = %e, "store watch still failing");
                } else {
                    tracing::warn!(prefix = %prefix, error = %e, "store watch failed; retrying");
                    failing = true;
                }
                if tx.is_closed() {
                    return;
                }
                let jitter =
                    Duration::from_micros(rand::random_range(0..=backoff.as_micros() as u64 / 4));
                tokio::time::sleep(backoff + jitter).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_resets_when_it_goes_backwards_and_is_never_zero() {
        assert_eq!(sane(10, 12), 12);
        assert_eq!(sane(10, 10), 10);
        assert_eq!(sane(10, 3), 0);
        assert_eq!(sane(0, 0), 1);
    }

    #[test]
    fn diff_reports_puts_and_deletes_in_key_order() {
        let old = BTreeMap::from([
            ("a".to_string(), 1),
            ("b".to_string(), 2),
            ("c".to_string(), 3),
        ]);
        let new = BTreeMap::from([
            ("a".to_string(), 1),
            ("b".to_string(), 5),
            ("d".to_string(), 6),
        ]);
        assert_eq!(
            diff(&old, &new),
            vec![
                WatchEvent::Put {
                    key: "b".into(),
                    version: 5
                },
                WatchEvent::Deleted { key: "c".into() },
                WatchEvent::Put {
                    key: "d".into(),
                    version: 6
                },
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }
}
