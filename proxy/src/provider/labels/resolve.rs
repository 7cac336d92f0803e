//! Stage 2: server templates and the workload's endpoints become concrete servers,
//! reached on one network chosen without guessing.

use std::net::{IpAddr, SocketAddr};

use crate::config::dynamic::Server;
use crate::config::DynamicConfig;

use super::{
    layer4, IssueKind, Issues, LabelIssue, LabelSettings, Labeled, Workload, STACK_NAMESPACE_LABEL,
};

/// Turns the server templates of `labeled` into one `scheme://ip:port` server per
/// endpoint on the chosen network (one server at the service's VIP with `lbswarm`).
///
/// The network is the one labelled (`traefik.swarm.network` / `traefik.docker.network`,
/// with or without the stack's `<stack>_` prefix), else the provider's default network,
/// else the only attached one; any other case is an error. Endpoints without an
/// address on that network are skipped. Without endpoints (and without `lbswarm`),
/// the workload contributes nothing unless `allow_empty_services` is set.
pub fn resolve(
    labeled: &Labeled,
    w: &Workload,
    s: &LabelSettings,
) -> Result<DynamicConfig, Vec<LabelIssue>> {
    let mut issues = Issues::new(&w.name);
    let mut config = labeled.config.clone();
    let http_templates = config.http.services.values().any(|service| {
        service
            .load_balancer
            .as_ref()
            .and_then(|lb| lb.servers.first())
            .is_some_and(|server| server.url.is_empty())
    });
    if !http_templates && !layer4::has_templates(&config.tcp) && !layer4::has_templates(&config.udp)
    {
        return Ok(config);
    }
    let lbswarm = labeled.lbswarm && s.swarm_mode;
    if !lbswarm && w.endpoints.is_empty() && !s.allow_empty_services {
        return Ok(DynamicConfig::default());
    }
    let Some(network) = choose_network(labeled.network.as_deref(), w, s, &mut issues) else {
        issues.check()?;
        return Ok(DynamicConfig::default());
    };
    let ips: Vec<IpAddr> = if lbswarm {
        match w.vips.get(&network) {
            Some(vip) => vec![*vip],
            None => {
                issues.error(
                    None,
                    IssueKind::Network,
                    format!("lbswarm is set but the service has no virtual IP on network `{network}` (is its endpoint mode dnsrr?)"),
                );
                Vec::new()
            }
        }
    } else {
        w.endpoints
            .iter()
            .filter_map(|e| e.addresses.get(&network).copied())
            .collect()
    };
    issues.check()?;
    let default_port = if s.swarm_mode {
        None
    } else {
        w.exposed_ports.iter().copied().min()
    };
    for (name, service) in config.http.services.iter_mut() {
        let Some(lb) = &mut service.load_balancer else {
            continue;
        };
        let Some(template) = lb.servers.first().cloned() else {
            continue;
        };
        if !template.url.is_empty() {
            continue;
        }
        let port = match &template.port {
            Some(p) => p.trim().parse::<u16>().ok(),
            None => default_port,
        };
        let Some(port) = port else {
            issues.error(
                None,
                IssueKind::MissingPort,
                format!("service `{name}` has no port: set the label `traefik.http.services.{name}.loadbalancer.server.port` (the container exposes no port)"),
            );
            continue;
        };
        let scheme = template.scheme.as_deref().unwrap_or("http");
        lb.servers = ips
            .iter()
            .map(|ip| Server {
                url: format!("{scheme}://{}", SocketAddr::new(*ip, port)),
                weight: template.weight,
                port: None,
                scheme: None,
            })
            .collect();
    }
    layer4::materialize(&mut config.tcp, &ips, default_port, &mut issues);
    layer4::materialize(&mut config.udp, &ips, default_port, &mut issues);
    issues.check()?;
    Ok(config)
}

