//! Traefik's merge of the configurations of several workloads
//! (`pkg/provider/configuration.go`, `Merge`): workloads are taken in name order;
//! same-named load-balancer services with the same settings union their servers;
//! any other resource defined twice must be identical, otherwise every definition
//! of that name is dropped and reported.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::config::dynamic::Service;
use crate::config::DynamicConfig;

use super::{IssueKind, LabelIssue, Severity};

/// Merges workload configurations; returns the result and, per workload involved,
/// the definitions dropped because of a conflict.
pub fn merge(
    mut parts: Vec<(String, DynamicConfig)>,
) -> (DynamicConfig, Vec<(String, LabelIssue)>) {
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    let mut m = Merger::default();
    let mut out = DynamicConfig::default();
    for (workload, config) in parts {
        let DynamicConfig {
            http,
            tcp,
            udp,
            tls,
        } = config;
        for (name, service) in http.services {
            let key = ("http.services", name.clone());
            let ok = match out.http.services.get_mut(&name) {
                None => {
                    out.http.services.insert(name, service);
                    true
                }
                Some(have) => union_service(have, service),
            };
            m.record(key, &workload, ok);
        }
        m.section(
            "http.routers",
            &workload,
            &mut out.http.routers,
            http.routers,
        );
        m.section(
            "http.middlewares",
            &workload,
            &mut out.http.middlewares,
            http.middlewares,
        );
        m.section(
            "http.serversTransports",
            &workload,
            &mut out.http.servers_transports,
            http.servers_transports,
        );
        m.section("tls.stores", &workload, &mut out.tls.stores, tls.stores);
        m.section("tls.options", &workload, &mut out.tls.options, tls.options);
        for cert in tls.certificates {
            if !out.tls.certificates.contains(&cert) {
                out.tls.certificates.push(cert);
            }
        }
        m.raw("tcp", &workload, &mut out.tcp, tcp);
        m.raw("udp", &workload, &mut out.udp, udp);
    }
    let issues = m.finish(&mut out);
    (out, issues)
}

/// Adds `add`'s servers to `have` when both are load balancers with the same
/// settings; otherwise the two must be equal.
fn union_service(have: &mut Service, add: Service) -> bool {
    match (&mut have.load_balancer, add.load_balancer.clone()) {
        (Some(lb), Some(mut other)) => {
            let servers = std::mem::take(&mut other.servers);
            let mut mine = lb.clone();
            mine.servers.clear();
            if mine != other
                || have.weighted != add.weighted
                || have.mirroring != add.mirroring
                || have.failover != add.failover
            {
                return false;
            }
            for server in servers {
                if !lb.servers.iter().any(|s| s.url == server.url) {
                    lb.servers.push(server);
                }
            }
            true
        }
        _ => *have == add,
    }
}

