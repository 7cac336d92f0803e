//! Workloads to configuration, through the label engine.

use crate::config::dynamic::RuleSyntax;
use crate::provider::labels::{merge, parse_workload, resolve, LabelSettings, Workload};

use super::config::{DockerProviderConfig, Mode, ProviderKind};
use super::watch::Rendered;

/// The label engine's settings for this provider in `mode`.
pub(crate) fn settings(
    cfg: &DockerProviderConfig,
    kind: ProviderKind,
    mode: Mode,
    default_rule_syntax: RuleSyntax,
) -> LabelSettings {
    LabelSettings {
        provider: kind.name(),
        swarm_mode: mode == Mode::Swarm,
        prefixes: cfg.label_prefixes.clone(),
        exposed_by_default: cfg.exposed_by_default,
        default_rule: cfg.default_rule.clone(),
        default_rule_syntax,
        constraints: cfg.constraints.clone().filter(|c| !c.trim().is_empty()),
        network: cfg.network.clone().filter(|n| !n.is_empty()),
        allow_empty_services: cfg.allow_empty_services,
    }
}

/// Reads every workload's labels, resolves its servers and merges the results.
/// A workload whose labels are invalid is left out, and so is a router that
/// cannot be completed; each problem is returned (and logged by the caller).
pub(crate) fn render(workloads: &[Workload], s: &LabelSettings) -> Rendered {
    let mut parts = Vec::new();
    let mut issues = Vec::new();
    for w in workloads {
        match parse_workload(&w.name, &w.labels, s) {
            Ok(None) => {}
            Ok(Some(labeled)) => {
                issues.extend(labeled.warnings.iter().cloned());
                match resolve(&labeled, w, s) {
                    Ok(config) => parts.push((w.name.clone(), config)),
                    Err(e) => issues.extend(e),
                }
            }
            Err(e) => issues.extend(e),
        }
    }
    let (config, duplicates) = merge(parts);
    issues.extend(duplicates.into_iter().map(|(_, issue)| issue));
    // Replicas of one container workload report the same problems.
    let mut unique = Vec::with_capacity(issues.len());
    for issue in issues {
        if !unique.contains(&issue) {
            unique.push(issue);
        }
    }
    Rendered {
        config,
        issues: unique,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::provider::labels::{Endpoint, Severity};

    fn workload(name: &str, labels: &[(&str, &str)], ip: &str) -> Workload {
        Workload {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            networks: vec!["net".into()],
            endpoints: vec![Endpoint {
                id: format!("t-{ip}"),
                addresses: BTreeMap::from([("net".to_string(), ip.parse().unwrap())]),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn valid_workloads_are_routed_and_invalid_ones_reported() {
        let cfg = DockerProviderConfig::default();
        let s = settings(&cfg, ProviderKind::Swarm, Mode::Swarm, RuleSyntax::V3);
        let good = workload(
            "stack_web",
            &[
                ("traefik.http.routers.web.rule", "Host(`web.test`)"),
                ("traefik.http.services.web.loadbalancer.server.port", "8000"),
            ],
            "10.0.1.5",
        );
        let bad = workload(
            "stack_api",
            &[(
                "traefik.http.services.api.loadbalancer.server.port",
                "eighty",
            )],
            "10.0.1.6",
        );
        let out = render(&[good, bad], &s);
        assert_eq!(out.config.http.routers["web"].rule, "Host(`web.test`)");
        let lb = out.config.http.services["web"]
            .load_balancer
            .as_ref()
            .unwrap();
        assert_eq!(lb.servers[0].url, "http://10.0.1.5:8000");
        assert!(!out.config.http.services.contains_key("api"));
        let issue = out
            .issues
            .iter()
            .find(|i| i.workload == "stack_api")
            .unwrap();
        assert_eq!(issue.severity, Severity::Error);
        assert_eq!(
            issue.label.as_deref(),
            Some("traefik.http.services.api.loadbalancer.server.port")
        );
    }

    #[test]
    fn settings_follow_the_configuration() {
        let cfg = DockerProviderConfig {
            exposed_by_default: false,
            network: Some("proxy".into()),
            constraints: Some(" ".into()),
            label_prefixes: vec!["wharf".into()],
            ..Default::default()
        };
        let s = settings(&cfg, ProviderKind::Docker, Mode::Containers, RuleSyntax::V2);
        assert_eq!(s.provider, "docker");
        assert!(!s.swarm_mode && !s.exposed_by_default);
        assert_eq!(s.network.as_deref(), Some("proxy"));
        assert_eq!(s.constraints, None);
        assert_eq!(s.prefixes, ["wharf"]);
        assert_eq!(s.default_rule_syntax, RuleSyntax::V2);
        let s = settings(&cfg, ProviderKind::Docker, Mode::Swarm, RuleSyntax::V3);
        assert!(s.swarm_mode);
    }
}
