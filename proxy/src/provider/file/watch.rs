//! Watching the configuration files and sending each new configuration.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use crate::config::static_config::FileProvider;
use crate::config::DynamicConfig;
use crate::provider::ProviderUpdate;

use super::{log_conflicts, Source, PROVIDER_NAME};

/// How long the files must be quiet before a burst of events is acted on, how long
/// a continuous burst may postpone the reload, and the polling period.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) debounce: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) poll_interval: Duration,
    /// Skip the watcher and poll (tests).
    pub(crate) force_poll: bool,
}

impl Timing {
    const DEFAULT: Self = Self {
        debounce: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        poll_interval: Duration::from_secs(2),
        force_poll: false,
    };
}

/// Runs the file provider until `tx` is closed.
///
/// `initial` is the configuration already loaded with [`load`](super::load) and
/// handed to the aggregator, if any; it is not sent again. Without it, the first
/// successful load is sent. With `watch`, the files are watched and every change
/// that yields a different valid configuration is sent as a [`ProviderUpdate`]
/// from provider `"file"`; an invalid file is logged and the last good
/// configuration stays in force. Without `watch`, nothing is reloaded.
pub async fn run(
    cfg: FileProvider,
    initial: Option<DynamicConfig>,
    tx: mpsc::Sender<ProviderUpdate>,
) {
    run_with(cfg, initial, tx, Timing::DEFAULT).await;
}

/// [`run`] with explicit timings.
pub(crate) async fn run_with(
    cfg: FileProvider,
    initial: Option<DynamicConfig>,
    tx: mpsc::Sender<ProviderUpdate>,
    timing: Timing,
) {
    let source = match Source::resolve(&cfg) {
        Ok(source) => source,
        Err(e) => {
            tracing::error!(provider = PROVIDER_NAME, error = %e, "file provider disabled");
            tx.closed().await;
            return;
        }
    };
    let mut state = State {
        source,
        last: initial,
        tx,
    };
    if !cfg.watch {
        if state.last.is_none() && state.reload().await.is_break() {
            return;
        }
        state.tx.closed().await;
        return;
    }
    if !timing.force_poll && state.watch(timing).await.is_break() {
        return;
    }
    state.poll(timing).await;
}

/// The provider's running state.
struct State {
    source: Source,
    /// The last configuration sent (or handed over at start-up).
    last: Option<DynamicConfig>,
    tx: mpsc::Sender<ProviderUpdate>,
}

impl State {
    /// Watches with `notify` for as long as that works. `Continue` means "fall back
    /// to polling"; `Break` means the receiver is gone.
    async fn watch(&mut self, timing: Timing) -> ControlFlow<()> {
        let signal = Arc::new(Notify::new());
        let root_gone = Arc::new(AtomicBool::new(false));
        loop {
            let watcher = match start_watcher(&self.source, &signal, &root_gone) {
                Ok(watcher) => watcher,
                Err(e) => {
                    tracing::warn!(
                        provider = PROVIDER_NAME,
                        path = %self.source.path().display(),
                        error = %e,
                        "cannot watch the dynamic configuration; polling every {:?}",
                        timing.poll_interval
                    );
                    return ControlFlow::Continue(());
                }
            };
            // Catch up with changes made before the watch was in place.
            self.reload().await?;
            loop {
                self.wait_for_burst(&signal, timing).await?;
                self.reload().await?;
                if root_gone.swap(false, Ordering::SeqCst) {
                    tracing::warn!(
                        provider = PROVIDER_NAME,
                        path = %watch_root(&self.source).0.display(),
                        "watched directory was removed or moved; watching it again"
                    );
                    break;
                }
            }
            drop(watcher);
        }
    }

