//! The file provider: Traefik's dynamic-configuration files, YAML (`.yml`, `.yaml`)
//! or TOML (`.toml`), read from one file (`providers.file.filename`) or from a
//! directory (`providers.file.directory`), and reloaded when they change.
//!
//! - **Directory mode** reads every `.yml`/`.yaml`/`.toml` file in the directory and,
//!   as Traefik does, in its subdirectories, in path order, and merges them into one
//!   configuration. A name defined in two files (say `http.routers.web`) is reported
//!   as an error naming both files and the first definition (in path order) is kept.
//!   Entries whose name starts with `.` are skipped (editor lock files, and the
//!   `..data` / `..2024_…` entries of Kubernetes volumes, whose files would otherwise
//!   be read twice), and symbolic links to directories are not followed. When both
//!   `directory` and `filename` are set, `directory` wins, as in Traefik.
//! - **Errors** (syntax, unknown field, wrong type) name the file, line and column.
//!   Field names are Traefik's, in camelCase or lowercase. An empty file is an empty
//!   configuration. YAML anchors and merge keys (`<<: *anchor`) are supported.
//! - **Watching** (`watch`, on by default): the directory, or the parent directory of
//!   the file, is watched, so editors' write-and-rename saves and Kubernetes or Docker
//!   symlink swaps are seen. Bursts of events are debounced (about 100 ms) and a new
//!   configuration is sent only when it differs from the last one. A file that does
//!   not load is logged and the last good configuration stays in force. When the
//!   watch cannot be set up, the files' modification times are polled every 2 s.
//! - Relative paths are relative to the working directory at start-up.
//!
//! **Not supported:** Traefik's Go templating (`{{ ... }}` with Sprig functions) in
//! dynamic files. A file whose parse fails on template syntax is reported as such;
//! render templates before handing the files to wharf.

mod decode;
mod error;
mod merge;
mod watch;

use std::path::{Path, PathBuf};

use crate::config::static_config::FileProvider;
use crate::config::DynamicConfig;

pub use error::{FileErrorKind, FileProviderError};
pub use watch::run;

use decode::Format;
use merge::Merger;

/// The provider name used to qualify resources (`web@file`).
pub const PROVIDER_NAME: &str = "file";

/// The result of one load: the merged configuration and what was dropped from it.
#[derive(Debug)]
pub struct Loaded {
    /// The merged configuration of every file.
    pub config: DynamicConfig,
    /// The files read, in the order they were merged.
    pub files: Vec<PathBuf>,
    /// Definitions dropped because an earlier file defined the same name
    /// ([`FileErrorKind::Duplicate`]); the configuration is usable regardless.
    pub conflicts: Vec<FileProviderError>,
}

/// Loads the configured file or directory once, synchronously (used at start-up so
/// wharf starts with its routes). Duplicate definitions are logged as errors and
/// the first one is kept; see [`load_detailed`] to get them as values.
pub fn load(cfg: &FileProvider) -> Result<DynamicConfig, FileProviderError> {
    let loaded = load_detailed(cfg)?;
    log_conflicts(&loaded.conflicts);
    Ok(loaded.config)
}

/// Like [`load`], but returns the files read and the duplicate definitions instead
/// of logging them.
pub fn load_detailed(cfg: &FileProvider) -> Result<Loaded, FileProviderError> {
    Source::resolve(cfg)?.load()
}

/// Logs each duplicate definition as an error.
pub(crate) fn log_conflicts(conflicts: &[FileProviderError]) {
    for conflict in conflicts {
        tracing::error!(
            provider = PROVIDER_NAME,
            file = %conflict.path.display(),
            error = %conflict.message,
            "duplicate definition in dynamic configuration"
        );
    }
}

/// Where the configuration comes from, with an absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// One file.
    File(PathBuf),
    /// A directory tree of files.
    Directory(PathBuf),
}

impl Source {
    /// Resolves the provider's settings; relative paths are taken from the working
    /// directory now.
    pub(crate) fn resolve(cfg: &FileProvider) -> Result<Self, FileProviderError> {
        let absolute = |p: &str| {
            std::path::absolute(p)
                .map_err(|e| FileProviderError::io(Path::new(p), "cannot resolve path", e))
        };
        match (non_empty(&cfg.directory), non_empty(&cfg.filename)) {
            (Some(dir), _) => Ok(Self::Directory(absolute(dir)?)),
            (None, Some(file)) => Ok(Self::File(absolute(file)?)),
            (None, None) => Err(FileProviderError::new(
                FileErrorKind::NotConfigured,
                Path::new(""),
                "the file provider needs `filename` or `directory`",
            )),
        }
    }

    /// The file or directory itself.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Self::File(p) | Self::Directory(p) => p,
        }
    }

    /// The configuration files, sorted by path.
    pub(crate) fn files(&self) -> Result<Vec<PathBuf>, FileProviderError> {
        match self {
            Self::File(p) => Ok(vec![p.clone()]),
            Self::Directory(dir) => {
                let mut files = Vec::new();
                collect_files(dir, &mut files)?;
                files.sort();
                Ok(files)
            }
        }
    }

    /// Reads and merges every file.
    pub(crate) fn load(&self) -> Result<Loaded, FileProviderError> {
        let files = self.files()?;
        let mut merger = Merger::default();
        for file in &files {
            let bytes = std::fs::read(file)
                .map_err(|e| FileProviderError::io(file, "cannot read file", e))?;
            merger.add(file, decode::decode(file, &bytes)?);
        }
        let (config, conflicts) = merger.finish();
        Ok(Loaded {
            config,
            files,
            conflicts,
        })
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// Collects configuration files under `dir`, recursing into subdirectories.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FileProviderError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| FileProviderError::io(dir, "cannot read directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| FileProviderError::io(dir, "cannot read directory", e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| FileProviderError::io(&path, "cannot read file type", e))?;
        if file_type.is_dir() {
            collect_files(&path, out)?;
        } else if Format::of(&path).is_some() {
            // Regular files and symbolic links to files; a link to a directory with
            // a configuration extension is not followed.
            if file_type.is_symlink() && path.is_dir() {
                continue;
            }
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
