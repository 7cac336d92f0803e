//! `traefik.tcp.*` and `traefik.udp.*`: kept as raw values in the configuration (TCP
//! and UDP are routed in a later release), with Traefik's structure and spelling,
//! assignment (router → the only service) and server templates
//! (`loadBalancer.servers[0].port`) that [`materialize`] turns into addresses.

use std::net::{IpAddr, SocketAddr};

use serde_json::{json, Map, Value};

use crate::config::tree::Tree;

use super::assign::Built;
use super::decode::{sections, tree_error, unknown_key, valid_name, Origins};
use super::{IssueKind, Issues};

const TCP_ROUTER: &[&str] = &[
    "rule",
    "ruleSyntax",
    "entryPoints",
    "service",
    "middlewares",
    "priority",
    "tls",
];
const UDP_ROUTER: &[&str] = &["entryPoints", "service"];
const TCP_LB: &[&str] = &["proxyProtocol", "terminationDelay", "serversTransport"];
const UDP_LB: &[&str] = &[];
const TCP_SERVER: &[&str] = &["port", "tls", "weight"];
const UDP_SERVER: &[&str] = &["port"];
const LISTS: &[&str] = &["entryPoints", "middlewares"];

/// Decodes the `tcp` or `udp` family of a workload's labels.
pub(crate) fn decode(
    family: &str,
    tree: &Tree,
    origins: &Origins,
    issues: &mut Issues,
) -> Option<Value> {
    let tcp = family == "tcp";
    let known: &[&str] = if tcp {
        &["routers", "services", "middlewares"]
    } else {
        &["routers", "services"]
    };
    let mut out = Map::new();
    for (section, items) in sections(tree, family, known, origins, issues) {
        let mut named = Map::new();
        for (name, node) in items {
            let base = format!("{family}.{section}.{name}");
            if !valid_name(&name, &base, origins, issues) {
                continue;
            }
            let value = match section.as_str() {
                "routers" => object(
                    &node,
                    &base,
                    if tcp { TCP_ROUTER } else { UDP_ROUTER },
                    origins,
                    issues,
                ),
                "services" => service(&node, &base, tcp, origins, issues),
                _ => node
                    .deserialize_into::<Value>()
                    .map_err(|e| tree_error(&base, &e, origins, issues))
                    .ok(),
            };
            if let Some(value) = value {
                named.insert(name, value);
            }
        }
        out.insert(section, Value::Object(named));
    }
    Some(Value::Object(out))
}

/// A map whose keys must be among `known`; keys are spelled as `known` spells them.
fn object(
    node: &Tree,
    base: &str,
    known: &[&str],
    origins: &Origins,
    issues: &mut Issues,
) -> Option<Value> {
    let Tree::Map(map) = node else {
        return Some(Value::Object(Map::new()));
    };
    let mut out = Map::new();
    let mut ok = true;
    for (key, node) in map {
        let Some(name) = known.iter().find(|k| k.eq_ignore_ascii_case(key)) else {
            unknown_key(&format!("{base}.{key}"), key, known, origins, issues);
            ok = false;
            continue;
        };
        match node.deserialize_into::<Value>() {
            Ok(Value::String(s)) if LISTS.contains(name) => {
                let items = s.split(',').map(str::trim).filter(|p| !p.is_empty());
                out.insert(name.to_string(), items.map(|p| json!(p)).collect());
            }
            Ok(v) => {
                out.insert(name.to_string(), v);
            }
            Err(e) => {
                tree_error(&format!("{base}.{key}"), &e, origins, issues);
                ok = false;
            }
        }
    }
    ok.then_some(Value::Object(out))
}

