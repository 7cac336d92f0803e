//! One stack file's services through the label engine: the routers each service
//! gets, the label engine's issues, container labels Swarm ignores, and the
//! conflicts Traefik's merge of the stack's services would find.

use std::collections::BTreeMap;

use serde_yaml_ng::Mapping;

use super::compose::ServiceDef;
use super::labels::{is_proxy_key, Label};
use super::networks;
use super::report::{Issue, ServiceReport, Severity, Status};
use super::summary;
use crate::config::DynamicConfig;
use crate::provider::labels::{self as engine, LabelIssue, LabelSettings};

/// The stack a service belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Stack<'a> {
    /// The stack name.
    pub name: &'a str,
    /// The file's top-level `networks` (`None` for fragments: not checked).
    pub networks: Option<&'a Mapping>,
}

/// Checks one service of `stack`.
pub fn service(
    def: &ServiceDef,
    stack: Stack<'_>,
    settings: &LabelSettings,
) -> (ServiceReport, Option<DynamicConfig>) {
    let swarm_name = format!("{}_{}", stack.name, def.name);
    let mut report = ServiceReport {
        name: def.name.clone(),
        swarm_name: swarm_name.clone(),
        status: Status::NotExposed,
        reason: None,
        network: None,
        lbswarm: false,
        routers: Vec::new(),
        services: Vec::new(),
        middlewares: Vec::new(),
        issues: def.issues.clone(),
    };
    for label in &def.container_labels {
        let line = def.container_lines.get(label.pos).copied().flatten();
        if is_proxy_key(&label.key) {
            report.issues.push(
                Issue::warning(
                    "container label ignored in Swarm mode: the Swarm provider reads the \
                     service's `deploy.labels`; move it there",
                )
                .with_label(Some(label.key.clone()))
                .at_line(line),
            );
        }
    }
    let attached = stack
        .networks
        .filter(|_| !def.placeholder_networks)
        .map(|declared| {
            let (names, issues) = networks::attached(def, declared, stack.name);
            report.issues.extend(issues);
            names
        });
    if !def.deploy_labels.iter().any(|l| is_proxy_key(&l.key)) {
        report.reason = Some("no traefik labels under `deploy.labels`".into());
        return (report, None);
    }
    let labels: BTreeMap<String, String> = def
        .deploy_labels
        .iter()
        .map(|l| (l.key.clone(), l.value.clone()))
        .collect();
    let line_of = |key: &Option<String>| {
        key.as_deref()
            .and_then(|k| line(k, &def.deploy_labels, &def.deploy_lines))
    };
    let issue = |i: &LabelIssue| placeholder_aware(issue(i, line_of(&i.label)), def);
    match engine::parse_workload(&swarm_name, &labels, settings) {
        Err(issues) => {
            report.status = Status::Invalid;
            report.reason = Some("the labels are rejected: the proxy ignores this service".into());
            report.issues.extend(issues.iter().map(issue));
            (report, None)
        }
        Ok(None) => {
            report.reason = Some(not_exposed_reason(&labels, settings));
            (report, None)
        }
        Ok(Some(labeled)) => {
            report.status = Status::Exposed;
            report.network = labeled.network.clone().or_else(|| settings.network.clone());
            report.lbswarm = labeled.lbswarm;
            report.issues.extend(labeled.warnings.iter().map(issue));
            summary::fill(&mut report, &labeled.config, settings.provider);
            default_rules(&mut report, &labels, settings);
            let network_placeholder = def
                .placeholder_labels
                .iter()
                .any(|k| k.to_ascii_lowercase().ends_with(".network"));
            let attached = attached.filter(|a| !a.is_empty() && !network_placeholder);
            if let Some(attached) = attached {
                match networks::reachable(&labeled, def, &attached, stack.name, settings) {
                    Ok(()) => {}
                    Err(issues) if issues.is_empty() => {
                        report.issues.push(networks::ambiguous(&attached, settings));
                    }
                    Err(issues) => report.issues.extend(issues.iter().map(issue)),
                }
            }
            (report, Some(labeled.config))
        }
    }
}

