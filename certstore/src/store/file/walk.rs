//! Walking the key directories below a prefix.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::super::{validate_key, StoreError};

/// Calls `visit(key, dir)` for `prefix` itself (unless empty) and every key directory
/// below it, in no particular order. Names that are not key segments (dot-files,
/// temporary files) are skipped; directories that vanish meanwhile are ignored.
pub(super) fn walk(
    kv: &Path,
    prefix: &str,
    mut visit: impl FnMut(String, &Path) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut start = kv.to_path_buf();
    if !prefix.is_empty() {
        start.extend(prefix.split('/'));
    }
    let mut stack: Vec<(PathBuf, String)> = vec![(start, prefix.to_string())];
    while let Some((dir, key)) = stack.pop() {
        if !key.is_empty() {
            visit(key.clone(), &dir)?;
        }
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(StoreError::Io {
                    key,
                    path: dir,
                    source,
                })
            }
        };
        for entry in entries {
            let entry = entry.map_err(|source| StoreError::Io {
                key: key.clone(),
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let child = if key.is_empty() {
                name.to_string()
            } else {
                format!("{key}/{name}")
            };
            if validate_key(&child).is_ok() {
                stack.push((entry.path(), child));
            }
        }
    }
    Ok(())
}
