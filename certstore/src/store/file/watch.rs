//! Watches of the file backend: a task per watch polls the key directories and
//! reports differences. Polling, because inotify does not see other nodes' writes on
//! a network filesystem. Each poll stats every entry file under the prefix and reads
//! a file's header only when its inode, size or modification time changed (every
//! write renames a new file into place, so a write always changes the inode).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::super::{StoreError, WatchEvent, WatchStream};
use super::{blocking, fsio, walk, Inner};

/// The shortest poll interval used, whatever the options say.
const MIN_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// Queued events per watch before the poller waits for the reader.
const CHANNEL_CAPACITY: usize = 1024;

/// What a poll saw of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    version: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

type Snapshot = HashMap<String, Seen>;

/// Starts a watch of `prefix` (already normalized); changes made after this returns
/// are reported.
pub(super) async fn watch(inner: Arc<Inner>, prefix: String) -> Result<WatchStream, StoreError> {
    let baseline = {
        let (inner, prefix) = (inner.clone(), prefix.clone());
        blocking(&prefix.clone(), move || {
            scan(&inner, &prefix, &Snapshot::new())
        })
        .await?
    };
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let task = tokio::spawn(poll(inner, prefix, baseline, tx));
    Ok(WatchStream::new(rx, Some(task.abort_handle())))
}

async fn poll(
    inner: Arc<Inner>,
    prefix: String,
    mut snapshot: Snapshot,
    tx: mpsc::Sender<WatchEvent>,
) {
    let period = inner.options.poll_interval.max(MIN_POLL_INTERVAL);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tx.closed() => return,
        }
        let scanned = {
            let (inner, prefix, old) = (inner.clone(), prefix.clone(), snapshot.clone());
            blocking(&prefix.clone(), move || scan(&inner, &prefix, &old)).await
        };
        let next = match scanned {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(prefix = %prefix, error = %e, "store watch poll failed; retrying");
                continue;
            }
        };
        for event in diff(&snapshot, &next) {
            if tx.send(event).await.is_err() {
                return;
            }
        }
        snapshot = next;
    }
}

/// The entries under `prefix` now, reusing `old`'s versions for unchanged files.
fn scan(inner: &Inner, prefix: &str, old: &Snapshot) -> Result<Snapshot, StoreError> {
    let mut now = Snapshot::new();
    walk::walk(&inner.kv, prefix, |key, dir| {
        let path = dir.join(fsio::ENTRY_FILE);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(inner.io(&key, &path)(e)),
        };
        let mut seen = Seen {
            version: 0,
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        };
        match old.get(&key) {
            Some(prev)
                if Seen {
                    version: 0,
                    ..*prev
                } == seen =>
            {
                seen.version = prev.version
            }
            _ => {
                let Some(head) = fsio::read_head(&path, fsio::ENTRY_HEADER_MAX)
                    .map_err(inner.io(&key, &path))?
                else {
                    return Ok(());
                };
                match fsio::decode_entry_header(&head) {
                    Ok((version, _, _)) => seen.version = version,
                    Err(reason) => {
                        // Reported, but it must not stall the watch of every other key.
                        tracing::warn!(key = %key, path = %path.display(), %reason, "corrupt store entry");
                        if let Some(prev) = old.get(&key) {
                            now.insert(key, *prev);
                        }
                        return Ok(());
                    }
                }
            }
        }
        now.insert(key, seen);
        Ok(())
    })?;
    Ok(now)
}

/// Events turning `old` into `new`, sorted by key.
fn diff(old: &Snapshot, new: &Snapshot) -> Vec<WatchEvent> {
    let mut events: Vec<WatchEvent> = new
        .iter()
        .filter(|(key, seen)| old.get(*key).map(|s| s.version) != Some(seen.version))
        .map(|(key, seen)| WatchEvent::Put {
            key: key.clone(),
            version: seen.version,
        })
        .chain(
            old.keys()
                .filter(|key| !new.contains_key(*key))
                .map(|key| WatchEvent::Deleted { key: key.clone() }),
        )
        .collect();
    events.sort_by(|a, b| a.key().cmp(b.key()));
    events
}