fn service(
    node: &Tree,
    base: &str,
    tcp: bool,
    origins: &Origins,
    issues: &mut Issues,
) -> Option<Value> {
    let Tree::Map(map) = node else {
        return Some(json!({"loadBalancer": {"servers": [{}]}}));
    };
    let mut out = Map::new();
    let mut ok = true;
    for (key, child) in map {
        let path = format!("{base}.{key}");
        if key.eq_ignore_ascii_case("loadbalancer") {
            match load_balancer(child, &path, tcp, origins, issues) {
                Some(lb) => {
                    out.insert("loadBalancer".into(), lb);
                }
                None => ok = false,
            }
        } else if key.eq_ignore_ascii_case("weighted") {
            match child.deserialize_into::<Value>() {
                Ok(v) => {
                    out.insert("weighted".into(), v);
                }
                Err(e) => {
                    tree_error(&path, &e, origins, issues);
                    ok = false;
                }
            }
        } else {
            unknown_key(&path, key, &["loadBalancer", "weighted"], origins, issues);
            ok = false;
        }
    }
    ok.then_some(Value::Object(out))
}

/// A load balancer: `server.*` becomes the template `servers[0]`.
fn load_balancer(
    node: &Tree,
    base: &str,
    tcp: bool,
    origins: &Origins,
    issues: &mut Issues,
) -> Option<Value> {
    let mut server = Tree::Null;
    let mut rest = std::collections::BTreeMap::new();
    if let Tree::Map(map) = node {
        for (key, child) in map {
            if key.eq_ignore_ascii_case("server") {
                server.merge(child.clone());
            } else {
                rest.insert(key.clone(), child.clone());
            }
        }
    }
    let known = if tcp { TCP_LB } else { UDP_LB };
    let mut lb = match object(&Tree::Map(rest), base, known, origins, issues)? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let fields = if tcp { TCP_SERVER } else { UDP_SERVER };
    let server = object(&server, &format!("{base}.server"), fields, origins, issues)?;
    lb.insert("servers".into(), Value::Array(vec![server]));
    Some(Value::Object(lb))
}

/// Traefik's TCP/UDP assignment: a default service when none is labelled, routers
/// without service get the only one (dropped when there are several), TCP routers
/// without rule are dropped. On Swarm, a service without port rejects the workload.
pub(crate) fn assign(built: &mut Built, default_name: &str, swarm_mode: bool, issues: &mut Issues) {
    for (family, value) in [
        ("tcp", &mut built.config.tcp),
        ("udp", &mut built.config.udp),
    ] {
        let Some(Value::Object(conf)) = value else {
            continue;
        };
        let services = conf
            .entry("services")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(services) = services {
            if services.is_empty() {
                services.insert(
                    default_name.into(),
                    json!({"loadBalancer": {"servers": [{}]}}),
                );
            }
        }
        let service_names: Vec<String> = match conf.get("services") {
            Some(Value::Object(s)) => s.keys().cloned().collect(),
            _ => Vec::new(),
        };
        if let Some(Value::Object(routers)) = conf.get_mut("routers") {
            let names: Vec<String> = routers.keys().cloned().collect();
            for name in names {
                let label = built.origins.find(&format!("{family}.routers.{name}"));
                let Some(Value::Object(router)) = routers.get_mut(&name) else {
                    continue;
                };
                let rule_empty = router
                    .get("rule")
                    .and_then(Value::as_str)
                    .is_none_or(|r| r.trim().is_empty());
                if family == "tcp" && rule_empty {
                    routers.remove(&name);
                    issues.dropped(
                        label,
                        IssueKind::InvalidRule,
                        format!("TCP router `{name}` dropped: it has no rule"),
                    );
                    continue;
                }
                if router
                    .get("service")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    if let [only] = service_names.as_slice() {
                        router.insert("service".into(), json!(only));
                    } else {
                        routers.remove(&name);
                        issues.dropped(label, IssueKind::TooManyServices, format!(
                            "{} router `{name}` dropped: it has no service and several services are defined ({})",
                            family.to_uppercase(),
                            service_names.join(", ")
                        ));
                    }
                }
            }
        }
        if !swarm_mode {
            continue;
        }
        for (name, template) in templates(conf) {
            if template.get("port").is_none() {
                issues.error(None, IssueKind::MissingPort, format!(
                    "{} service `{name}` has no port: set the label `traefik.{family}.services.{name}.loadbalancer.server.port` (mandatory in Swarm mode)",
                    family.to_uppercase()
                ));
            }
        }
    }
}

