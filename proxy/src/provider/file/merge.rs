//! Merging the configurations of several files into one, as Traefik's directory
//! mode does: the first definition of a name wins, later ones are reported.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::DynamicConfig;

use super::error::{FileErrorKind, FileProviderError};

/// Accumulates file configurations, remembering which file defined each name.
#[derive(Debug, Default)]
pub(crate) struct Merger {
    config: DynamicConfig,
    /// `http.routers.web` → the file that defined it first.
    origins: BTreeMap<String, PathBuf>,
    conflicts: Vec<FileProviderError>,
}

impl Merger {
    /// Adds one file's configuration.
    pub(crate) fn add(&mut self, file: &Path, config: DynamicConfig) {
        let DynamicConfig {
            http,
            tcp,
            udp,
            tls,
        } = config;
        let mut into = std::mem::take(&mut self.config);

        self.names(file, "http.routers", &mut into.http.routers, http.routers);
        self.names(
            file,
            "http.services",
            &mut into.http.services,
            http.services,
        );
        self.names(
            file,
            "http.middlewares",
            &mut into.http.middlewares,
            http.middlewares,
        );
        self.names(
            file,
            "http.serversTransports",
            &mut into.http.servers_transports,
            http.servers_transports,
        );
        self.raw_section(file, "tcp", &mut into.tcp, tcp);
        self.raw_section(file, "udp", &mut into.udp, udp);
        for cert in tls.certificates {
            // The same certificate listed twice is harmless (Traefik dedupes too).
            if !into.tls.certificates.contains(&cert) {
                into.tls.certificates.push(cert);
            }
        }
        self.names(file, "tls.options", &mut into.tls.options, tls.options);
        self.names(file, "tls.stores", &mut into.tls.stores, tls.stores);

        self.config = into;
    }

    /// The merged configuration and the duplicate definitions that were dropped.
    pub(crate) fn finish(self) -> (DynamicConfig, Vec<FileProviderError>) {
        (self.config, self.conflicts)
    }

    /// Merges one map of named resources, keeping the first definition of each name.
    fn names<T>(
        &mut self,
        file: &Path,
        section: &str,
        into: &mut BTreeMap<String, T>,
        from: BTreeMap<String, T>,
    ) {
        for (name, item) in from {
            let key = format!("{section}.{name}");
            match into.entry(name) {
                Entry::Occupied(_) => self.conflict(file, &key),
                Entry::Vacant(slot) => {
                    slot.insert(item);
                    self.origins.insert(key, file.to_path_buf());
                }
            }
        }
    }

    /// Merges a section kept as raw values (`tcp`, `udp`): its sub-sections
    /// (`routers`, `services`, ...) are merged name by name.
    fn raw_section(
        &mut self,
        file: &Path,
        section: &str,
        into: &mut Option<Value>,
        from: Option<Value>,
    ) {
        let Some(from) = from else { return };
        let Some(existing) = into else {
            self.record_raw(file, section, &from);
            *into = Some(from);
            return;
        };
        let (Value::Object(existing), Value::Object(from)) = (existing, from) else {
            self.conflict(file, section);
            return;
        };
        for (sub, value) in from {
            let path = format!("{section}.{sub}");
            match (existing.get_mut(&sub), value) {
                (None, value) => {
                    self.record_raw(file, &path, &value);
                    existing.insert(sub, value);
                }
                (Some(Value::Object(have)), Value::Object(add)) => {
                    let mut have_map: BTreeMap<String, Value> =
                        std::mem::take(have).into_iter().collect();
                    self.names(file, &path, &mut have_map, add.into_iter().collect());
                    *have = have_map.into_iter().collect();
                }
                (Some(_), _) => self.conflict(file, &path),
            }
        }
    }

    /// Remembers the origin of a raw section (and of its names) taken as a whole.
    fn record_raw(&mut self, file: &Path, path: &str, value: &Value) {
        self.origins.insert(path.to_string(), file.to_path_buf());
        if let Value::Object(map) = value {
            for (key, inner) in map {
                let inner_path = format!("{path}.{key}");
                if path.contains('.') {
                    self.origins.insert(inner_path, file.to_path_buf());
                } else {
                    self.record_raw(file, &inner_path, inner);
                }
            }
        }
    }

    fn conflict(&mut self, file: &Path, key: &str) {
        let first = self.origins.get(key).map_or_else(
            || "an earlier file".to_string(),
            |p| p.display().to_string(),
        );
        self.conflicts.push(FileProviderError::new(
            FileErrorKind::Duplicate,
            file,
            format!("`{key}` is already defined in {first}; keeping that definition"),
        ));
    }
}
