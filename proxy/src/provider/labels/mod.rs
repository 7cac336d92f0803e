//! The label engine: the Traefik labels of one Docker workload (a swarm service or a
//! standalone container) turned into a [`DynamicConfig`], with Traefik's semantics.
//! Pure functions, no Docker I/O; the Docker provider and `wharf check` call them.
//!
//! The work is done in two stages so that labels can be checked offline:
//!
//! 1. [`parse_workload`] reads the labels (v2/v3 `traefik.http.*` tree, `traefik.tcp.*`,
//!    `traefik.udp.*`, or Traefik v1.7 labels), applies Traefik's automatic assignment
//!    and naming, and validates rules, keys and values. Services carry **server
//!    templates** (`Server { port, scheme }`, or `url` when `loadbalancer.server.url`
//!    is given).
//! 2. [`resolve`] picks the network and turns the templates into one
//!    `scheme://ip:port` server per endpoint (or one server at the service's VIP with
//!    `lbswarm`).
//!
//! [`merge`] then combines the workloads as Traefik does: same-named services union
//! their servers, same-named resources with different configurations are dropped.
//!
//! Every configured prefix (`traefik.` and `wharf.` by default) reads the same tree;
//! when two prefixes set the same key, the later prefix in
//! [`LabelSettings::prefixes`] wins. Keys are case-insensitive, names (of routers,
//! services, middlewares, headers) keep their case.
//!
//! Severity: a workload whose labels cannot be decoded (unknown key, bad value,
//! missing port on Swarm, ...) is rejected as a whole (`Err`), as Traefik skips such a
//! container. A router that cannot be completed (invalid rule, several services to
//! choose from, default rule that does not render) is dropped and reported in
//! [`Labeled::warnings`] with [`Severity::Error`]; the rest of the workload is served.

mod assign;
mod constraints;
mod decode;
mod keys;
mod layer4;
mod merge;
mod middlewares;
mod resolve;
mod template;
mod v1;
mod v1_middlewares;
mod v2;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::config::dynamic::RuleSyntax;
use crate::config::DynamicConfig;

pub use constraints::{Constraint, ConstraintError};
pub use merge::merge;
pub use resolve::resolve;
pub use template::{render_default_rule, TemplateError};

/// Label of a swarm service or container that names its stack (`docker stack deploy`).
pub const STACK_NAMESPACE_LABEL: &str = "com.docker.stack.namespace";

/// One swarm service (or standalone container) as the label engine sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    /// Docker name: swarm service `stack_web`, or container name.
    pub name: String,
    /// Service labels (`deploy.labels`) or container labels.
    pub labels: BTreeMap<String, String>,
    /// Names of the attached networks, e.g. `["stack_default", "traefik-public"]`.
    pub networks: Vec<String>,
    /// Tasks or containers that may receive traffic (already filtered: running and healthy).
    pub endpoints: Vec<Endpoint>,
    /// The service's virtual IP per network name (swarm; used with `lbswarm`).
    pub vips: BTreeMap<String, IpAddr>,
    /// Ports the container image exposes (standalone containers): when a service has
    /// no port label outside Swarm mode, the lowest one is used, as Traefik does.
    pub exposed_ports: Vec<u16>,
}

/// A task or container that may receive traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// Task or container id.
    pub id: String,
    /// Its address on each attached network, by network name.
    pub addresses: BTreeMap<String, IpAddr>,
}

/// The provider settings that change how labels are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSettings {
    /// The provider's name, `swarm` or `docker` (used in messages).
    pub provider: &'static str,
    /// Swarm mode: a port label is mandatory, `lbswarm` is honoured.
    pub swarm_mode: bool,
    /// Label prefixes read as the same tree; a later prefix wins over an earlier one.
    pub prefixes: Vec<String>,
    /// Expose workloads without `traefik.enable=true` (Traefik's `exposedByDefault`).
    pub exposed_by_default: bool,
    /// Rule of routers that have none, a Go template (Traefik's `defaultRule`).
    pub default_rule: String,
    /// Syntax of rules whose router sets no `ruleSyntax` (Traefik's `core.defaultRuleSyntax`).
    pub default_rule_syntax: RuleSyntax,
    /// Traefik constraints expression: ``Label(`k`,`v`)``, ``LabelRegex(`k`,`re`)``, `&&`, `||`, `!`, `()`.
    pub constraints: Option<String>,
    /// The provider's default network (Traefik's `network`).
    pub network: Option<String>,
    /// Keep services whose workload has no endpoint (they answer 503) instead of
    /// leaving the workload out (Traefik's `allowEmptyServices`).
    pub allow_empty_services: bool,
}

