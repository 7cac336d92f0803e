//! Reading one stack file as `docker stack deploy` does: the first YAML document,
//! merge keys (`<<: *anchor`), interpolation of the `services`, `networks`,
//! `volumes`, `secrets` and `configs` sections (values only: compose does not
//! interpolate mapping keys), then each service's `deploy.labels` and `labels`.
//!
//! A file without `services:` whose top-level entries look like services (they have
//! `image`, `deploy` or `labels`) is read as a fragment of a `services:` section;
//! any other YAML file is skipped.

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use super::interpolate::{interpolate, Finding, Variables};
use super::labels::{self, Label};
use super::report::{FileKind, Issue};

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
    /// Lines of `deploy_labels`, same order.
    pub deploy_lines: Vec<Option<usize>>,
    /// Container-level `labels` (ignored by the Swarm provider).
    pub container_labels: Vec<Label>,
    /// Lines of `container_labels`, same order.
    pub container_lines: Vec<Option<usize>>,
    /// Problems found while reading it.
    pub issues: Vec<Issue>,
}

/// Reads one file's text.
pub fn load(text: &str, vars: &Variables) -> Loaded {
    let mut value = match first_document(text) {
        Ok(Some(v)) => v,
        Ok(None) => return Loaded::only(FileKind::Skipped, Vec::new()),
        Err(issue) => return Loaded::only(FileKind::Invalid, vec![issue]),
    };
    let mut issues = Vec::new();
    if serde_yaml_ng::Deserializer::from_str(text).nth(1).is_some() {
        issues.push(Issue::warning(
            "several YAML documents: only the first one is read, as compose does",
        ));
    }
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
    let services = services
        .iter_mut()
        .zip(names)
        .map(|((key, body), (name, span))| service(name, span, body, kind, vars, &lines, key))
        .collect();
    Loaded {
        kind,
        issues,
        services,
    }
}

impl Loaded {
    fn only(kind: FileKind, issues: Vec<Issue>) -> Self {
        Self {
            kind,
            issues,
            services: Vec::new(),
        }
    }
}

fn first_document(text: &str) -> Result<Option<Value>, Issue> {
    let Some(doc) = serde_yaml_ng::Deserializer::from_str(text).next() else {
        return Ok(None);
    };
    match Value::deserialize(doc) {
        Ok(Value::Null) => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let line = e.location().map(|l| l.line());
            Err(Issue::error(format!("invalid YAML: {e}")).at_line(line))
        }
    }
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

/// Interpolates every string under `v`, recording findings with their path.
fn walk(v: &mut Value, path: &mut Vec<String>, vars: &Variables, out: &mut Vec<(String, Finding)>) {
    match v {
        Value::String(s) => {
            let result = interpolate(s, vars);
            if !result.findings.is_empty() {
                let at = path.join(".").replace(".[", "[");
                out.extend(result.findings.into_iter().map(|f| (at.clone(), f)));
            }
            *s = result.value;
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                walk(item, path, vars, out);
                path.pop();
            }
        }
        Value::Mapping(map) => {
            for (k, item) in map.iter_mut() {
                path.push(key_text(k));
                walk(item, path, vars, out);
                path.pop();
            }
        }
        Value::Tagged(tagged) => walk(&mut tagged.value, path, vars, out),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "?".into(),
    }
}

/// One issue per distinct finding, with how many values it was found in.
/// `label_of` names the label a path belongs to (and its line).
fn aggregate(
    found: Vec<(String, Finding)>,
    label_of: impl Fn(&str) -> Option<(String, Option<usize>)>,
) -> Vec<Issue> {
    let mut groups: Vec<(Finding, String, usize)> = Vec::new();
    for (path, finding) in found {
        match groups.iter_mut().find(|(f, _, _)| *f == finding) {
            Some(group) => group.2 += 1,
            None => groups.push((finding, path, 1)),
        }
    }
    groups
        .into_iter()
        .map(|(finding, path, count)| {
            let located = label_of(&path);
            let place = match (&located, count) {
                (Some(_), 1) => String::new(),
                (_, 1) => format!(" (in {path})"),
                (_, n) => format!(" (in {n} values; first in {path})"),
            };
            let issue = if finding.is_error() {
                Issue::error(format!("{finding}{place}"))
            } else {
                Issue::warning(format!("{finding}{place}"))
            };
            match located {
                Some((label, line)) => issue.with_label(Some(label)).at_line(line),
                None => issue,
            }
        })
        .collect()
}

/// Each service's name, the line of its key and the line range its definition may
/// span (0-based, end excluded).
fn service_lines(services: &Mapping, lines: &Lines) -> Vec<(String, Span)> {
    let mut starts = Vec::new();
    let mut from = 0;
    for key in services.keys() {
        let name = key_text(key);
        let at = lines.find_key(&name, from);
        if let Some(at) = at {
            from = at + 1;
        }
        starts.push((name, at));
    }
    let ends: Vec<usize> = (0..starts.len())
        .map(|i| {
            starts[i + 1..]
                .iter()
                .find_map(|(_, at)| *at)
                .unwrap_or(lines.len())
        })
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .map(|((name, at), end)| {
            let span = Span {
                key: at,
                start: at.unwrap_or(0),
                end,
            };
            (name, span)
        })
        .collect()
}

/// Where a service is written.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// 0-based line of the service's key, when found.
    key: Option<usize>,
    /// First line to search for its labels.
    start: usize,
    /// Line after the last one to search.
    end: usize,
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
    if deploy.is_some_and(|d| !matches!(d, Value::Mapping(_) | Value::Null)) {
        def.issues
            .push(Issue::error("`deploy` must be a map").at_line(def.line));
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
        Some((labels[i].key.clone(), lines.get(i).copied().flatten()))
    };
    let interpolation = aggregate(found, label_of);
    def.issues.splice(0..0, interpolation);
    def.name = name;
    def.deploy_labels = deploy_labels;
    def.container_labels = container_labels;
    def
}

fn label_issue(p: labels::LabelProblem, labels: &[Label], lines: &[Option<usize>]) -> Issue {
    let line = p
        .label
        .as_ref()
        .and_then(|k| labels.iter().position(|l| &l.key == k))
        .and_then(|i| lines.get(i).copied().flatten());
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

/// The file's lines, to point at services and labels.
struct Lines<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            lines: text.lines().collect(),
        }
    }

    fn len(&self) -> usize {
        self.lines.len()
    }

    /// The first line at or after `from` that defines the mapping key `name`.
    fn find_key(&self, name: &str, from: usize) -> Option<usize> {
        (from..self.lines.len()).find(|&i| {
            let t = self.lines[i].trim_start();
            let t = t.strip_prefix(['"', '\'']).unwrap_or(t);
            t.strip_prefix(name).is_some_and(|rest| {
                let rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
                rest.trim_start().starts_with(':')
            })
        })
    }

    /// The 1-based lines of `keys`, searched in order within `span`.
    fn locate(&self, keys: &[String], span: Span) -> Vec<Option<usize>> {
        let end = span.end.min(self.lines.len());
        let mut from = span.start;
        keys.iter()
            .map(|key| {
                if key.is_empty() {
                    return None;
                }
                let found = |i: &usize| self.lines[*i].contains(key.as_str());
                let hit = (from..end)
                    .find(found)
                    .or_else(|| (span.start..from.min(end)).find(found));
                if let Some(i) = hit {
                    from = i + 1;
                }
                hit.map(|i| i + 1)
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "compose_tests.rs"]
mod tests;
