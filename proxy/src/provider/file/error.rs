//! The file provider's error: which file, where in it, and what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// What kind of problem a [`FileProviderError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileErrorKind {
    /// Neither `filename` nor `directory` is set.
    NotConfigured,
    /// The file or directory could not be read.
    Io,
    /// The file's extension is not `.yml`, `.yaml` or `.toml`.
    UnsupportedExtension,
    /// The file is not valid YAML/TOML, or does not fit the dynamic-configuration
    /// model (unknown field, wrong type).
    Parse,
    /// The file uses Traefik's Go templating, which wharf does not support.
    Template,
    /// A resource is defined in two files; the first definition is kept.
    Duplicate,
}

/// An error reading one dynamic-configuration file, with its position when known.
///
/// Displayed as `path:line:column: message` (or `path: message` without a position).
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", Location(self))]
pub struct FileProviderError {
    /// What kind of problem this is.
    pub kind: FileErrorKind,
    /// The file (or directory) concerned.
    pub path: PathBuf,
    /// 1-based line of the problem, when known.
    pub line: Option<usize>,
    /// 1-based column of the problem, when known.
    pub column: Option<usize>,
    /// What is wrong, without the position.
    pub message: String,
    /// The underlying I/O error, for [`FileErrorKind::Io`]. Its text is already part
    /// of `message`, so it is not reported again as the error's source.
    pub io_error: Option<std::io::Error>,
}

impl FileProviderError {
    /// An error without a position in the file.
    pub(crate) fn new(kind: FileErrorKind, path: &Path, message: impl Into<String>) -> Self {
        Self {
            kind,
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
            io_error: None,
        }
    }

    /// An error at a 1-based line and column.
    pub(crate) fn at(
        kind: FileErrorKind,
        path: &Path,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Self {
            line: Some(line),
            column: Some(column),
            ..Self::new(kind, path, message)
        }
    }

    /// An I/O error while doing `what` (e.g. "cannot read file").
    pub(crate) fn io(path: &Path, what: &str, error: std::io::Error) -> Self {
        let message = format!("{what}: {error}");
        Self {
            io_error: Some(error),
            ..Self::new(FileErrorKind::Io, path, message)
        }
    }
}

/// `path`, `path:line` or `path:line:column`.
struct Location<'a>(&'a FileProviderError);

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        if e.path.as_os_str().is_empty() {
            return f.write_str("providers.file");
        }
        write!(f, "{}", e.path.display())?;
        if let Some(line) = e.line {
            write!(f, ":{line}")?;
            if let Some(column) = e.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}