impl LabelSettings {
    /// Traefik's defaults for the Swarm provider.
    pub fn swarm() -> Self {
        Self {
            provider: "swarm",
            swarm_mode: true,
            prefixes: vec!["traefik".into(), "wharf".into()],
            exposed_by_default: true,
            default_rule: "Host(`{{ normalize .Name }}`)".into(),
            default_rule_syntax: RuleSyntax::V3,
            constraints: None,
            network: None,
            allow_empty_services: false,
        }
    }

    /// Traefik's defaults for the Docker provider (standalone containers).
    pub fn docker() -> Self {
        Self {
            provider: "docker",
            swarm_mode: false,
            ..Self::swarm()
        }
    }
}

impl Default for LabelSettings {
    fn default() -> Self {
        Self::swarm()
    }
}

/// How serious an issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Something was ignored or approximated; the configuration is complete.
    Warning,
    /// Something was rejected: the workload, or the router or resource named.
    Error,
}

/// What kind of problem a [`LabelIssue`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueKind {
    /// A key that is not one of Traefik's, with the nearest known key if one is close.
    UnknownKey {
        /// The nearest known key, as a whole label key.
        suggestion: Option<String>,
    },
    /// A value that cannot be read (boolean, number, duration, list, ...).
    InvalidValue,
    /// A router, service or middleware name that cannot be used.
    InvalidName,
    /// A router rule that does not parse.
    InvalidRule,
    /// The default rule template could not be rendered.
    DefaultRule,
    /// A router without `service` while several services are defined.
    TooManyServices,
    /// A service without a port where one is needed.
    MissingPort,
    /// The network to reach the workload cannot be chosen.
    Network,
    /// Labels that contradict each other.
    Conflict,
    /// The provider's constraints expression is invalid.
    Constraints,
    /// Labels that are ignored.
    Ignored,
    /// A Traefik feature that has no equivalent here, or only an approximate one.
    Unsupported,
    /// Resources with the same name and different configurations in several workloads.
    Duplicate,
}

/// One problem found in a workload's labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LabelIssue {
    /// The workload (swarm service or container name).
    pub workload: String,
    /// The offending label key as written, when one label is at fault.
    pub label: Option<String>,
    /// Whether something was rejected.
    pub severity: Severity,
    /// What kind of problem it is.
    pub kind: IssueKind,
    /// What is wrong, and how to fix it when that is clear.
    pub message: String,
}

impl fmt::Display for LabelIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.label {
            Some(label) => write!(f, "{}: label `{}`: {}", self.workload, label, self.message),
            None => write!(f, "{}: {}", self.workload, self.message),
        }
    }
}

/// The result of reading one workload's labels (stage 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Labeled {
    /// Routers, services and middlewares; load-balancer services hold server
    /// templates (`port`/`scheme`, or `url`) that [`resolve`] makes concrete.
    pub config: DynamicConfig,
    /// The network named by `traefik.swarm.network` / `traefik.docker.network`, as written.
    pub network: Option<String>,
    /// Whether servers are the service's VIP (`lbswarm`) rather than its tasks.
    pub lbswarm: bool,
    /// Issues that did not reject the workload: ignored labels, and dropped routers
    /// (with [`Severity::Error`]).
    pub warnings: Vec<LabelIssue>,
}