    /// Waits for a signal, then for the burst of events to end.
    async fn wait_for_burst(&self, signal: &Notify, timing: Timing) -> ControlFlow<()> {
        tokio::select! {
            () = signal.notified() => {}
            () = self.tx.closed() => return ControlFlow::Break(()),
        }
        let start = Instant::now();
        while start.elapsed() < timing.max_delay {
            if tokio::time::timeout(timing.debounce, signal.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        ControlFlow::Continue(())
    }

    /// Polls the files' modification times, reloading when they change.
    async fn poll(&mut self, timing: Timing) {
        let mut seen = self.fingerprint().await;
        if self.reload().await.is_break() {
            return;
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(timing.poll_interval) => {}
                () = self.tx.closed() => return,
            }
            let now = self.fingerprint().await;
            if now != seen {
                seen = now;
                if self.reload().await.is_break() {
                    return;
                }
            }
        }
    }

    async fn fingerprint(&self) -> Fingerprint {
        let source = self.source.clone();
        tokio::task::spawn_blocking(move || fingerprint(&source))
            .await
            .unwrap_or_default()
    }

    /// Loads the files; sends the configuration if it is valid and new.
    /// `Break` when the receiver is gone.
    async fn reload(&mut self) -> ControlFlow<()> {
        let source = self.source.clone();
        let loaded = match tokio::task::spawn_blocking(move || source.load()).await {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(e)) => {
                tracing::error!(
                    provider = PROVIDER_NAME,
                    file = %e.path.display(),
                    line = e.line,
                    column = e.column,
                    error = %e.message,
                    "invalid dynamic configuration; keeping the last good one"
                );
                return ControlFlow::Continue(());
            }
            Err(e) => {
                tracing::error!(provider = PROVIDER_NAME, error = %e, "configuration reload failed");
                return ControlFlow::Continue(());
            }
        };
        if self.last.as_ref() == Some(&loaded.config) {
            return ControlFlow::Continue(());
        }
        log_conflicts(&loaded.conflicts);
        tracing::info!(
            provider = PROVIDER_NAME,
            files = loaded.files.len(),
            "dynamic configuration loaded"
        );
        self.last = Some(loaded.config.clone());
        let update = ProviderUpdate {
            provider: PROVIDER_NAME,
            config: loaded.config,
        };
        match self.tx.send(update).await {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }
}

/// What is watched: the directory itself (recursively), or a file's parent directory
/// (so that renames over the file and symlink swaps next to it are seen).
fn watch_root(source: &Source) -> (&Path, RecursiveMode) {
    match source {
        Source::Directory(dir) => (dir, RecursiveMode::Recursive),
        Source::File(file) => (
            file.parent().unwrap_or(Path::new("/")),
            RecursiveMode::NonRecursive,
        ),
    }
}

fn start_watcher(
    source: &Source,
    signal: &Arc<Notify>,
    root_gone: &Arc<AtomicBool>,
) -> notify::Result<RecommendedWatcher> {
    let (root, mode) = watch_root(source);
    let watched = root.to_path_buf();
    let signal = Arc::clone(signal);
    let root_gone = Arc::clone(root_gone);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        match event {
            Ok(event) => {
                if is_read_only(&event.kind) {
                    return;
                }
                let root_moved = matches!(
                    event.kind,
                    EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
                ) && event.paths.iter().any(|p| p == &watched);
                if root_moved {
                    root_gone.store(true, Ordering::SeqCst);
                }
            }
            Err(e) => {
                tracing::warn!(provider = PROVIDER_NAME, error = %e, "file watcher error");
            }
        }
        signal.notify_one();
    })?;
    watcher.watch(root, mode)?;
    Ok(watcher)
}

/// Opening or reading a file (ours included) changes nothing; closing a file that
/// was open for writing does.
fn is_read_only(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Access(access) if *access != AccessKind::Close(AccessMode::Write))
}

/// What polling compares, per file: where it resolves to (through symbolic links),
/// its inode (Unix), modification time and size.
type Fingerprint = Vec<(PathBuf, Option<Stamp>)>;

#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    resolved: PathBuf,
    inode: u64,
    modified: Option<SystemTime>,
    len: u64,
}

fn fingerprint(source: &Source) -> Fingerprint {
    let files = source.files().unwrap_or_default();
    files
        .into_iter()
        .map(|file| {
            let stamp = std::fs::metadata(&file).ok().map(|meta| Stamp {
                resolved: std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone()),
                inode: inode(&meta),
                modified: meta.modified().ok(),
                len: meta.len(),
            });
            (file, stamp)
        })
        .collect()
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> u64 {
    0
}
