//! `wharf check`: an offline linter for compose and stack files.
//!
//! Reads stack files as `docker stack deploy` does (compose interpolation, service
//! labels under `deploy.labels`), runs each service's labels through the label
//! engine with the Swarm provider's settings, and reports the routers Traefik would
//! build and every problem found, grouped by file then service.
//!
//! Stack names are not known offline: the Swarm service of compose service `web` is
//! named `<stack>_web`, where `<stack>` is `--stack NAME` or the file's directory name.

pub mod compose;
pub mod envfile;
pub mod interpolate;
pub mod labels;
mod lines;
mod lint;
mod networks;
mod refs;
pub mod render;
pub mod report;
mod summary;
mod tree;
mod yaml;

use std::path::{Path, PathBuf};

use crate::provider::labels::{Constraint, ConstraintError, LabelSettings};
use interpolate::Variables;
use report::{FileKind, FileReport, Issue, Report, StackSource, SCHEMA_VERSION};

/// How to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// Variables for interpolation.
    pub variables: Variables,
    /// The stack name; `None`: each file's directory name.
    pub stack: Option<String>,
    /// The label engine's settings (Swarm provider).
    pub settings: LabelSettings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            variables: Variables::new(),
            stack: None,
            settings: LabelSettings::swarm(),
        }
    }
}

/// Why checking could not start.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The constraints expression does not parse.
    #[error("invalid constraints expression {expr:?}: {error}")]
    Constraints {
        /// The expression.
        expr: String,
        /// Why it does not parse.
        error: ConstraintError,
    },
    /// A path given on the command line does not exist or cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// Checks files and directories (every `*.yml` / `*.yaml` below a directory, in
/// path order; hidden entries are skipped).
pub fn run(paths: &[PathBuf], opts: &Options) -> Result<Report, CheckError> {
    if let Some(expr) = opts.settings.constraints.as_deref() {
        Constraint::parse(expr).map_err(|error| CheckError::Constraints {
            expr: expr.to_string(),
            error,
        })?;
    }
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|error| CheckError::Path {
            path: path.clone(),
            error,
        })?;
        if meta.is_dir() {
            collect(path, &mut files).map_err(|error| CheckError::Path {
                path: path.clone(),
                error,
            })?;
        } else {
            files.push(path.clone());
        }
    }
    let mut report = Report {
        schema: SCHEMA_VERSION,
        files: files.iter().map(|f| check_file(f, opts)).collect(),
        ..Report::default()
    };
    refs::check(&mut report.files, opts.settings.provider);
    for file in &mut report.files {
        for svc in &mut file.services {
            svc.issues.sort_by_key(|i| (i.line.is_none(), i.line));
        }
    }
    report.summarize();
    Ok(report)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(&path, out)?;
        } else if is_yaml(&path) && (kind.is_file() || path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_yaml(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"))
}

/// Checks one file.
pub fn check_file(path: &Path, opts: &Options) -> FileReport {
    let mut report = FileReport {
        path: path.display().to_string(),
        kind: FileKind::Invalid,
        stack: None,
        stack_source: None,
        issues: Vec::new(),
        services: Vec::new(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            report
                .issues
                .push(Issue::error(format!("cannot read the file: {e}")));
            return report;
        }
    };
    let loaded = compose::load(&text, &opts.variables);
    report.kind = loaded.kind;
    report.issues = loaded.issues;
    if !matches!(loaded.kind, FileKind::Stack | FileKind::Fragment) {
        return report;
    }
    let (stack, source) = match &opts.stack {
        Some(name) => (name.clone(), StackSource::Option),
        None => (stack_from_dir(path), StackSource::Directory),
    };
    let mut configs = Vec::new();
    let ctx = lint::Stack {
        name: &stack,
        networks: loaded.networks.as_ref(),
    };
    for def in &loaded.services {
        let (service, config) = lint::service(def, ctx, &opts.settings);
        if let Some(config) = config {
            configs.push((service.swarm_name.clone(), config));
        }
        report.services.push(service);
    }
    lint::merge_conflicts(&mut report.services, configs);
    report.stack = Some(stack);
    report.stack_source = Some(source);
    report
}

/// The stack name from the file's directory, as compose derives a project name:
/// lowercase, only letters, digits, `-` and `_`.
fn stack_from_dir(path: &Path) -> String {
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let name: String = dir
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let name = name.trim_start_matches(['-', '_']).to_string();
    if name.is_empty() {
        "stack".into()
    } else {
        name
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_from_directories() {
        assert_eq!(stack_from_dir(Path::new("/srv/My App/stack.yml")), "myapp");
        assert_eq!(
            stack_from_dir(Path::new("/srv/dogvscat/stack.yml")),
            "dogvscat"
        );
        assert_eq!(
            stack_from_dir(Path::new(
                "/x/{{cookiecutter.project_slug}}/docker-compose.yml"
            )),
            "cookiecutterproject_slug"
        );
        assert_eq!(stack_from_dir(Path::new("/stack.yml")), "stack");
    }
}