/// The attached network to reach the workload on, or an error.
fn choose_network(
    wanted: Option<&str>,
    w: &Workload,
    s: &LabelSettings,
    issues: &mut Issues,
) -> Option<String> {
    let stack = w.labels.get(STACK_NAMESPACE_LABEL);
    let find = |want: &str| -> Option<String> {
        w.networks
            .iter()
            .find(|n| n.as_str() == want)
            .or_else(|| {
                let prefixed = format!("{}_{want}", stack?);
                w.networks.iter().find(|n| **n == prefixed)
            })
            .cloned()
    };
    let attached = if w.networks.is_empty() {
        "none".to_string()
    } else {
        w.networks.join(", ")
    };
    let label_name = format!("traefik.{}.network", s.provider);
    if let Some(want) = wanted {
        let found = find(want);
        if found.is_none() {
            let key = w
                .labels
                .iter()
                .find(|(k, v)| {
                    let k = k.to_ascii_lowercase();
                    (k.ends_with(".swarm.network") || k.ends_with(".docker.network"))
                        && v.trim() == want
                })
                .map(|(k, _)| k.as_str());
            let tried = stack
                .map(|st| format!(" or `{st}_{want}`"))
                .unwrap_or_default();
            issues.error(
                key,
                IssueKind::Network,
                format!("the workload is not attached to network `{want}`{tried} (attached: {attached})"),
            );
        }
        return found;
    }
    if let Some(default) = s.network.as_deref().filter(|n| !n.is_empty()) {
        let found = find(default);
        if found.is_none() {
            issues.error(
                None,
                IssueKind::Network,
                format!("the workload is not attached to the provider's network `{default}` (attached: {attached}); attach it or set the label `{label_name}`"),
            );
        }
        return found;
    }
    match w.networks.as_slice() {
        [only] => Some(only.clone()),
        [] => {
            issues.error(
                None,
                IssueKind::Network,
                "the workload is not attached to any network",
            );
            None
        }
        _ => {
            issues.error(
                None,
                IssueKind::Network,
                format!("the workload is attached to several networks ({attached}) and none is chosen: set the label `{label_name}`"),
            );
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::provider::labels::{parse_workload, Endpoint};

    fn workload(labels: &[(&str, &str)], networks: &[&str]) -> Workload {
        let endpoint = |id: &str, last: u8| Endpoint {
            id: id.into(),
            addresses: networks
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), IpAddr::from([10, i as u8, 0, last])))
                .collect(),
        };
        Workload {
            name: "shop_web".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            networks: networks.iter().map(|n| n.to_string()).collect(),
            endpoints: vec![endpoint("t1", 1), endpoint("t2", 2)],
            vips: networks
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), IpAddr::from([10, i as u8, 0, 100])))
                .collect(),
            exposed_ports: Vec::new(),
        }
    }

    fn run(w: &Workload, s: &LabelSettings) -> Result<DynamicConfig, Vec<LabelIssue>> {
        let labeled = parse_workload(&w.name, &w.labels, s).unwrap().unwrap();
        resolve(&labeled, w, s)
    }

    fn urls(c: &DynamicConfig, service: &str) -> Vec<String> {
        let lb = c.http.services[service].load_balancer.as_ref().unwrap();
        lb.servers.iter().map(|s| s.url.clone()).collect()
    }

    const PORT: (&str, &str) = ("traefik.http.services.web.loadbalancer.server.port", "8080");

    #[test]
    fn network_from_label_with_or_without_stack_prefix() {
        let s = LabelSettings::swarm();
        let nets = ["shop_default", "shop_public"];
        for net in ["public", "shop_public"] {
            let w = workload(
                &[
                    PORT,
                    ("traefik.swarm.network", net),
                    (STACK_NAMESPACE_LABEL, "shop"),
                ],
                &nets,
            );
            let c = run(&w, &s).unwrap();
            assert_eq!(
                urls(&c, "web"),
                vec!["http://10.1.0.1:8080", "http://10.1.0.2:8080"]
            );
        }
    }

    #[test]
    fn default_network_and_single_network() {
        let mut s = LabelSettings::swarm();
        let w = workload(&[PORT], &["traefik-public"]);
        assert_eq!(
            urls(&run(&w, &s).unwrap(), "web")[0],
            "http://10.0.0.1:8080"
        );
        s.network = Some("traefik-public".into());
        let w = workload(&[PORT], &["shop_default", "traefik-public"]);
        assert_eq!(
            urls(&run(&w, &s).unwrap(), "web")[0],
            "http://10.1.0.1:8080"
        );
    }

    #[test]
    fn ambiguous_or_missing_networks_are_errors() {
        let s = LabelSettings::swarm();
        let w = workload(&[PORT], &["a", "b"]);
        let e = run(&w, &s).unwrap_err();
        assert_eq!(e[0].kind, IssueKind::Network);
        assert!(e[0].message.contains("several networks (a, b)"), "{}", e[0]);
        let w = workload(&[PORT, ("traefik.docker.network", "public")], &["a"]);
        let e = run(&w, &s).unwrap_err();
        assert_eq!(e[0].label.as_deref(), Some("traefik.docker.network"));
        let mut s = LabelSettings::swarm();
        s.network = Some("edge".into());
        assert!(run(&workload(&[PORT], &["a"]), &s).is_err());
    }

    #[test]
    fn lbswarm_uses_the_vip() {
        let s = LabelSettings::swarm();
        let w = workload(&[PORT, ("traefik.swarm.lbswarm", "true")], &["net"]);
        assert_eq!(
            urls(&run(&w, &s).unwrap(), "web"),
            vec!["http://10.0.0.100:8080"]
        );
        let mut w = workload(&[PORT, ("traefik.docker.lbswarm", "true")], &["net"]);
        w.vips.clear();
        assert_eq!(run(&w, &s).unwrap_err()[0].kind, IssueKind::Network);
    }

    #[test]
    fn no_endpoints_and_docker_ports() {
        let mut s = LabelSettings::swarm();
        let mut w = workload(&[PORT], &["net"]);
        w.endpoints.clear();
        assert_eq!(run(&w, &s).unwrap(), DynamicConfig::default());
        s.allow_empty_services = true;
        assert!(urls(&run(&w, &s).unwrap(), "web").is_empty());

        let s = LabelSettings::docker();
        let mut w = workload(&[], &["net"]);
        w.exposed_ports = vec![9000, 3000];
        assert_eq!(
            urls(&run(&w, &s).unwrap(), "shop-web"),
            vec!["http://10.0.0.1:3000", "http://10.0.0.2:3000"]
        );
        w.exposed_ports.clear();
        assert_eq!(run(&w, &s).unwrap_err()[0].kind, IssueKind::MissingPort);
    }
}
