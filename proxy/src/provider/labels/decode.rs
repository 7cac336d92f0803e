//! Helpers shared by the label decoders: where each key came from, and errors that
//! name the label as written with the nearest known key.

use std::collections::BTreeMap;

use crate::config::tree::{nearest, Tree, TreeError};

use super::{IssueKind, Issues};

/// Where each decoded key came from: label paths (after the prefix, lowercase) and
/// the label keys as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Origins(Vec<(String, String)>);

impl Origins {
    /// Records that `path` (`http.routers.web.rule`) was written as `key`.
    pub(crate) fn add(&mut self, path: &str, key: &str) {
        self.0.push((path.to_ascii_lowercase(), key.to_string()));
    }

    /// The label that set `path`, or the last one under it (keys compared ignoring case).
    pub(crate) fn find(&self, path: &str) -> Option<&str> {
        let path = path.to_ascii_lowercase();
        let exact = self.0.iter().rev().find(|(p, _)| *p == path);
        exact
            .or_else(|| {
                self.0.iter().rev().find(|(p, _)| {
                    p.strip_prefix(path.as_str())
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
                })
            })
            .map(|(_, key)| key.as_str())
    }
}

/// The entries of the map at the top of a family, matched case-insensitively
/// against `known`; a section written in several spellings is merged name by name.
pub(crate) fn sections(
    tree: &Tree,
    family: &str,
    known: &[&str],
    origins: &Origins,
    issues: &mut Issues,
) -> BTreeMap<String, BTreeMap<String, Tree>> {
    let mut out: BTreeMap<String, BTreeMap<String, Tree>> = BTreeMap::new();
    let Tree::Map(top) = tree else {
        return out;
    };
    for (key, node) in top {
        let Some(section) = known.iter().find(|k| k.eq_ignore_ascii_case(key)) else {
            unknown_key(&format!("{family}.{key}"), key, known, origins, issues);
            continue;
        };
        match node {
            Tree::Map(items) => {
                let merged = out.entry(section.to_string()).or_default();
                for (name, item) in items {
                    match merged.get_mut(name) {
                        Some(have) => have.merge(item.clone()),
                        None => {
                            merged.insert(name.clone(), item.clone());
                        }
                    }
                }
            }
            _ => issues.error(
                origins.find(&format!("{family}.{key}")),
                IssueKind::InvalidValue,
                format!("`{key}` must be followed by a name"),
            ),
        }
    }
    out
}

/// Reports an unknown key at `path`, suggesting the nearest of `known`.
pub(crate) fn unknown_key(
    path: &str,
    key: &str,
    known: &[&str],
    origins: &Origins,
    issues: &mut Issues,
) {
    let label = origins.find(path);
    let suggestion = nearest(key, known.iter().copied())
        .and_then(|near| label.map(|l| replace_segment(l, key, near)));
    let hint = suggestion
        .as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    issues.error(
        label,
        IssueKind::UnknownKey { suggestion },
        format!("unknown key `{key}`{hint}"),
    );
}

/// `label` with its segment spelled `old` (the last one that is) replaced by `new`.
pub(crate) fn replace_segment(label: &str, old: &str, new: &str) -> String {
    let parts: Vec<&str> = label.split('.').collect();
    match parts.iter().rposition(|p| p.eq_ignore_ascii_case(old)) {
        Some(i) => {
            let mut parts: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
            parts[i] = new.to_string();
            parts.join(".")
        }
        None => label.to_string(),
    }
}

/// Names must not contain `@` (it separates the provider in references).
pub(crate) fn valid_name(name: &str, base: &str, origins: &Origins, issues: &mut Issues) -> bool {
    if name.contains('@') {
        issues.error(
            origins.find(base),
            IssueKind::InvalidName,
            format!("name `{name}` must not contain `@` (it is reserved for `name@provider` references)"),
        );
        return false;
    }
    true
}

/// Reports a deserialization error at the label it comes from.
pub(crate) fn tree_error(base: &str, e: &TreeError, origins: &Origins, issues: &mut Issues) {
    // Labels write `loadbalancer.server.*` for the first element of `servers`.
    let path = e.path.replace("servers[0]", "server");
    let full = if path.is_empty() {
        base.to_string()
    } else {
        format!("{base}.{path}")
    };
    let label = origins.find(&full);
    let unknown = e.message.starts_with("unknown key");
    let suggestion = match (&e.suggestion, label) {
        (Some(near), Some(label)) if unknown => {
            let written = path.rsplit('.').next().unwrap_or_default();
            Some(replace_segment(label, written, near))
        }
        _ => None,
    };
    let hint = suggestion
        .as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    let kind = if unknown {
        IssueKind::UnknownKey { suggestion }
    } else {
        IssueKind::InvalidValue
    };
    issues.error(label, kind, format!("{}{hint}", e.message));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn origins_find_exact_then_under() {
        let mut o = Origins::default();
        o.add("http.routers.Web.rule", "traefik.http.routers.Web.rule");
        o.add(
            "http.routers.Web.tls.domains[0].main",
            "traefik.http.routers.Web.tls.domains[0].main",
        );
        o.add("http.routers.Web.rule", "wharf.http.routers.Web.rule");
        assert_eq!(
            o.find("http.routers.web.RULE"),
            Some("wharf.http.routers.Web.rule")
        );
        assert_eq!(
            o.find("http.routers.Web.tls.domains"),
            Some("traefik.http.routers.Web.tls.domains[0].main")
        );
        assert_eq!(o.find("http.routers.We"), None);
    }

    #[test]
    fn replace_segment_replaces_the_last_matching_segment() {
        assert_eq!(
            replace_segment("traefik.http.routers.rule.rulee", "RULEE", "rule"),
            "traefik.http.routers.rule.rule"
        );
        assert_eq!(replace_segment("a.b", "c", "d"), "a.b");
    }
}
