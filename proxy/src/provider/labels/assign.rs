//! Traefik's automatic assignment and naming (`pkg/provider/configuration.go`):
//! a default router when none is labelled, the default rule for routers without
//! one, the service of routers without one; then every rule is validated and every
//! service gets a port.

use std::collections::BTreeMap;

use crate::config::dynamic::{LoadBalancer, Router, Server, Service};
use crate::config::DynamicConfig;
use crate::rules::Rule;

use super::decode::Origins;
use super::template::render_default_rule;
use super::{layer4, normalize, IssueKind, Issues, LabelSettings};

/// A workload's configuration as decoded from its labels, before assignment.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Built {
    /// Routers, services, middlewares.
    pub config: DynamicConfig,
    /// v1 `traefik.backend.loadbalancer.swarm`.
    pub lbswarm: bool,
    /// Label keys by path.
    pub origins: Origins,
    /// For services whose port comes from a v1 label: the label to set.
    pub port_labels: BTreeMap<String, String>,
}

/// What assignment needs to know about the workload.
pub(crate) struct Context<'a> {
    /// The name default names derive from (swarm service, or Compose `service_project`).
    pub base: &'a str,
    /// The Docker name (`.ContainerName`).
    pub name: &'a str,
    /// All the workload's labels (`.Labels`).
    pub labels: &'a BTreeMap<String, String>,
    /// Provider settings.
    pub settings: &'a LabelSettings,
    /// v1 `traefik.port` (key, value), the port of services that set none.
    pub fallback_port: Option<&'a (String, String)>,
}

impl Context<'_> {
    /// The label prefix used in suggestions.
    fn prefix(&self) -> &str {
        self.settings
            .prefixes
            .first()
            .map_or("traefik", String::as_str)
    }
}

/// Completes the configuration as Traefik does, dropping routers that cannot be
/// completed, and validates rules and ports.
pub(crate) fn complete(built: &mut Built, ctx: &Context<'_>, issues: &mut Issues) {
    let default_name = normalize(ctx.base);
    let layer4 = built.config.tcp.is_some() || built.config.udp.is_some();
    layer4::assign(built, &default_name, ctx.settings.swarm_mode, issues);
    let http = &built.config.http;
    let http_empty =
        http.routers.is_empty() && http.services.is_empty() && http.middlewares.is_empty();
    if !(layer4 && http_empty) {
        routers(built, ctx, &default_name, issues);
    }
    ports(built, ctx, issues);
}

fn routers(built: &mut Built, ctx: &Context<'_>, default_name: &str, issues: &mut Issues) {
    let http = &mut built.config.http;
    if http.routers.is_empty() {
        if http.services.len() > 1 {
            let names: Vec<&str> = http.services.keys().map(String::as_str).collect();
            issues.warn(
                None,
                IssueKind::TooManyServices,
                format!(
                    "no router created: several services are defined ({}) and no router",
                    names.join(", ")
                ),
            );
        } else {
            http.routers
                .insert(default_name.to_string(), Router::default());
        }
    }
    let mut default_rule = None;
    let mut auto_service = false;
    let names: Vec<String> = http.routers.keys().cloned().collect();
    for name in names {
        let Some(router) = http.routers.get_mut(&name) else {
            continue;
        };
        let base = format!("http.routers.{name}");
        let router_label = built.origins.find(&base).map(str::to_string);
        let mut rule_label = built
            .origins
            .find(&format!("{base}.rule"))
            .map(str::to_string);
        if router.rule.trim().is_empty() {
            rule_label = None;
            let rendered = default_rule.get_or_insert_with(|| {
                render_default_rule(
                    &ctx.settings.default_rule,
                    default_name,
                    ctx.name.trim_start_matches('/'),
                    ctx.labels,
                )
            });
            match rendered {
                Ok(rule) if !rule.trim().is_empty() => router.rule = rule.clone(),
                Ok(_) => {
                    http.routers.remove(&name);
                    issues.dropped(
                        router_label.as_deref(),
                        IssueKind::DefaultRule,
                        format!("router `{name}` dropped: it has no rule and the default rule {:?} renders empty", ctx.settings.default_rule),
                    );
                    continue;
                }
                Err(e) => {
                    http.routers.remove(&name);
                    issues.dropped(
                        router_label.as_deref(),
                        IssueKind::DefaultRule,
                        format!("router `{name}` dropped: it has no rule and the default rule template {:?} cannot be rendered: {e}", ctx.settings.default_rule),
                    );
                    continue;
                }
            }
        }
        if router.service.is_empty() {
            match http.services.len() {
                0 => {
                    router.service = default_name.to_string();
                    auto_service = true;
                }
                1 => router.service = http.services.keys().next().cloned().unwrap_or_default(),
                _ => {
                    let services: Vec<&str> = http.services.keys().map(String::as_str).collect();
                    let message = format!(
                        "router `{name}` dropped: it has no service and several services are defined ({}); set `{}.http.routers.{name}.service`",
                        services.join(", "),
                        ctx.prefix()
                    );
                    http.routers.remove(&name);
                    issues.dropped(router_label.as_deref(), IssueKind::TooManyServices, message);
                    continue;
                }
            }
        }
        let syntax = router
            .rule_syntax
            .unwrap_or(ctx.settings.default_rule_syntax);
        if let Err(e) = Rule::parse(&router.rule, syntax) {
            let origin = match &rule_label {
                Some(_) => String::new(),
                None => " (from the default rule)".to_string(),
            };
            let message = format!(
                "router `{name}` dropped: invalid rule {:?}{origin} ({} syntax): {e}",
                router.rule,
                format!("{syntax:?}").to_lowercase()
            );
            http.routers.remove(&name);
            issues.dropped(
                rule_label.as_deref().or(router_label.as_deref()),
                IssueKind::InvalidRule,
                message,
            );
        }
    }
    if auto_service {
        let lb = LoadBalancer {
            servers: vec![Server::default()],
            ..LoadBalancer::default()
        };
        http.services.insert(
            default_name.to_string(),
            Service {
                load_balancer: Some(lb),
                ..Service::default()
            },
        );
    }
}

/// Gives every load-balancer template a port: its label, else v1 `traefik.port`;
/// on Swarm a missing port rejects the workload. Ports must be numbers.
fn ports(built: &mut Built, ctx: &Context<'_>, issues: &mut Issues) {
    for (name, service) in built.config.http.services.iter_mut() {
        let Some(lb) = &mut service.load_balancer else {
            continue;
        };
        let Some(server) = lb.servers.first_mut() else {
            continue;
        };
        if !server.url.is_empty() {
            continue;
        }
        let path = format!("http.services.{name}.loadbalancer.server.port");
        let mut label = built.origins.find(&path).map(str::to_string);
        if server.port.is_none() {
            if let Some((key, port)) = ctx.fallback_port {
                server.port = Some(port.clone());
                label = Some(key.clone());
            }
        }
        match &server.port {
            Some(port) if !matches!(port.trim().parse::<u16>(), Ok(p) if p > 0) => {
                issues.error(
                    label.as_deref(),
                    IssueKind::InvalidValue,
                    format!("invalid port {port:?}: expected a number from 1 to 65535"),
                );
            }
            Some(_) => {}
            None if ctx.settings.swarm_mode => {
                let hint = built
                    .port_labels
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| format!("{}.{path}", ctx.prefix()));
                issues.error(
                    None,
                    IssueKind::MissingPort,
                    format!("service `{name}` has no port: set the label `{hint}` (mandatory in Swarm mode)"),
                );
            }
            None => {}
        }
    }
}
