//! The writer thread: formats records and writes them to the file (or stdout),
//! reopening the file when asked (SIGUSR1, for logrotate). It runs on its own
//! thread so a slow disk or a stalled stdout never holds up a request.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};

use tokio::sync::mpsc;

use super::format;
use super::record::Record;
use super::settings::{AccessLogError, Settings};

/// What the writer thread is told.
#[derive(Debug)]
pub enum Message {
    /// A finished request.
    Record(Box<Record>),
    /// Close and reopen the file (after logrotate renamed it).
    Reopen,
}

/// Where lines go.
enum Sink {
    Stdout(io::Stdout),
    File(BufWriter<File>),
}

impl Sink {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(s) => s,
            Sink::File(f) => f,
        }
    }
}

/// Opens `path` for appending.
pub fn open(path: &str) -> Result<File, AccessLogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| AccessLogError::Open {
            path: path.to_string(),
            source,
        })
}

/// Runs until every sender is dropped. `file` is the already opened log file
/// (`None` writes to stdout).
pub fn run(settings: Settings, file: Option<File>, mut rx: mpsc::Receiver<Message>) {
    let mut sink = match file {
        Some(f) => Sink::File(BufWriter::new(f)),
        None => Sink::Stdout(io::stdout()),
    };
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            Message::Record(r) => {
                let line = format::line(&r, &settings);
                if let Err(e) = sink.writer().write_all(line.as_bytes()) {
                    tracing::warn!(error = %e, "access log: cannot write");
                }
            }
            Message::Reopen => reopen(&mut sink, &settings),
        }
        if rx.is_empty() {
            if let Err(e) = sink.writer().flush() {
                tracing::warn!(error = %e, "access log: cannot write");
            }
        }
    }
    let _ = sink.writer().flush();
}

fn reopen(sink: &mut Sink, settings: &Settings) {
    let (Sink::File(current), Some(path)) = (&mut *sink, &settings.file_path) else {
        return;
    };
    let _ = current.flush();
    match open(path) {
        Ok(f) => {
            *sink = Sink::File(BufWriter::new(f));
            tracing::info!(path = %path, "access log reopened");
        }
        Err(e) => {
            tracing::warn!(error = %e, "access log: cannot reopen; still writing to the old file")
        }
    }
}
