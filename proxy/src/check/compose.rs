//! Reading one stack file as `docker stack deploy` does: the first YAML document,
//! merge keys (`<<: *anchor`), interpolation of the `services`, `networks`,
//! `volumes`, `secrets` and `configs` sections (values only: compose does not
//! interpolate mapping keys), then each service's `deploy.labels` and `labels`.
//!
//! A file without `services:` whose top-level entries look like services (they have
//! `image`, `deploy` or `labels`) is read as a fragment of a `services:` section;
//! any other YAML file is skipped.

use std::collections::BTreeSet;

use serde_yaml_ng::{Mapping, Value};

use super::interpolate::{Finding, Variables};
use super::labels::{self, Label};
use super::lines::{service_lines, Lines, Span};
use super::report::{FileKind, Issue};
use super::tree::{aggregate, key_text, walk};
use super::yaml;

/// Sections that compose interpolates.
const SECTIONS: [&str; 5] = ["services", "networks", "volumes", "secrets", "configs"];

/// One file, read.
#[derive(Debug)]
pub struct Loaded {
    /// What kind of file it is.
    pub kind: FileKind,
    /// Problems with the file as a whole.
    pub issues: Vec<Issue>,
    /// Services in file order.
    pub services: Vec<ServiceDef>,
    /// The top-level `networks` section (stack files only), interpolated.
    pub networks: Option<Mapping>,
}

/// One service, read.
#[derive(Debug, Default)]
pub struct ServiceDef {
    /// The compose service name.
    pub name: String,
    /// 1-based line of its key.
    pub line: Option<usize>,
    /// `deploy.labels`: what the Swarm provider reads.
    pub deploy_labels: Vec<Label>,
    /// Lines of the `deploy.labels` entries as written, by [`Label::pos`].
    pub deploy_lines: Vec<Option<usize>>,
    /// Container-level `labels` (ignored by the Swarm provider).
    pub container_labels: Vec<Label>,
    /// Lines of the `labels` entries as written, by [`Label::pos`].
    pub container_lines: Vec<Option<usize>>,
    /// Problems found while reading it.
    pub issues: Vec<Issue>,
    /// Its `networks` (list or map), interpolated; `None` when absent.
    pub networks: Option<Value>,
    /// `deploy.endpoint_mode`.
    pub endpoint_mode: Option<String>,
    /// Keys of `deploy.labels` written with a required variable that is not set:
    /// their value holds the variable's name instead, so what they produce is not
    /// what would be deployed.
    pub placeholder_labels: BTreeSet<String>,
    /// Whether `networks` uses a required variable that is not set.
    pub placeholder_networks: bool,
}

/// Reads one file's text.
pub fn load(text: &str, vars: &Variables) -> Loaded {
    let doc = match yaml::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let issue = Issue::error(format!("invalid YAML: {}", e.message)).at_line(e.line);
            return Loaded::only(FileKind::Invalid, vec![issue]);
        }
    };
    let mut value = doc.value;
    let mut issues = Vec::new();
    if doc.several {
        issues.push(Issue::warning(
            "several YAML documents: only the first one is read, as compose does",
        ));
    }
    let duplicates = doc.duplicates;
    if let Err(e) = value.apply_merge() {
        let issue = Issue::error(format!("invalid YAML merge key (`<<`): {e}"));
        return Loaded::only(FileKind::Invalid, vec![issue]);
    }
    let Value::Mapping(mut root) = value else {
        return Loaded::only(FileKind::Skipped, issues);
    };
    let lines = Lines::new(text);
    let fragment = !root.contains_key("services") && looks_like_fragment(&root);
    let (kind, mut services) = match root.get_mut("services") {
        Some(Value::Mapping(services)) => (FileKind::Stack, std::mem::take(services)),
        Some(Value::Null) => (FileKind::Stack, Mapping::new()),
        Some(_) => {
            issues.push(Issue::error("`services` must be a map of services"));
            (FileKind::Stack, Mapping::new())
        }
        None if fragment => {
            issues.push(Issue::warning(
                "no top-level `services:` key: read as a fragment of a `services:` section",
            ));
            (FileKind::Fragment, std::mem::take(&mut root))
        }
        None => return Loaded::only(FileKind::Skipped, issues),
    };
    if kind == FileKind::Stack {
        for section in &SECTIONS[1..] {
            if let Some(v) = root.get_mut(*section) {
                let mut found = Vec::new();
                walk(v, &mut vec![section.to_string()], vars, &mut found);
                issues.extend(aggregate(found, |_| None));
            }
        }
    }
    let names = service_lines(&services, &lines);
    let mut services: Vec<ServiceDef> = services
        .iter_mut()
        .zip(names)
        .map(|((key, body), (name, span))| service(name, span, body, kind, vars, &lines, key))
        .collect();
    for path in duplicates {
        let issue = duplicate(&path);
        let prefix = if kind == FileKind::Stack {
            "services."
        } else {
            ""
        };
        let owner = services.iter_mut().find(|s| {
            path.strip_prefix(prefix)
                .and_then(|p| p.strip_prefix(s.name.as_str()))
                .is_some_and(|rest| rest.starts_with(['.', '[']))
        });
        match owner {
            Some(def) => def.issues.push(issue),
            None => issues.push(issue),
        }
    }
    let networks = match (kind, root.get("networks")) {
        (FileKind::Stack, Some(Value::Mapping(m))) => Some(m.clone()),
        (FileKind::Stack, _) => Some(Mapping::new()),
        _ => None,
    };
    Loaded {
        kind,
        issues,
        services,
        networks,
    }
}

impl Loaded {
    fn only(kind: FileKind, issues: Vec<Issue>) -> Self {
        Self {
            kind,
            issues,
            services: Vec::new(),
            networks: None,
        }
    }
}

