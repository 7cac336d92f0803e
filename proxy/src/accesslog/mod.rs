//! The access log (`accessLog`): one line per request in Traefik's `common`,
//! `genericCLF` or `json` format, with Traefik's filters and field modes.
//!
//! The request path hands a [`Record`] to a bounded queue and never waits: when the
//! writer falls behind, records are dropped and counted. The writer thread formats
//! and writes them; SIGUSR1 makes it reopen the file.

mod format;
pub mod record;
pub mod settings;
mod writer;

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use crate::config::static_config::AccessLog;
pub use record::Record;
pub use settings::{AccessLogError, Settings};
use writer::Message;

/// The request path's handle on the access log.
#[derive(Clone)]
pub struct AccessLogger {
    settings: Arc<Settings>,
    tx: mpsc::Sender<Message>,
    dropped: Counter,
    wants_headers: bool,
}

impl std::fmt::Debug for AccessLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLogger")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AccessLogger {
    /// Checks `cfg`, opens the file and starts the writer thread and the SIGUSR1
    /// listener (which needs a Tokio runtime).
    pub fn start(cfg: &AccessLog) -> Result<Self, AccessLogError> {
        let settings = Settings::new(cfg)?;
        let file = match &settings.file_path {
            Some(path) => Some(writer::open(path)?),
            None => None,
        };
        let (tx, rx) = mpsc::channel(settings.buffer);
        let for_writer = settings.clone();
        std::thread::Builder::new()
            .name("wharf-accesslog".into())
            .spawn(move || writer::run(for_writer, file, rx))
            .map_err(|source| AccessLogError::Open {
                path: settings
                    .file_path
                    .clone()
                    .unwrap_or_else(|| "stdout".into()),
                source,
            })?;
        if settings.file_path.is_some() {
            spawn_reopen_on_sigusr1(tx.clone());
        }
        Ok(Self {
            wants_headers: settings.wants_headers(),
            settings: Arc::new(settings),
            tx,
            dropped: Counter::default(),
        })
    }

    /// The checked settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether records need the request and response headers.
    pub fn wants_headers(&self) -> bool {
        self.wants_headers
    }

    /// Whether records need the Referer and User-Agent values.
    pub fn wants_agent(&self) -> bool {
        self.settings.format != settings::Format::Json
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> Counter {
        self.dropped.clone()
    }

    /// Queues `record` if the filters keep it; drops it (and counts) when the queue is full.
    pub fn log(&self, record: Record) {
        if !self
            .settings
            .keep(record.status, record.retries, record.duration)
        {
            return;
        }
        if self.tx.try_send(Message::Record(Box::new(record))).is_err() {
            self.dropped.inc();
        }
    }
}

#[cfg(unix)]
fn spawn_reopen_on_sigusr1(tx: mpsc::Sender<Message>) {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::user_defined1()) {
        Ok(mut usr1) => {
            tokio::spawn(async move {
                while usr1.recv().await.is_some() {
                    if tx.send(Message::Reopen).await.is_err() {
                        return;
                    }
                }
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGUSR1; the access log will not be reopened")
        }
    }
}

#[cfg(not(unix))]
fn spawn_reopen_on_sigusr1(_tx: mpsc::Sender<Message>) {}
