//! Decoding one dynamic-configuration file (YAML or TOML) into a [`DynamicConfig`],
//! with errors that point at the file, line and column.

use std::path::Path;

use crate::config::DynamicConfig;

use super::error::{FileErrorKind, FileProviderError};

/// The formats a dynamic-configuration file can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `.yml` / `.yaml`.
    Yaml,
    /// `.toml`.
    Toml,
}

impl Format {
    /// The format for a path's extension (case-insensitive), as Traefik decides it.
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yml" | "yaml" => Some(Self::Yaml),
            "toml" => Some(Self::Toml),
            _ => None,
        }
    }
}

/// Decodes the bytes of the file at `path`; the format follows the extension.
/// An empty file (or one with only comments) is an empty configuration.
pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<DynamicConfig, FileProviderError> {
    let format = Format::of(path).ok_or_else(|| {
        FileProviderError::new(
            FileErrorKind::UnsupportedExtension,
            path,
            "unsupported file extension (expected .yml, .yaml or .toml)",
        )
    })?;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_col(bytes, e.valid_up_to());
        FileProviderError::at(
            FileErrorKind::Parse,
            path,
            line,
            column,
            "the file is not valid UTF-8",
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let result = match format {
        Format::Yaml => decode_yaml(path, text),
        Format::Toml => decode_toml(path, text),
    };
    result.map_err(|e| template_error(path, text, &e).unwrap_or(e))
}

fn decode_yaml(path: &Path, text: &str) -> Result<DynamicConfig, FileProviderError> {
    // `Option` so that an empty document (empty file, only comments) is `None`.
    let err = match serde_yaml_ng::from_str::<Option<DynamicConfig>>(text) {
        Ok(config) => return Ok(config.unwrap_or_default()),
        Err(err) => err,
    };
    let located = yaml_error(path, &err);
    if !text.contains("<<") {
        return Err(located);
    }
    // YAML merge keys (`<<: *anchor`) are not applied by the direct decoder; apply
    // them on a value tree and decode again. Positions are lost on this path, so the
    // direct error is kept unless it is about the merge key itself.
    let merged = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text).and_then(|mut value| {
        value.apply_merge()?;
        serde_yaml_ng::from_value::<Option<DynamicConfig>>(value)
    });
    match merged {
        Ok(config) => Ok(config.unwrap_or_default()),
        Err(merge_err) if located.message.contains("`<<`") => Err(FileProviderError::new(
            FileErrorKind::Parse,
            path,
            merge_err.to_string(),
        )),
        Err(_) => Err(located),
    }
}

fn yaml_error(path: &Path, err: &serde_yaml_ng::Error) -> FileProviderError {
    let text = err.to_string();
    match err.location() {
        Some(loc) => {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            let message = text.replacen(&suffix, "", 1);
            FileProviderError::at(
                FileErrorKind::Parse,
                path,
                loc.line(),
                loc.column(),
                message,
            )
        }
        None => FileProviderError::new(FileErrorKind::Parse, path, text),
    }
}

fn decode_toml(path: &Path, text: &str) -> Result<DynamicConfig, FileProviderError> {
    toml::from_str::<DynamicConfig>(text).map_err(|err| {
        // toml's messages span several lines; keep log lines single.
        let message = err
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        match err.span() {
            Some(span) => {
                let (line, column) = line_col(text.as_bytes(), span.start);
                FileProviderError::at(FileErrorKind::Parse, path, line, column, message)
            }
            None => FileProviderError::new(FileErrorKind::Parse, path, message),
        }
    })
}

/// When a file that failed to parse uses Go template actions (`{{ ... }}`) at or
/// before the reported error, says so instead of the parser's cryptic message.
fn template_error(
    path: &Path,
    text: &str,
    parse_error: &FileProviderError,
) -> Option<FileProviderError> {
    let (line, column) = text.lines().enumerate().find_map(|(i, line)| {
        if line.trim_start().starts_with('#') {
            return None;
        }
        let byte = line.find("{{")?;
        Some((i + 1, line[..byte].chars().count() + 1))
    })?;
    if parse_error.line.is_some_and(|error_line| line > error_line) {
        return None;
    }
    Some(FileProviderError::at(
        FileErrorKind::Template,
        path,
        line,
        column,
        format!(
            "Go template syntax (`{{{{ ... }}}}`) is not supported by wharf; render the \
             template before handing the file to wharf (parser said: {})",
            parse_error.message
        ),
    ))
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}