#[derive(Default)]
struct Merger {
    /// (section, name) → workloads that defined it.
    definers: BTreeMap<(&'static str, String), Vec<String>>,
    conflicts: BTreeSet<(&'static str, String)>,
}

impl Merger {
    fn record(&mut self, key: (&'static str, String), workload: &str, ok: bool) {
        if !ok {
            self.conflicts.insert(key.clone());
        }
        self.definers
            .entry(key)
            .or_default()
            .push(workload.to_string());
    }

    fn section<T: PartialEq>(
        &mut self,
        section: &'static str,
        workload: &str,
        into: &mut BTreeMap<String, T>,
        from: BTreeMap<String, T>,
    ) {
        for (name, item) in from {
            let ok = match into.get(&name) {
                None => {
                    into.insert(name.clone(), item);
                    true
                }
                Some(have) => *have == item,
            };
            self.record((section, name), workload, ok);
        }
    }

    /// Raw `tcp`/`udp` sections: routers and middlewares must be equal; services
    /// union their servers (by `address`) when the rest is equal.
    fn raw(
        &mut self,
        family: &'static str,
        workload: &str,
        into: &mut Option<Value>,
        from: Option<Value>,
    ) {
        let Some(Value::Object(from)) = from else {
            return;
        };
        let into = into.get_or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(into) = into else { return };
        for (section, items) in from {
            let Value::Object(items) = items else {
                continue;
            };
            let key: &'static str = match (family, section.as_str()) {
                ("tcp", "routers") => "tcp.routers",
                ("tcp", "services") => "tcp.services",
                ("tcp", "middlewares") => "tcp.middlewares",
                ("udp", "routers") => "udp.routers",
                ("udp", "services") => "udp.services",
                _ => continue,
            };
            let target = into
                .entry(section.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(target) = target else {
                continue;
            };
            for (name, item) in items {
                let ok = match target.get_mut(&name) {
                    None => {
                        target.insert(name.clone(), item);
                        true
                    }
                    Some(have) if section == "services" => union_raw_service(have, item),
                    Some(have) => *have == item,
                };
                self.record((key, name), workload, ok);
            }
        }
    }

    /// Removes conflicting names and reports them once per workload that defined them.
    fn finish(self, out: &mut DynamicConfig) -> Vec<(String, LabelIssue)> {
        let mut issues = Vec::new();
        for (section, name) in &self.conflicts {
            match *section {
                "http.services" => drop(out.http.services.remove(name)),
                "http.routers" => drop(out.http.routers.remove(name)),
                "http.middlewares" => drop(out.http.middlewares.remove(name)),
                "http.serversTransports" => drop(out.http.servers_transports.remove(name)),
                "tls.stores" => drop(out.tls.stores.remove(name)),
                "tls.options" => drop(out.tls.options.remove(name)),
                raw => {
                    let (family, sub) = raw.split_once('.').unwrap_or((raw, ""));
                    let value = if family == "tcp" {
                        &mut out.tcp
                    } else {
                        &mut out.udp
                    };
                    if let Some(Value::Object(items)) = value.as_mut().and_then(|v| v.get_mut(sub))
                    {
                        items.remove(name);
                    }
                }
            }
            let mut workloads = self
                .definers
                .get(&(section, name.clone()))
                .cloned()
                .unwrap_or_default();
            workloads.dedup();
            let message = format!(
                "`{section}.{name}` is defined with different configurations by {}; every definition is dropped",
                workloads.join(", ")
            );
            for workload in workloads {
                issues.push((
                    workload.clone(),
                    LabelIssue {
                        workload,
                        label: None,
                        severity: Severity::Error,
                        kind: IssueKind::Duplicate,
                        message: message.clone(),
                    },
                ));
            }
        }
        issues
    }
}

fn union_raw_service(have: &mut Value, add: Value) -> bool {
    let servers_of = |v: &Value| {
        v.pointer("/loadBalancer/servers")
            .and_then(Value::as_array)
            .cloned()
    };
    let (Some(mut mine), Some(theirs)) = (servers_of(have), servers_of(&add)) else {
        return *have == add;
    };
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(lb) = v.get_mut("loadBalancer").and_then(Value::as_object_mut) {
            lb.remove("servers");
        }
        v
    };
    if strip(have) != strip(&add) {
        return false;
    }
    for server in theirs {
        let address = server.get("address");
        if !mine.iter().any(|s| s.get("address") == address) {
            mine.push(server);
        }
    }
    if let Some(lb) = have.get_mut("loadBalancer").and_then(Value::as_object_mut) {
        lb.insert("servers".into(), Value::Array(mine));
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::dynamic::{LoadBalancer, Router, Server};
    use serde_json::json;

    fn part(workload: &str, urls: &[&str], pass_host: bool, rule: &str) -> (String, DynamicConfig) {
        let mut c = DynamicConfig::default();
        let lb = LoadBalancer {
            servers: urls
                .iter()
                .map(|u| Server {
                    url: u.to_string(),
                    ..Server::default()
                })
                .collect(),
            pass_host_header: pass_host,
            ..LoadBalancer::default()
        };
        c.http.services.insert(
            "app".into(),
            Service {
                load_balancer: Some(lb),
                ..Service::default()
            },
        );
        c.http.routers.insert(
            "app".into(),
            Router {
                rule: rule.into(),
                service: "app".into(),
                ..Router::default()
            },
        );
        (workload.to_string(), c)
    }

    #[test]
    fn same_services_union_their_servers() {
        let (c, issues) = merge(vec![
            part(
                "b",
                &["http://10.0.0.2:80", "http://10.0.0.1:80"],
                true,
                "Host(`a`)",
            ),
            part("a", &["http://10.0.0.1:80"], true, "Host(`a`)"),
        ]);
        assert!(issues.is_empty(), "{issues:?}");
        let urls: Vec<_> = c.http.services["app"]
            .load_balancer
            .as_ref()
            .unwrap()
            .servers
            .iter()
            .map(|s| s.url.clone())
            .collect();
        assert_eq!(urls, vec!["http://10.0.0.1:80", "http://10.0.0.2:80"]);
        assert!(c.http.routers.contains_key("app"));
    }

    #[test]
    fn conflicting_definitions_are_dropped_and_reported_per_workload() {
        let (c, issues) = merge(vec![
            part("a", &["http://10.0.0.1:80"], true, "Host(`a`)"),
            part("b", &["http://10.0.0.2:80"], false, "Host(`b`)"),
            part("c", &["http://10.0.0.3:80"], true, "Host(`a`)"),
        ]);
        assert!(c.http.services.is_empty());
        assert!(c.http.routers.is_empty());
        assert_eq!(issues.len(), 6, "{issues:?}");
        let (workload, issue) = &issues[0];
        assert_eq!(workload, "a");
        assert_eq!(issue.kind, IssueKind::Duplicate);
        assert!(issue.message.contains("by a, b, c"), "{}", issue.message);
    }

    #[test]
    fn raw_tcp_services_union_by_address() {
        let tcp = |addr: &str, rule: &str| DynamicConfig {
            tcp: Some(json!({
                "routers": {"pg": {"rule": rule, "service": "pg"}},
                "services": {"pg": {"loadBalancer": {"servers": [{"address": addr}]}}}
            })),
            ..DynamicConfig::default()
        };
        let (c, issues) = merge(vec![
            ("a".into(), tcp("10.0.0.1:5432", "HostSNI(`*`)")),
            ("b".into(), tcp("10.0.0.2:5432", "HostSNI(`*`)")),
        ]);
        assert!(issues.is_empty());
        let tcp_conf = c.tcp.unwrap();
        assert_eq!(
            tcp_conf["services"]["pg"]["loadBalancer"]["servers"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let (c, issues) = merge(vec![
            ("a".into(), tcp("10.0.0.1:5432", "HostSNI(`a`)")),
            ("b".into(), tcp("10.0.0.2:5432", "HostSNI(`b`)")),
        ]);
        assert_eq!(issues.len(), 2);
        assert!(c.tcp.unwrap()["routers"].as_object().unwrap().is_empty());
    }
}
