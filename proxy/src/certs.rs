//! Which certificates the routers need: for every router with a certificate
//! resolver, the domain sets to obtain, one order per distinct set shared by every
//! router that needs it.
//!
//! A router uses the resolver of its own `tls.certResolver`. A router without a `tls`
//! section takes its TLS settings from each of its entrypoints' `http.tls` (as
//! Traefik does): that entrypoint's `certResolver` and `domains`. The names are:
//!
//! * each `tls.domains` entry (`main` and `sans`) as one set;
//! * the rule's `Host` names ([`Rule::exact_hosts`]) not already covered by those
//!   sets (exactly, or by a `*.` name), together as one more set, the first as main.
//!
//! Disabled routers, and rules whose hosts cannot be listed (`HostRegexp`, `!Host`,
//! no `Host`), contribute only their `tls.domains`.

pub mod setup;

use std::collections::BTreeMap;

use wharf_certstore::acme::{DesiredCertificates, Wanted};
use wharf_certstore::model::Domains;

use crate::config::dynamic::{Domain, RuleSyntax};
use crate::config::StaticConfig;
use crate::router::info::{RuntimeInfo, Status};
use crate::rules::Rule;

/// An entrypoint's TLS defaults (`entryPoints.<name>.http.tls`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryPointTlsDefaults {
    /// `certResolver`.
    pub cert_resolver: Option<String>,
    /// `domains`.
    pub domains: Vec<Domain>,
}

/// Every entrypoint's TLS defaults.
pub fn entrypoint_defaults(cfg: &StaticConfig) -> BTreeMap<String, EntryPointTlsDefaults> {
    cfg.entry_points
        .iter()
        .filter_map(|(name, ep)| {
            let tls = ep.http.tls.as_ref()?;
            Some((
                name.clone(),
                EntryPointTlsDefaults {
                    cert_resolver: tls.cert_resolver.clone().filter(|r| !r.trim().is_empty()),
                    domains: tls.domains.clone(),
                },
            ))
        })
        .collect()
}

/// The certificates the routers of `info` need, by resolver.
pub fn wanted(
    info: &RuntimeInfo,
    entrypoints: &BTreeMap<String, EntryPointTlsDefaults>,
    default_syntax: RuleSyntax,
) -> DesiredCertificates {
    // resolver -> sorted names -> wanted
    let mut out: BTreeMap<String, BTreeMap<Vec<String>, Wanted>> = BTreeMap::new();
    for (name, router) in &info.routers {
        if router.status == Status::Disabled {
            continue;
        }
        let cfg = &router.config;
        let hosts = Rule::parse(&cfg.rule, cfg.rule_syntax.unwrap_or(default_syntax))
            .ok()
            .and_then(|p| p.rule.exact_hosts())
            .unwrap_or_default();
        let sources: Vec<(String, &[Domain])> = match &cfg.tls {
            Some(tls) => tls
                .cert_resolver
                .iter()
                .map(|r| (r.clone(), tls.domains.as_slice()))
                .collect(),
            None => router
                .using
                .iter()
                .filter_map(|ep| entrypoints.get(ep))
                .filter_map(|d| Some((d.cert_resolver.clone()?, d.domains.as_slice())))
                .collect(),
        };
        for (resolver, domains) in sources {
            let resolver = resolver.trim().to_string();
            if resolver.is_empty() {
                continue;
            }
            for set in domain_sets(domains, &hosts) {
                let key: Vec<String> = set.sorted().into_iter().map(str::to_string).collect();
                let wanted = out
                    .entry(resolver.clone())
                    .or_default()
                    .entry(key)
                    .or_insert_with(|| Wanted {
                        domains: set,
                        routers: Vec::new(),
                    });
                if !wanted.routers.contains(name) {
                    wanted.routers.push(name.clone());
                }
            }
        }
    }
    out.into_iter()
        .map(|(resolver, sets)| (resolver, sets.into_values().collect()))
        .collect()
}

/// The domain sets of one router for one resolver: its `tls.domains`, then the
/// rule's hosts they do not cover.
pub fn domain_sets(domains: &[Domain], hosts: &[String]) -> Vec<Domains> {
    let mut sets: Vec<Domains> = domains
        .iter()
        .filter(|d| !d.main.trim().is_empty())
        .map(|d| {
            let sans: Vec<&str> = d
                .sans
                .iter()
                .map(String::as_str)
                .filter(|s| !s.trim().is_empty())
                .collect();
            Domains::new(&d.main, &sans)
        })
        .collect();
    let uncovered: Vec<&str> = hosts
        .iter()
        .map(String::as_str)
        .filter(|h| !h.is_empty() && !sets.iter().any(|s| s.all().any(|n| covers(n, h))))
        .collect();
    if let Some((main, sans)) = uncovered.split_first() {
        sets.push(Domains::new(main, sans));
    }
    sets
}