/// Traefik merges the configurations of every service of the stack (and of the
/// whole provider): reports, on each service involved, the resources Traefik drops
/// because they are defined differently by several services, and HTTP services
/// shared by several services (their tasks end up in one load balancer).
pub fn merge_conflicts(reports: &mut [ServiceReport], configs: Vec<(String, DynamicConfig)>) {
    let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (workload, config) in &configs {
        for name in config.http.services.keys() {
            owners
                .entry(name.clone())
                .or_default()
                .push(workload.clone());
        }
    }
    let (merged, dropped) = engine::merge(configs);
    for (workload, label_issue) in dropped {
        if let Some(r) = reports.iter_mut().find(|r| r.swarm_name == workload) {
            r.issues.push(issue(&label_issue, None));
        }
    }
    let shared = owners
        .into_iter()
        .filter(|(name, w)| w.len() > 1 && merged.http.services.contains_key(name));
    for (service, workloads) in shared {
        for r in reports
            .iter_mut()
            .filter(|r| workloads.contains(&r.swarm_name))
        {
            let others: Vec<&str> = workloads
                .iter()
                .filter(|w| **w != r.swarm_name)
                .map(String::as_str)
                .collect();
            r.issues.push(Issue::warning(format!(
                "HTTP service `{service}` is also defined by {}: Traefik puts the tasks of \
                 every one of them in the same load balancer",
                others.join(", ")
            )));
        }
    }
}

/// Marks the HTTP routers whose rule is the default rule, and warns about routers
/// that are named by labels but have no `rule` label (often a copy-paste slip: the
/// router then answers on the default rule, such as ``Host(`stack-web`)``).
fn default_rules(report: &mut ServiceReport, labels: &BTreeMap<String, String>, s: &LabelSettings) {
    let keys: Vec<String> = labels.keys().map(|k| k.to_ascii_lowercase()).collect();
    for router in report.routers.iter_mut().filter(|r| r.protocol == "http") {
        if router.rule_syntax.as_deref() == Some("v1") {
            continue;
        }
        let bases: Vec<String> = s
            .prefixes
            .iter()
            .map(|p| {
                format!(
                    "{}.http.routers.{}.",
                    p.to_ascii_lowercase(),
                    router.name.to_ascii_lowercase()
                )
            })
            .collect();
        let named = keys
            .iter()
            .any(|k| bases.iter().any(|b| k.starts_with(b.as_str())));
        let ruled = keys.iter().any(|k| {
            bases
                .iter()
                .any(|b| k.strip_prefix(b.as_str()) == Some("rule"))
        });
        router.default_rule = !ruled;
        if named && !ruled {
            let rule = router.rule.clone().unwrap_or_default();
            report.issues.push(Issue::warning(format!(
                "router `{}` has labels but no `rule`: it gets the default rule {rule}",
                router.name
            )));
        }
    }
}

/// An error about a label whose value holds an unset variable's name is a
/// consequence of that variable, reported already: it becomes a warning.
fn placeholder_aware(mut issue: Issue, def: &ServiceDef) -> Issue {
    let from_placeholder = issue
        .label
        .as_ref()
        .is_some_and(|l| def.placeholder_labels.contains(l));
    if from_placeholder && issue.severity == Severity::Error {
        issue.severity = Severity::Warning;
        issue.message.push_str(
            " (the label holds an unset variable's name: check again with the variable set)",
        );
    }
    issue
}

fn issue(i: &LabelIssue, line: Option<usize>) -> Issue {
    let base = match i.severity {
        engine::Severity::Error => Issue::error(i.message.clone()),
        engine::Severity::Warning => Issue::warning(i.message.clone()),
    };
    base.with_label(i.label.clone()).at_line(line)
}

/// The line of the label `key` (exact spelling first, then any case).
fn line(key: &str, labels: &[Label], lines: &[Option<usize>]) -> Option<usize> {
    let label = labels
        .iter()
        .rfind(|l| l.key == key)
        .or_else(|| labels.iter().rfind(|l| l.key.eq_ignore_ascii_case(key)))?;
    lines.get(label.pos).copied().flatten()
}

fn not_exposed_reason(labels: &BTreeMap<String, String>, settings: &LabelSettings) -> String {
    let enable = labels.iter().find_map(|(k, v)| {
        let k = k.to_ascii_lowercase();
        settings
            .prefixes
            .iter()
            .any(|p| k == format!("{}.enable", p.to_ascii_lowercase()))
            .then(|| v.trim().to_string())
    });
    match enable.as_deref().and_then(engine::parse_bool) {
        Some(false) => "`traefik.enable` is false".into(),
        None if !settings.exposed_by_default => {
            "no `traefik.enable=true`, and exposedByDefault is false".into()
        }
        _ => "its labels do not match the constraints".into(),
    }
}

#[cfg(test)]
#[path = "lint_tests.rs"]
mod tests;