fn duplicate(path: &str) -> Issue {
    let (parent, key) = path.rsplit_once('.').unwrap_or(("the top level", path));
    Issue::warning(format!(
        "key `{key}` is written twice in {parent}: `docker stack deploy` keeps the last \
         value, `docker compose` rejects the file"
    ))
}

fn looks_like_fragment(root: &Mapping) -> bool {
    root.values().any(|v| {
        v.as_mapping().is_some_and(|m| {
            ["image", "deploy", "labels"]
                .iter()
                .any(|k| m.contains_key(*k))
        })
    })
}

fn service(
    name: String,
    span: Span,
    body: &mut Value,
    kind: FileKind,
    vars: &Variables,
    lines: &Lines,
    key: &Value,
) -> ServiceDef {
    let mut def = ServiceDef {
        line: span.key.map(|i| i + 1),
        ..ServiceDef::default()
    };
    let raw_deploy = raw_keys(body.get("deploy").and_then(|d| d.get("labels")));
    let raw_container = raw_keys(body.get("labels"));
    let prefix = match kind {
        FileKind::Fragment => vec![key_text(key)],
        _ => vec!["services".to_string(), key_text(key)],
    };
    let mut found = Vec::new();
    walk(body, &mut prefix.clone(), vars, &mut found);
    def.deploy_lines = lines.locate(&raw_deploy, span);
    def.container_lines = lines.locate(&raw_container, span);

    if !matches!(body, Value::Mapping(_) | Value::Null) {
        def.issues
            .push(Issue::error("a service must be a map").at_line(def.line));
    }
    let deploy = body.get("deploy");
    match deploy {
        Some(Value::Mapping(m)) => def.issues.extend(unknown_deploy_keys(m, lines, span)),
        Some(Value::Null) | None => {}
        Some(_) => def
            .issues
            .push(Issue::error("`deploy` must be a map").at_line(def.line)),
    }
    let (deploy_labels, problems) = labels::read(deploy.and_then(|d| d.get("labels")));
    def.issues.extend(
        problems
            .into_iter()
            .map(|p| label_issue(p, &deploy_labels, &def.deploy_lines)),
    );
    let (container_labels, problems) = labels::read(body.get("labels"));
    def.issues.extend(
        problems
            .into_iter()
            .map(|p| label_issue(p, &container_labels, &def.container_lines)),
    );

    let base = prefix.join(".");
    let deploy_path = format!("{base}.deploy.labels");
    let container_path = format!("{base}.labels");
    let label_of = |path: &str| -> Option<(String, Option<usize>)> {
        let (labels, lines, rest) = if let Some(rest) = path.strip_prefix(&deploy_path) {
            (&deploy_labels, &def.deploy_lines, rest)
        } else if let Some(rest) = path.strip_prefix(&container_path) {
            (&container_labels, &def.container_lines, rest)
        } else {
            return None;
        };
        let i = labels.iter().position(|l| match l.index {
            Some(i) => rest == format!("[{i}]"),
            None => rest == format!(".{}", l.key),
        })?;
        Some((
            labels[i].key.clone(),
            lines.get(labels[i].pos).copied().flatten(),
        ))
    };
    for (path, _) in found
        .iter()
        .filter(|(_, f)| matches!(f, Finding::Required { .. }))
    {
        if path.starts_with(&format!("{base}.networks")) {
            def.placeholder_networks = true;
        }
        if path.starts_with(&deploy_path) {
            def.placeholder_labels
                .extend(label_of(path).map(|(key, _)| key));
        }
    }
    let interpolation = aggregate(found, label_of);
    def.issues.splice(0..0, interpolation);
    def.networks = body.get("networks").cloned();
    def.endpoint_mode = deploy
        .and_then(|d| d.get("endpoint_mode"))
        .and_then(Value::as_str)
        .map(str::to_string);
    def.name = name;
    def.deploy_labels = deploy_labels;
    def.container_labels = container_labels;
    def
}

/// Keys of `deploy` that `docker stack deploy` rejects: often a service or
/// `labels` indented one level too deep.
fn unknown_deploy_keys(deploy: &Mapping, lines: &Lines, span: Span) -> Vec<Issue> {
    deploy
        .keys()
        .map(key_text)
        .filter(|k| !DEPLOY_KEYS.contains(&k.as_str()) && !k.starts_with("x-"))
        .map(|k| {
            let line = lines.find_key(&k, span.start).filter(|l| *l < span.end);
            Issue::error(format!(
                "`deploy` has no key `{k}`: `docker stack deploy` rejects the file \
                 (is it indented too far?)"
            ))
            .at_line(line.map(|l| l + 1))
        })
        .collect()
}

/// The keys of a service's `deploy` section in the compose file format.
const DEPLOY_KEYS: [&str; 9] = [
    "endpoint_mode",
    "labels",
    "mode",
    "placement",
    "replicas",
    "resources",
    "restart_policy",
    "rollback_config",
    "update_config",
];

fn label_issue(p: labels::LabelProblem, labels: &[Label], lines: &[Option<usize>]) -> Issue {
    let pos = p.pos.or_else(|| {
        let key = p.label.as_ref()?;
        labels.iter().find(|l| &l.key == key).map(|l| l.pos)
    });
    let line = pos.and_then(|i| lines.get(i).copied().flatten());
    let issue = if p.error {
        Issue::error(p.message)
    } else {
        Issue::warning(p.message)
    };
    issue.with_label(p.label).at_line(line)
}

/// The keys of a labels value as written, before interpolation.
fn raw_keys(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.split('=').next().unwrap_or_default().to_string(),
                other => key_text(other),
            })
            .collect(),
        Some(Value::Mapping(map)) => map.keys().map(key_text).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
#[path = "compose_tests.rs"]
mod tests;