/// Whether certificate name `name` (maybe `*.parent`) covers host `host`.
fn covers(name: &str, host: &str) -> bool {
    if name.eq_ignore_ascii_case(host) {
        return true;
    }
    match (name.strip_prefix("*."), host.split_once('.')) {
        (Some(parent), Some((_, rest))) => parent.eq_ignore_ascii_case(rest),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::dynamic::{Router, RouterTls};
    use crate::router::info::RouterInfo;

    fn router(rule: &str, tls: Option<RouterTls>, using: &[&str]) -> RouterInfo {
        RouterInfo {
            provider: "file".into(),
            config: Router {
                rule: rule.into(),
                service: "s@file".into(),
                tls,
                ..Router::default()
            },
            priority: 0,
            using: using.iter().map(|s| s.to_string()).collect(),
            status: Status::Enabled,
            errors: Vec::new(),
        }
    }

    fn tls(resolver: &str, domains: &[(&str, &[&str])]) -> Option<RouterTls> {
        Some(RouterTls {
            options: None,
            cert_resolver: Some(resolver.into()),
            domains: domains
                .iter()
                .map(|(m, s)| Domain {
                    main: m.to_string(),
                    sans: s.iter().map(|x| x.to_string()).collect(),
                })
                .collect(),
        })
    }

    fn names(d: &DesiredCertificates, resolver: &str) -> Vec<(Vec<String>, Vec<String>)> {
        d[resolver]
            .iter()
            .map(|w| {
                (
                    w.domains.all().map(str::to_string).collect(),
                    w.routers.clone(),
                )
            })
            .collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rule_hosts_make_one_set_shared_by_routers_with_the_same_names() {
        let mut info = RuntimeInfo::default();
        info.routers.insert(
            "a@file".into(),
            router(
                "Host(`a.test`) || Host(`b.test`)",
                tls("le", &[]),
                &["websecure"],
            ),
        );
        info.routers.insert(
            "b@file".into(),
            router(
                "Host(`B.test`) && PathPrefix(`/x`) || Host(`a.test`)",
                tls("le", &[]),
                &["websecure"],
            ),
        );
        info.routers.insert(
            "c@file".into(),
            router("Host(`c.test`)", tls("other", &[]), &["websecure"]),
        );
        let d = wanted(&info, &BTreeMap::new(), RuleSyntax::V3);
        assert_eq!(
            names(&d, "le"),
            vec![(
                strings(&["a.test", "b.test"]),
                strings(&["a@file", "b@file"])
            )]
        );
        assert_eq!(
            names(&d, "other"),
            vec![(strings(&["c.test"]), strings(&["c@file"]))]
        );
    }

    #[test]
    fn tls_domains_come_first_and_cover_rule_hosts() {
        let mut info = RuntimeInfo::default();
        let domains: &[(&str, &[&str])] = &[("example.org", &["*.example.org"])];
        info.routers.insert(
            "r@file".into(),
            router(
                "Host(`www.example.org`) || Host(`example.org`) || Host(`other.test`)",
                tls("le", domains),
                &["websecure"],
            ),
        );
        let d = wanted(&info, &BTreeMap::new(), RuleSyntax::V3);
        assert_eq!(
            names(&d, "le"),
            vec![
                (
                    strings(&["example.org", "*.example.org"]),
                    strings(&["r@file"])
                ),
                (strings(&["other.test"]), strings(&["r@file"])),
            ]
        );
    }

    #[test]
    fn entrypoint_defaults_apply_only_to_routers_without_tls() {
        let eps = BTreeMap::from([
            (
                "websecure".to_string(),
                EntryPointTlsDefaults {
                    cert_resolver: Some("le".into()),
                    domains: vec![],
                },
            ),
            ("web".to_string(), EntryPointTlsDefaults::default()),
        ]);
        let mut info = RuntimeInfo::default();
        info.routers.insert(
            "plain@file".into(),
            router("Host(`p.test`)", None, &["web", "websecure"]),
        );
        let own = Some(RouterTls::default());
        info.routers.insert(
            "own@file".into(),
            router("Host(`o.test`)", own, &["websecure"]),
        );
        info.routers.insert(
            "web-only@file".into(),
            router("Host(`w.test`)", None, &["web"]),
        );
        let mut disabled = router("Host(`d.test`)", None, &["websecure"]);
        disabled.status = Status::Disabled;
        info.routers.insert("disabled@file".into(), disabled);
        let d = wanted(&info, &eps, RuleSyntax::V3);
        assert_eq!(d.len(), 1);
        assert_eq!(
            names(&d, "le"),
            vec![(strings(&["p.test"]), strings(&["plain@file"]))]
        );
    }

    #[test]
    fn rules_without_listable_hosts_need_tls_domains() {
        let mut info = RuntimeInfo::default();
        info.routers.insert(
            "re@file".into(),
            router("HostRegexp(`^.+\\.test$`)", tls("le", &[]), &["websecure"]),
        );
        info.routers.insert(
            "path@file".into(),
            router(
                "PathPrefix(`/`)",
                tls("le", &[("x.test", &[])]),
                &["websecure"],
            ),
        );
        let d = wanted(&info, &BTreeMap::new(), RuleSyntax::V3);
        assert_eq!(
            names(&d, "le"),
            vec![(strings(&["x.test"]), strings(&["path@file"]))]
        );
    }

    #[test]
    fn wildcards_cover_one_label_only() {
        assert!(covers("*.a.test", "x.a.test"));
        assert!(!covers("*.a.test", "y.x.a.test"));
        assert!(!covers("*.a.test", "a.test"));
        assert!(covers("A.test", "a.test"));
    }
}
