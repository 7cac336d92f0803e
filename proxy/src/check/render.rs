//! The human-readable report: grouped by file then service, columns aligned.

use std::fmt::Write;

use super::report::{
    FileKind, FileReport, Issue, Report, RouterSummary, ServiceReport, Severity, StackSource,
    Status,
};

/// Renders `report` as text. Without `verbose`, services without proxy labels and
/// files that are not stack files are left out.
pub fn text(report: &Report, verbose: bool) -> String {
    let mut out = String::new();
    for file in &report.files {
        file_block(&mut out, file, verbose);
    }
    let s = &report.summary;
    let mut kinds = vec![plural(s.stack_files, "stack file")];
    if s.fragments > 0 {
        kinds.push(plural(s.fragments, "fragment"));
    }
    if s.skipped > 0 {
        kinds.push(format!("{} skipped", s.skipped));
    }
    if s.invalid > 0 {
        kinds.push(format!("{} invalid", s.invalid));
    }
    let _ = writeln!(
        out,
        "{} ({}); {}, {} exposed, {}; {}, {}",
        plural(s.files, "file"),
        kinds.join(", "),
        plural(s.services, "service"),
        s.exposed,
        plural(s.routers, "router"),
        plural(s.errors, "error"),
        plural(s.warnings, "warning"),
    );
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn file_block(out: &mut String, file: &FileReport, verbose: bool) {
    let shown: Vec<&ServiceReport> = file
        .services
        .iter()
        .filter(|s| {
            verbose || s.status != Status::NotExposed || !s.issues.is_empty() || has_labels(s)
        })
        .collect();
    if !verbose && file.kind == FileKind::Skipped && file.issues.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", file.path);
    match file.kind {
        FileKind::Skipped => {
            let _ = writeln!(out, "  skipped: not a stack file (no `services:`)");
        }
        FileKind::Invalid => {}
        FileKind::Stack | FileKind::Fragment => {
            if let Some(stack) = &file.stack {
                let from = match file.stack_source {
                    Some(StackSource::Option) => "set with --stack",
                    _ => "the directory's name; set another with --stack",
                };
                let _ = writeln!(out, "  stack `{stack}` ({from})");
            }
        }
    }
    issues(out, &file.issues, "  ");
    if matches!(file.kind, FileKind::Stack | FileKind::Fragment) && shown.is_empty() {
        let _ = writeln!(out, "  no service has traefik labels under `deploy.labels`");
    }
    for svc in shown {
        service_block(out, svc);
    }
    out.push('\n');
}

/// Whether a not-exposed service was given proxy labels (so it is worth showing).
fn has_labels(s: &ServiceReport) -> bool {
    s.reason
        .as_deref()
        .is_some_and(|r| !r.starts_with("no traefik labels"))
}

fn service_block(out: &mut String, svc: &ServiceReport) {
    let _ = write!(out, "\n  service {} -> {}", svc.name, svc.swarm_name);
    match (svc.status, &svc.reason) {
        (Status::Exposed, _) => {
            let mut notes = Vec::new();
            if let Some(net) = &svc.network {
                notes.push(format!("network {net}"));
            }
            if svc.lbswarm {
                notes.push("lbswarm (virtual IP)".into());
            }
            if !notes.is_empty() {
                let _ = write!(out, "  ({})", notes.join(", "));
            }
            out.push('\n');
        }
        (Status::NotExposed, reason) => {
            let _ = writeln!(out, ": not exposed ({})", reason.as_deref().unwrap_or("-"));
        }
        (Status::Invalid, reason) => {
            let _ = writeln!(out, ": INVALID ({})", reason.as_deref().unwrap_or("-"));
        }
    }
    for r in &svc.routers {
        router_block(out, r);
    }
    if !svc.middlewares.is_empty() {
        let list: Vec<String> = svc
            .middlewares
            .iter()
            .map(|m| format!("{} ({})", m.name, m.kind))
            .collect();
        let _ = writeln!(out, "    {:<13}{}", "middlewares", list.join(", "));
    }
    issues(out, &svc.issues, "    ");
}

fn router_block(out: &mut String, r: &RouterSummary) {
    let _ = writeln!(out, "    {} router {}", r.protocol, r.name);
    let mut row = |key: &str, value: String| {
        let _ = writeln!(out, "      {key:<13}{value}");
    };
    if let Some(rule) = &r.rule {
        let mut notes = Vec::new();
        if r.default_rule {
            notes.push("default rule".to_string());
        }
        if let Some(syntax) = &r.rule_syntax {
            notes.push(format!("syntax {syntax}"));
        }
        match notes.is_empty() {
            true => row("rule", rule.clone()),
            false => row("rule", format!("{rule}   ({})", notes.join(", "))),
        }
    }
    row(
        "priority",
        format!("{} ({})", r.priority, r.priority_source),
    );
    row("entrypoints", or_dash(&r.entrypoints, "all"));
    row("tls", tls(r));
    if r.protocol != "udp" {
        row("middlewares", or_dash(&r.middlewares, "-"));
    }
    let service = match (&r.service, &r.port) {
        (Some(s), Some(port)) => format!("{s} (port {port})"),
        (Some(s), None) => s.clone(),
        (None, _) => "-".into(),
    };
    row("service", service);
}

fn tls(r: &RouterSummary) -> String {
    let Some(t) = &r.tls else {
        return "no".into();
    };
    let mut parts = vec!["yes".to_string()];
    if let Some(res) = &t.cert_resolver {
        parts.push(format!("certresolver {res}"));
    }
    if let Some(opts) = &t.options {
        parts.push(format!("options {opts}"));
    }
    if t.passthrough {
        parts.push("passthrough".into());
    }
    for d in &t.domains {
        if d.sans.is_empty() {
            parts.push(format!("domain {}", d.main));
        } else {
            parts.push(format!("domain {} + {}", d.main, d.sans.join(", ")));
        }
    }
    parts.join(", ")
}

fn or_dash(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.into()
    } else {
        items.join(", ")
    }
}

fn issues(out: &mut String, list: &[Issue], indent: &str) {
    let width = list
        .iter()
        .filter_map(|i| i.line)
        .map(|l| format!("line {l}").len())
        .max()
        .unwrap_or(0);
    for issue in list {
        let severity = match issue.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let line = issue.line.map(|l| format!("line {l}")).unwrap_or_default();
        let label = issue
            .label
            .as_deref()
            .map(|l| format!("{l}: "))
            .unwrap_or_default();
        let place = if width > 0 {
            format!("{line:<width$}  ")
        } else {
            String::new()
        };
        let _ = writeln!(out, "{indent}{severity:<8}{place}{label}{}", issue.message);
    }
}
