//! Interpolation of a YAML tree, and its findings turned into issues.

use serde_yaml_ng::Value;

use super::interpolate::{interpolate, Finding, Variables};
use super::report::Issue;

/// Interpolates every string under `v`, recording findings with their path.
pub fn walk(
    v: &mut Value,
    path: &mut Vec<String>,
    vars: &Variables,
    out: &mut Vec<(String, Finding)>,
) {
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

/// A mapping key as text.
pub fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "?".into(),
    }
}

/// One issue per distinct finding, with how many values it was found in.
/// `label_of` names the label a path belongs to (and its line).
pub fn aggregate(
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
                (Some(_), n) => format!(" (in {n} values)"),
                (None, 1) => format!(" (in {path})"),
                (None, n) => format!(" (in {n} values; first in {path})"),
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
