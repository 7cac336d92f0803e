//! The `accessLog` section, checked and turned into what the formatter and the
//! filter need. Every error names the setting it is about.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::static_config::AccessLog;

/// Why the access log could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// A setting has a value wharf does not know.
    #[error("accessLog.{setting}: {message}")]
    Invalid {
        /// The setting's key (`format`, `filters.statusCodes`, ...).
        setting: String,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// The log file cannot be opened.
    #[error("accessLog.filePath: cannot open {path}")]
    Open {
        /// The path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn invalid(setting: impl Into<String>, message: impl Into<String>) -> AccessLogError {
    AccessLogError::Invalid {
        setting: setting.into(),
        message: message.into(),
    }
}

/// Line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Traefik's common format: CLF plus request count, router, server URL, duration.
    Common,
    /// Plain Combined Log Format.
    GenericClf,
    /// One JSON object per line.
    Json,
}

/// Whether a field or header is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Written as is.
    Keep,
    /// Left out.
    Drop,
    /// Written as `REDACTED` (headers only).
    Redact,
}

fn mode(setting: &str, value: &str, headers: bool) -> Result<Mode, AccessLogError> {
    match value.to_ascii_lowercase().as_str() {
        "keep" => Ok(Mode::Keep),
        "drop" => Ok(Mode::Drop),
        "redact" if headers => Ok(Mode::Redact),
        _ => Err(invalid(
            setting,
            format!(
                "unknown mode {value:?} (use keep{})",
                if headers {
                    ", drop or redact"
                } else {
                    " or drop"
                }
            ),
        )),
    }
}

/// An inclusive range of status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange(pub u16, pub u16);

/// The checked settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Line format.
    pub format: Format,
    /// Where lines go; stdout when `None`.
    pub file_path: Option<String>,
    /// Lines queued for the writer before new ones are dropped.
    pub buffer: usize,
    /// `filters.statusCodes`.
    pub status_codes: Vec<StatusRange>,
    /// `filters.retryAttempts`.
    pub retry_attempts: bool,
    /// `filters.minDuration` (zero when unset).
    pub min_duration: Duration,
    /// `fields.defaultMode`.
    pub default_mode: Mode,
    /// `fields.names`, keyed by lowercased field name.
    pub names: HashMap<String, Mode>,
    /// `fields.headers.defaultMode`.
    pub headers_default: Mode,
    /// `fields.headers.names`: lowercased header name -> (spelling as configured, mode).
    pub headers: HashMap<String, (String, Mode)>,
}

/// Lines queued when `bufferingSize` is not set.
pub const DEFAULT_BUFFER: usize = 1024;

impl Settings {
    /// Checks `cfg`.
    pub fn new(cfg: &AccessLog) -> Result<Self, AccessLogError> {
        let format = match cfg
            .format
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("common") => Format::Common,
            Some("genericclf") => Format::GenericClf,
            Some("json") => Format::Json,
            Some(_) => {
                return Err(invalid(
                    "format",
                    format!(
                        "unknown format {:?} (use common, genericCLF or json)",
                        cfg.format.as_deref().unwrap_or_default()
                    ),
                ))
            }
        };
        let filters = cfg.filters.clone().unwrap_or_default();
        let status_codes = filters
            .status_codes
            .iter()
            .map(|s| parse_range(s))
            .collect::<Result<Vec<_>, _>>()?;
        let fields = cfg.fields.clone().unwrap_or_default();
        let default_mode = match &fields.default_mode {
            Some(m) => mode("fields.defaultMode", m, false)?,
            None => Mode::Keep,
        };
        let names = fields
            .names
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.to_ascii_lowercase(),
                    mode(&format!("fields.names.{k}"), v, false)?,
                ))
            })
            .collect::<Result<_, AccessLogError>>()?;
        let headers_cfg = fields.headers.unwrap_or_default();
        let headers_default = match &headers_cfg.default_mode {
            Some(m) => mode("fields.headers.defaultMode", m, true)?,
            None => Mode::Drop,
        };
        let headers = headers_cfg
            .names
            .iter()
            .map(|(k, v)| {
                let m = mode(&format!("fields.headers.names.{k}"), v, true)?;
                Ok((k.to_ascii_lowercase(), (k.clone(), m)))
            })
            .collect::<Result<_, AccessLogError>>()?;
        let buffer = match cfg.buffering_size {
            Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX).min(1 << 20),
            _ => DEFAULT_BUFFER,
        };
        Ok(Self {
            format,
            file_path: cfg.file_path.clone().filter(|p| !p.trim().is_empty()),
            buffer,
            status_codes,
            retry_attempts: filters.retry_attempts,
            min_duration: filters.min_duration.map(|d| d.0).unwrap_or_default(),
            default_mode,
            names,
            headers_default,
            headers,
        })
    }

    /// Whether a request with this outcome is logged: with no filter set, every
    /// request is; otherwise one that passes any filter.
    pub fn keep(&self, status: u16, retries: u32, duration: Duration) -> bool {
        let any =
            !self.status_codes.is_empty() || self.retry_attempts || !self.min_duration.is_zero();
        if !any {
            return true;
        }
        self.status_codes
            .iter()
            .any(|r| r.0 <= status && status <= r.1)
            || (self.retry_attempts && retries > 0)
            || (!self.min_duration.is_zero() && duration > self.min_duration)
    }

    /// The mode of the field `name` (Traefik's spelling, e.g. `ClientHost`).
    pub fn field(&self, name: &str) -> Mode {
        self.names
            .get(&name.to_ascii_lowercase())
            .copied()
            .unwrap_or(self.default_mode)
    }

    /// Whether any header can be written (so headers need copying at all).
    pub fn wants_headers(&self) -> bool {
        self.headers_default != Mode::Drop || self.headers.values().any(|(_, m)| *m != Mode::Drop)
    }

    /// How a header is written: its name as shown, and its mode.
    pub fn header(&self, lower_name: &str) -> (String, Mode) {
        match self.headers.get(lower_name) {
            Some((spelling, m)) => (spelling.clone(), *m),
            None => (canonical_header(lower_name), self.headers_default),
        }
    }
}

/// `404` or `400-499`.
fn parse_range(s: &str) -> Result<StatusRange, AccessLogError> {
    let bad = || {
        invalid(
            "filters.statusCodes",
            format!("{s:?} is not a status code or a range such as 400-499"),
        )
    };
    let code = |t: &str| {
        t.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=999).contains(c))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (code(a).ok_or_else(bad)?, code(b).ok_or_else(bad)?);
            if a > b {
                return Err(bad());
            }
            Ok(StatusRange(a, b))
        }
        None => {
            let c = code(s).ok_or_else(bad)?;
            Ok(StatusRange(c, c))
        }
    }
}

/// `user-agent` -> `User-Agent`, as Go writes header names.
pub fn canonical_header(lower: &str) -> String {
    let mut out = String::with_capacity(lower.len());
    let mut upper = true;
    for c in lower.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        upper = c == '-';
    }
    out
}
