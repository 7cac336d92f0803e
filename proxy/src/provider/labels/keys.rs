//! Sorting a workload's labels: which prefix they are under, and which part of the
//! label language they belong to (`enable`, provider labels, the v2 tree, v1 labels).

use std::collections::BTreeMap;

use crate::config::tree::nearest;

use super::{parse_bool, IssueKind, Issues};

/// A label under one of the configured prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The key as written (`traefik.http.routers.web.rule`).
    pub key: String,
    /// The key after the prefix and its dot (`http.routers.web.rule`).
    pub rest: String,
    /// The value.
    pub value: String,
}

/// A Traefik v1 label: a property of the default segment or of a named segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V1Entry {
    /// The key as written.
    pub key: String,
    /// The segment (`traefik.<segment>.port`), `None` for container-level keys.
    pub segment: Option<String>,
    /// The property, lowercase (`frontend.rule`, `port`, `backend.healthcheck.path`).
    pub prop: String,
    /// The property as written (header and rate-set names keep their case).
    pub prop_raw: String,
    /// The value.
    pub value: String,
}

/// A workload's labels, sorted. Within each list, labels of a later prefix come after
/// those of an earlier one, so that they win.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// `traefik.enable`.
    pub enable: Option<Entry>,
    /// `traefik.docker.*` and `traefik.swarm.*`.
    pub provider: Vec<Entry>,
    /// `traefik.http.*`, `traefik.tcp.*`, `traefik.udp.*`, `traefik.tls.*`.
    pub v2: Vec<Entry>,
    /// Traefik v1 labels.
    pub v1: Vec<V1Entry>,
}

/// Top-level keys known after the prefix, for suggestions.
const TOP_LEVEL: &[&str] = &[
    "enable", "http", "tcp", "udp", "tls", "docker", "swarm", "port", "protocol", "weight",
    "domain", "backend", "frontend",
];

/// v1 properties a segment can set besides `frontend.*`.
const SEGMENT_PROPS: &[&str] = &["port", "protocol", "weight", "backend", "domain"];

/// Sorts the labels under `prefixes`; other labels are left out. Unknown top-level
/// keys that look like a typo of a known one are reported as warnings.
pub(crate) fn collect(
    labels: &BTreeMap<String, String>,
    prefixes: &[String],
    issues: &mut Issues,
) -> Collected {
    let mut out = Collected::default();
    for prefix in prefixes {
        for (key, value) in labels {
            let Some(rest) = strip_prefix(key, prefix) else {
                continue;
            };
            let entry = Entry {
                key: key.clone(),
                rest: rest.to_string(),
                value: value.clone(),
            };
            classify(entry, prefix, &mut out, issues);
        }
    }
    out
}

/// The key after `prefix.` (prefix matched ignoring case), trimmed.
fn strip_prefix<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    let head = key.get(..prefix.len())?;
    let rest = key.get(prefix.len()..)?.strip_prefix('.')?;
    (head.eq_ignore_ascii_case(prefix) && !rest.trim().is_empty()).then(|| rest.trim())
}

fn classify(entry: Entry, prefix: &str, out: &mut Collected, issues: &mut Issues) {
    let lower = entry.rest.to_ascii_lowercase();
    let first = lower
        .split(['.', '['])
        .next()
        .unwrap_or_default()
        .to_string();
    match first.as_str() {
        "enable" if lower == "enable" => out.enable = Some(entry),
        "http" | "tcp" | "udp" | "tls" => out.v2.push(entry),
        "docker" | "swarm" => out.provider.push(entry),
        "frontend" | "backend" if lower.contains('.') => out.v1.push(v1_entry(entry, None)),
        _ if lower == "backend" || SEGMENT_PROPS.contains(&lower.as_str()) => {
            out.v1.push(v1_entry(entry, None))
        }
        _ => match entry.rest.split_once('.') {
            Some((segment, prop)) if is_segment_prop(prop) => {
                let segment = segment.to_string();
                let prop = prop.to_string();
                out.v1.push(V1Entry {
                    key: entry.key,
                    segment: Some(segment),
                    prop: prop.to_ascii_lowercase(),
                    prop_raw: prop,
                    value: entry.value,
                });
            }
            _ => {
                if let Some(near) = nearest(&first, TOP_LEVEL.iter().copied()) {
                    let tail = entry.rest.get(first.len()..).unwrap_or_default();
                    issues.warn(
                        Some(&entry.key),
                        IssueKind::UnknownKey {
                            suggestion: Some(format!("{prefix}.{near}{tail}")),
                        },
                        format!("unknown key, ignored (did you mean `{prefix}.{near}{tail}`?)"),
                    );
                }
            }
        },
    }
}

fn is_segment_prop(prop: &str) -> bool {
    let lower = prop.to_ascii_lowercase();
    SEGMENT_PROPS.contains(&lower.as_str()) || lower.starts_with("frontend.")
}

fn v1_entry(entry: Entry, segment: Option<String>) -> V1Entry {
    V1Entry {
        key: entry.key,
        segment,
        prop: entry.rest.to_ascii_lowercase(),
        prop_raw: entry.rest,
        value: entry.value,
    }
}

/// What `traefik.docker.*` / `traefik.swarm.*` say.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ProviderLabels {
    /// The network to reach the workload on, as written.
    pub network: Option<String>,
    /// Use the service's VIP.
    pub lbswarm: bool,
}