/// Reads the labels of one workload (stage 1).
///
/// `Ok(None)`: the workload is not exposed (`traefik.enable=false`; `exposedByDefault`
/// off without `traefik.enable=true`; constraints not matched). `Err`: the labels
/// cannot be used; every issue found is returned.
pub fn parse_workload(
    name: &str,
    labels: &BTreeMap<String, String>,
    s: &LabelSettings,
) -> Result<Option<Labeled>, Vec<LabelIssue>> {
    let mut issues = Issues::new(name);
    let collected = keys::collect(labels, &s.prefixes, &mut issues);
    issues.check()?;
    let enabled = match &collected.enable {
        Some(entry) => match parse_bool(&entry.value) {
            Some(b) => Some(b),
            None => {
                issues.error(
                    Some(&entry.key),
                    IssueKind::InvalidValue,
                    format!("expected true or false, found {:?}", entry.value),
                );
                None
            }
        },
        None => None,
    };
    let provider = keys::provider_labels(&collected, &mut issues);
    issues.check()?;
    if enabled == Some(false) || (!s.exposed_by_default && enabled != Some(true)) {
        return Ok(None);
    }
    if let Some(expr) = s.constraints.as_deref().filter(|e| !e.trim().is_empty()) {
        match Constraint::parse(expr) {
            Ok(c) if !c.matches(labels) => return Ok(None),
            Ok(_) => {}
            Err(e) => {
                issues.error(
                    None,
                    IssueKind::Constraints,
                    format!("invalid constraints expression {expr:?}: {e}"),
                );
                return Err(issues.errors);
            }
        }
    }
    let base = base_name(name, labels, s.swarm_mode);
    let mut built = if collected.v2.is_empty() && !collected.v1.is_empty() {
        v1::build(&collected.v1, &base, &mut issues)
    } else {
        if !collected.v1.is_empty() {
            keys::warn_ignored_v1(&collected.v1, &mut issues);
        }
        v2::build(&collected.v2, &mut issues)
    };
    issues.check()?;
    let fallback_port = keys::v1_port(&collected.v1);
    let ctx = assign::Context {
        base: &base,
        name,
        labels,
        settings: s,
        fallback_port: fallback_port.as_ref(),
    };
    assign::complete(&mut built, &ctx, &mut issues);
    issues.check()?;
    Ok(Some(Labeled {
        config: built.config,
        network: provider.network,
        lbswarm: provider.lbswarm || built.lbswarm,
        warnings: issues.warnings,
    }))
}

/// Traefik's `normalize`: runs of characters that are neither letters nor digits
/// become `-`, and leading and trailing ones are dropped (`stack_web` → `stack-web`).
pub fn normalize(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// The name Traefik derives a workload's default router and service names from: the
/// swarm service name, or for a Compose container outside Swarm mode `service_project`.
fn base_name(name: &str, labels: &BTreeMap<String, String>, swarm_mode: bool) -> String {
    let name = name.trim_start_matches('/');
    if !swarm_mode {
        if let (Some(service), Some(project)) = (
            labels.get("com.docker.compose.service"),
            labels.get("com.docker.compose.project"),
        ) {
            return format!("{service}_{project}");
        }
    }
    name.to_string()
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The issues found in one workload, split by severity.
#[derive(Debug)]
pub(crate) struct Issues {
    workload: String,
    errors: Vec<LabelIssue>,
    warnings: Vec<LabelIssue>,
}

impl Issues {
    pub(crate) fn new(workload: &str) -> Self {
        Self {
            workload: workload.to_string(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn issue(
        &self,
        label: Option<&str>,
        severity: Severity,
        kind: IssueKind,
        message: String,
    ) -> LabelIssue {
        LabelIssue {
            workload: self.workload.clone(),
            label: label.map(str::to_string),
            severity,
            kind,
            message,
        }
    }

    /// An error that rejects the workload.
    pub(crate) fn error(
        &mut self,
        label: Option<&str>,
        kind: IssueKind,
        message: impl Into<String>,
    ) {
        let issue = self.issue(label, Severity::Error, kind, message.into());
        self.errors.push(issue);
    }

    /// An error that dropped one router or resource; the workload is still served.
    pub(crate) fn dropped(
        &mut self,
        label: Option<&str>,
        kind: IssueKind,
        message: impl Into<String>,
    ) {
        let issue = self.issue(label, Severity::Error, kind, message.into());
        self.warnings.push(issue);
    }

    /// A warning.
    pub(crate) fn warn(
        &mut self,
        label: Option<&str>,
        kind: IssueKind,
        message: impl Into<String>,
    ) {
        let issue = self.issue(label, Severity::Warning, kind, message.into());
        self.warnings.push(issue);
    }

    /// `Err` with every error so far, if there is one.
    pub(crate) fn check(&mut self) -> Result<(), Vec<LabelIssue>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(std::mem::take(&mut self.errors))
        }
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests;