/// The server templates of a `tcp`/`udp` section, by service name.
fn templates(conf: &mut Map<String, Value>) -> Vec<(String, &mut Map<String, Value>)> {
    let Some(Value::Object(services)) = conf.get_mut("services") else {
        return Vec::new();
    };
    services
        .iter_mut()
        .filter_map(|(name, service)| {
            let server = service
                .get_mut("loadBalancer")?
                .get_mut("servers")?
                .get_mut(0)?
                .as_object_mut()?;
            Some((name.clone(), server))
        })
        .collect()
}

/// Whether a `tcp`/`udp` section has server templates left to fill.
pub(crate) fn has_templates(value: &Option<Value>) -> bool {
    let mut value = value.clone();
    match &mut value {
        Some(Value::Object(conf)) => templates(conf)
            .iter()
            .any(|(_, t)| !t.contains_key("address")),
        _ => false,
    }
}

/// Replaces each server template by one server per IP (`address: ip:port`); a
/// template without port takes `default_port`, else the service is reported.
pub(crate) fn materialize(
    value: &mut Option<Value>,
    ips: &[IpAddr],
    default_port: Option<u16>,
    issues: &mut Issues,
) {
    let Some(Value::Object(conf)) = value else {
        return;
    };
    let Some(Value::Object(services)) = conf.get_mut("services") else {
        return;
    };
    for (name, service) in services.iter_mut() {
        let Some(servers) = service
            .get_mut("loadBalancer")
            .and_then(|lb| lb.get_mut("servers"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        let Some(Value::Object(template)) = servers.first().cloned() else {
            continue;
        };
        if template.contains_key("address") {
            continue;
        }
        let port = match template.get("port").and_then(Value::as_str) {
            Some(p) => p.trim().parse::<u16>().ok(),
            None => default_port,
        };
        let Some(port) = port else {
            issues.error(
                None,
                IssueKind::MissingPort,
                format!("service `{name}` has no valid port"),
            );
            continue;
        };
        *servers = ips
            .iter()
            .map(|ip| {
                let mut server = template.clone();
                server.remove("port");
                server.insert(
                    "address".into(),
                    json!(SocketAddr::new(*ip, port).to_string()),
                );
                Value::Object(server)
            })
            .collect();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::provider::labels::v2;

    fn built(pairs: &[(&str, &str)]) -> (Built, Issues) {
        let (mut b, mut issues) = v2::tests::build_from(pairs);
        assign(&mut b, "db", true, &mut issues);
        (b, issues)
    }

    #[test]
    fn tcp_router_gets_the_only_service_and_servers_materialize() {
        let (mut b, mut issues) = built(&[
            ("tcp.routers.pg.rule", "HostSNI(`*`)"),
            ("tcp.routers.pg.entrypoints", "pg"),
            ("tcp.services.pg.loadbalancer.server.port", "5432"),
        ]);
        issues.check().unwrap();
        let tcp = b.config.tcp.clone().unwrap();
        assert_eq!(tcp["routers"]["pg"]["service"], "pg");
        assert_eq!(tcp["routers"]["pg"]["entryPoints"], json!(["pg"]));
        assert!(has_templates(&b.config.tcp));
        materialize(
            &mut b.config.tcp,
            &["10.0.0.5".parse().unwrap()],
            None,
            &mut issues,
        );
        let tcp = b.config.tcp.unwrap();
        assert_eq!(
            tcp["services"]["pg"]["loadBalancer"]["servers"],
            json!([{"address": "10.0.0.5:5432"}])
        );
    }

    #[test]
    fn tcp_errors() {
        let (_, mut issues) = built(&[
            ("tcp.routers.pg.entrypoints", "pg"),
            ("udp.routers.u.entrypoints", "dns"),
        ]);
        assert_eq!(issues.warnings[0].kind, IssueKind::InvalidRule);
        let errors = issues.check().unwrap_err();
        assert!(
            errors.iter().all(|e| e.kind == IssueKind::MissingPort),
            "{errors:?}"
        );
        let (_, mut issues) = built(&[("tcp.services.pg.loadbalancer.server.prot", "1")]);
        let e = issues.check().unwrap_err().remove(0);
        assert_eq!(
            e.kind,
            IssueKind::UnknownKey {
                suggestion: Some("traefik.tcp.services.pg.loadbalancer.server.port".into())
            }
        );
    }
}