/// Reads `traefik.docker.*` and `traefik.swarm.*`; both at once is an error, as in Traefik.
pub(crate) fn provider_labels(collected: &Collected, issues: &mut Issues) -> ProviderLabels {
    let mut out = ProviderLabels::default();
    let family = |e: &Entry| {
        e.rest
            .split('.')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let docker = collected.provider.iter().find(|e| family(e) == "docker");
    let swarm = collected.provider.iter().find(|e| family(e) == "swarm");
    if let (Some(_), Some(swarm)) = (docker, swarm) {
        issues.error(
            Some(&swarm.key),
            IssueKind::Conflict,
            "both Docker and Swarm labels are defined (use only `traefik.swarm.*` or only `traefik.docker.*`)",
        );
        return out;
    }
    for entry in &collected.provider {
        let (head, sub) = entry.rest.split_once('.').unwrap_or((&entry.rest, ""));
        match sub.to_ascii_lowercase().as_str() {
            "network" => {
                let value = entry.value.trim();
                out.network = (!value.is_empty()).then(|| value.to_string());
            }
            "lbswarm" => match parse_bool(&entry.value) {
                Some(b) => out.lbswarm = b,
                None => issues.error(
                    Some(&entry.key),
                    IssueKind::InvalidValue,
                    format!("expected true or false, found {:?}", entry.value),
                ),
            },
            _ => {
                let near = nearest(sub, ["network", "lbswarm"]);
                let base = entry.key.get(..entry.key.len() - sub.len()).unwrap_or(head);
                let suggestion = near.map(|n| format!("{base}{n}"));
                let hint = suggestion
                    .as_ref()
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                issues.error(
                    Some(&entry.key),
                    IssueKind::UnknownKey { suggestion },
                    format!("unknown key; known keys are `network` and `lbswarm`{hint}"),
                );
            }
        }
    }
    out
}

/// The container-level v1 `traefik.port` (label key and value), used as the port of
/// v2 services that set none.
pub(crate) fn v1_port(v1: &[V1Entry]) -> Option<(String, String)> {
    v1.iter()
        .rev()
        .find(|e| e.segment.is_none() && e.prop == "port")
        .map(|e| (e.key.clone(), e.value.trim().to_string()))
}

/// Reports that v1 labels are ignored because v2 labels are present.
pub(crate) fn warn_ignored_v1(v1: &[V1Entry], issues: &mut Issues) {
    let ignored: Vec<&str> = v1
        .iter()
        .filter(|e| !(e.segment.is_none() && e.prop == "port"))
        .map(|e| e.key.as_str())
        .collect();
    if let Some(first) = ignored.first() {
        issues.warn(
            Some(first),
            IssueKind::Ignored,
            format!(
                "Traefik v1 labels are ignored because the workload also has v2 labels: {}",
                ignored.join(", ")
            ),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn prefixes() -> Vec<String> {
        vec!["traefik".into(), "wharf".into()]
    }

    #[test]
    fn sorts_labels_by_family_and_prefix() {
        let mut issues = Issues::new("w");
        let c = collect(
            &labels(&[
                ("Traefik.Enable", "true"),
                ("traefik.http.routers.a.rule", "Host(`a`)"),
                ("wharf.http.routers.a.rule", "Host(`b`)"),
                ("traefik.docker.network", "net"),
                ("traefik.frontend.rule", "Host:a"),
                ("traefik.port", "80"),
                ("traefik.admin.port", "81"),
                ("traefik.admin.frontend.rule", "Host:b"),
                ("traefik.constraint-label", "x"),
                ("com.docker.stack.namespace", "s"),
            ]),
            &prefixes(),
            &mut issues,
        );
        assert_eq!(c.enable.unwrap().value, "true");
        assert_eq!(c.v2.len(), 2);
        assert_eq!(
            c.v2[1].key, "wharf.http.routers.a.rule",
            "later prefix last"
        );
        assert_eq!(c.provider.len(), 1);
        assert_eq!(c.v1.len(), 4);
        let seg: Vec<_> = c.v1.iter().filter(|e| e.segment.is_some()).collect();
        assert_eq!(seg.len(), 2);
        assert_eq!(seg[0].segment.as_deref(), Some("admin"));
        assert!(issues.warnings.is_empty(), "{:?}", issues.warnings);
    }

    #[test]
    fn warns_about_top_level_typos_only() {
        let mut issues = Issues::new("w");
        collect(
            &labels(&[("traefik.enabled", "true"), ("traefik.tags", "x")]),
            &prefixes(),
            &mut issues,
        );
        assert_eq!(issues.warnings.len(), 1);
        assert_eq!(
            issues.warnings[0].kind,
            IssueKind::UnknownKey {
                suggestion: Some("traefik.enable".into())
            }
        );
    }

    #[test]
    fn docker_and_swarm_labels_conflict() {
        let mut issues = Issues::new("w");
        let c = collect(
            &labels(&[
                ("traefik.docker.network", "a"),
                ("traefik.swarm.network", "b"),
            ]),
            &prefixes(),
            &mut issues,
        );
        provider_labels(&c, &mut issues);
        let errors = issues.check().unwrap_err();
        assert!(errors[0]
            .message
            .contains("both Docker and Swarm labels are defined"));

        let mut issues = Issues::new("w");
        let c = collect(
            &labels(&[
                ("traefik.swarm.lbswarm", "true"),
                ("traefik.swarm.netwrk", "x"),
            ]),
            &prefixes(),
            &mut issues,
        );
        let p = provider_labels(&c, &mut issues);
        assert!(p.lbswarm);
        let errors = issues.check().unwrap_err();
        assert_eq!(
            errors[0].kind,
            IssueKind::UnknownKey {
                suggestion: Some("traefik.swarm.network".into())
            }
        );
    }
}
