//! A workload's [`DynamicConfig`] summarized for the report: routers with their
//! effective priority and target port, services with their server template, and
//! middlewares with their type.

use serde_json::Value;

use super::report::{
    DomainSummary, MiddlewareSummary, RouterSummary, ServiceReport, ServiceSummary, TlsSummary,
};
use crate::config::dynamic::{RuleSyntax, Service};
use crate::config::DynamicConfig;
use crate::provider::labels::parse_bool;

/// Fills `report`'s routers, services and middlewares from `config`; `provider` is
/// the provider name that qualifies local references (`web@swarm`).
pub fn fill(report: &mut ServiceReport, config: &DynamicConfig, provider: &str) {
    for (name, svc) in &config.http.services {
        let (port, scheme) = http_server(svc);
        report.services.push(ServiceSummary {
            protocol: "http",
            name: name.clone(),
            port,
            scheme,
        });
    }
    for (protocol, section) in [("tcp", &config.tcp), ("udp", &config.udp)] {
        for (name, svc) in entries(section, "services") {
            let server = svc
                .pointer("/loadBalancer/servers/0")
                .or_else(|| svc.pointer("/loadbalancer/servers/0"));
            report.services.push(ServiceSummary {
                protocol,
                name,
                port: server.and_then(|s| text(s.get("port"))),
                scheme: None,
            });
        }
    }
    for (name, mw) in &config.http.middlewares {
        report.middlewares.push(MiddlewareSummary {
            name: name.clone(),
            kind: mw
                .0
                .keys()
                .next()
                .map(|k| k.to_ascii_lowercase())
                .unwrap_or_default(),
        });
    }
    for (name, mw) in entries(&config.tcp, "middlewares") {
        let kind = mw
            .as_object()
            .and_then(|m| m.keys().next().cloned())
            .unwrap_or_default();
        report.middlewares.push(MiddlewareSummary {
            name,
            kind: kind.to_ascii_lowercase(),
        });
    }
    let port_of = |protocol: &str, service: &str| -> Option<String> {
        let local = local_name(service, provider)?;
        report
            .services
            .iter()
            .find(|s| s.protocol == protocol && s.name == local)
            .and_then(|s| s.port.clone())
    };
    let mut routers = Vec::new();
    for (name, r) in &config.http.routers {
        let priority_explicit = r.priority != 0;
        routers.push(RouterSummary {
            protocol: "http",
            name: name.clone(),
            rule: Some(r.rule.clone()),
            rule_syntax: r.rule_syntax.map(syntax),
            default_rule: false,
            priority: if priority_explicit {
                r.priority
            } else {
                len(&r.rule)
            },
            priority_source: source(priority_explicit),
            entrypoints: r.entry_points.clone(),
            tls: r.tls.as_ref().map(|t| TlsSummary {
                cert_resolver: t.cert_resolver.clone(),
                options: t.options.clone(),
                passthrough: false,
                domains: t
                    .domains
                    .iter()
                    .map(|d| DomainSummary {
                        main: d.main.clone(),
                        sans: d.sans.clone(),
                    })
                    .collect(),
            }),
            middlewares: r.middlewares.clone(),
            service: Some(r.service.clone()).filter(|s| !s.is_empty()),
            port: port_of("http", &r.service),
        });
    }
    for (protocol, section) in [("tcp", &config.tcp), ("udp", &config.udp)] {
        for (name, r) in entries(section, "routers") {
            routers.push(layer4_router(protocol, name, &r, &port_of));
        }
    }
    report.routers = routers;
}

fn layer4_router(
    protocol: &'static str,
    name: String,
    r: &Value,
    port_of: &dyn Fn(&str, &str) -> Option<String>,
) -> RouterSummary {
    let rule = text(r.get("rule"));
    let explicit = r
        .get("priority")
        .and_then(|p| text(Some(p)))
        .and_then(|p| p.trim().parse::<i64>().ok())
        .filter(|p| *p != 0);
    let service = text(r.get("service"));
    let tls = r.get("tls").map(|t| TlsSummary {
        cert_resolver: text(t.get("certResolver")),
        options: text(t.get("options")),
        passthrough: text(t.get("passthrough"))
            .and_then(|b| parse_bool(&b))
            .unwrap_or(false),
        domains: t
            .get("domains")
            .and_then(Value::as_array)
            .map(|ds| {
                ds.iter()
                    .map(|d| DomainSummary {
                        main: text(d.get("main")).unwrap_or_default(),
                        sans: list(d.get("sans")),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    });
    let default_priority = match rule.as_deref() {
        Some(rule) if rule.trim() == "HostSNI(`*`)" => -1,
        Some(rule) => len(rule),
        None => 0,
    };
    RouterSummary {
        protocol,
        name,
        rule_syntax: text(r.get("ruleSyntax")),
        default_rule: false,
        priority: explicit.unwrap_or(default_priority),
        priority_source: source(explicit.is_some()),
        entrypoints: list(r.get("entryPoints")),
        tls,
        middlewares: list(r.get("middlewares")),
        port: service.as_deref().and_then(|s| port_of(protocol, s)),
        service,
        rule,
    }
}

/// `(name, value)` pairs of `section` (`routers`, `services`, …) of a raw TCP/UDP config.
fn entries(config: &Option<Value>, section: &str) -> Vec<(String, Value)> {
    config
        .as_ref()
        .and_then(|c| c.get(section))
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(|i| text(Some(i))).collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// The port (or URL) and scheme of a load balancer's first server template.
fn http_server(svc: &Service) -> (Option<String>, Option<String>) {
    let Some(server) = svc.load_balancer.as_ref().and_then(|lb| lb.servers.first()) else {
        return (None, None);
    };
    let port = server
        .port
        .clone()
        .or_else(|| Some(server.url.clone()).filter(|u| !u.is_empty()));
    (port, server.scheme.clone())
}

/// `service` without `@provider` when it is local to `provider`; `None` for another provider.
fn local_name<'a>(service: &'a str, provider: &str) -> Option<&'a str> {
    match service.rsplit_once('@') {
        Some((name, p)) if p == provider => Some(name),
        Some(_) => None,
        None => Some(service),
    }
}

/// Traefik's default priority: the rule's length in bytes.
fn len(rule: &str) -> i64 {
    i64::try_from(rule.len()).unwrap_or(i64::MAX)
}

fn source(explicit: bool) -> &'static str {
    if explicit {
        "explicit"
    } else {
        "rule length"
    }
}

fn syntax(s: RuleSyntax) -> String {
    match s {
        RuleSyntax::V1 => "v1",
        RuleSyntax::V2 => "v2",
        RuleSyntax::V3 => "v3",
    }
    .into()
}
