//! Traefik v1.7 labels: `traefik.frontend.*` (a router, with `ruleSyntax: v1`),
//! `traefik.backend.*`, `traefik.port`, `traefik.protocol`, `traefik.weight` (a
//! service), and segments `traefik.<segment>.{port,protocol,weight,backend,frontend.*}`
//! (one router and service per segment; container-level keys are the segments'
//! defaults, as in v1.7). Frontend features become middlewares named after the router
//! (see [`super::v1_middlewares`]).
//!
//! Names follow v1.7: the router and service are `normalize(<name>)`, the service
//! `normalize(<traefik.backend>)` when set; with segments both are
//! `normalize(<name>-<segment>)` (the service `normalize(<name>-<backend>)`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use crate::config::dynamic::{
    HealthCheck, LoadBalancer, Router, RuleSyntax, Server, Service, Sticky, StickyCookie,
};
use crate::config::tree::nearest;
use crate::config::GoDuration;

use super::assign::Built;
use super::keys::V1Entry;
use super::{normalize, parse_bool, v1_middlewares, IssueKind, Issues};

/// Properties of one segment (container-level defaults overlaid by the segment's own),
/// remembering which were read so that the rest can be reported.
pub(crate) struct Props<'a> {
    map: BTreeMap<String, &'a V1Entry>,
    used: RefCell<BTreeSet<String>>,
}

impl<'a> Props<'a> {
    fn new<'e>(entries: impl IntoIterator<Item = &'e &'a V1Entry>) -> Self
    where
        'a: 'e,
    {
        let map = entries.into_iter().map(|e| (e.prop.clone(), *e)).collect();
        Self {
            map,
            used: RefCell::new(BTreeSet::new()),
        }
    }

    /// The label setting `prop` (lowercase).
    pub(crate) fn entry(&self, prop: &str) -> Option<&'a V1Entry> {
        self.used.borrow_mut().insert(prop.to_string());
        self.map.get(prop).copied()
    }

    /// The trimmed value of `prop`, if set and not empty.
    pub(crate) fn str(&self, prop: &str) -> Option<&'a str> {
        self.entry(prop)
            .map(|e| e.value.trim())
            .filter(|v| !v.is_empty())
    }

    /// A boolean property; a bad value is an error.
    pub(crate) fn bool(&self, prop: &str, issues: &mut Issues) -> Option<bool> {
        let e = self.entry(prop)?;
        let b = parse_bool(&e.value);
        if b.is_none() {
            issues.error(
                Some(&e.key),
                IssueKind::InvalidValue,
                format!("expected true or false, found {:?}", e.value),
            );
        }
        b
    }

    /// A number; a bad value is an error.
    pub(crate) fn num<T: FromStr>(&self, prop: &str, issues: &mut Issues) -> Option<T> {
        let e = self.entry(prop)?;
        let n = e.value.trim().parse::<T>().ok();
        if n.is_none() {
            issues.error(
                Some(&e.key),
                IssueKind::InvalidValue,
                format!("expected a number, found {:?}", e.value),
            );
        }
        n
    }

    /// A duration (`10s`, `1m`); a bad value is an error.
    pub(crate) fn duration(&self, prop: &str, issues: &mut Issues) -> Option<GoDuration> {
        let e = self.entry(prop)?;
        match GoDuration::parse(&e.value) {
            Ok(d) => Some(d),
            Err(err) => {
                issues.error(Some(&e.key), IssueKind::InvalidValue, err.to_string());
                None
            }
        }
    }

    /// A comma-separated list.
    pub(crate) fn list(&self, prop: &str) -> Vec<String> {
        self.str(prop)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Properties under `prefix` (lowercase, ending with `.`): the rest of the
    /// property as written, and its label.
    pub(crate) fn under(&self, prefix: &str) -> Vec<(&'a str, &'a V1Entry)> {
        let found: Vec<_> = self
            .map
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(p, e)| (p.clone(), *e))
            .collect();
        let mut used = self.used.borrow_mut();
        found
            .into_iter()
            .map(|(p, e)| {
                used.insert(p);
                (e.prop_raw.get(prefix.len()..).unwrap_or_default(), e)
            })
            .collect()
    }

    fn unused(&self) -> Vec<&'a V1Entry> {
        let used = self.used.borrow();
        self.map
            .iter()
            .filter(|(p, _)| !used.contains(*p))
            .map(|(_, e)| *e)
            .collect()
    }
}

/// v1 properties, for suggestions.
const KNOWN: &[&str] = &[
    "port",
    "protocol",
    "weight",
    "domain",
    "backend",
    "frontend.rule",
    "frontend.entrypoints",
    "frontend.priority",
    "frontend.passhostheader",
    "frontend.passtlscert",
    "frontend.redirect.entrypoint",
    "frontend.redirect.regex",
    "frontend.redirect.replacement",
    "frontend.redirect.permanent",
    "frontend.auth.basic",
    "frontend.auth.basic.users",
    "frontend.auth.basic.usersfile",
    "frontend.auth.basic.removeheader",
    "frontend.auth.headerfield",
    "frontend.auth.digest.users",
    "frontend.auth.digest.usersfile",
    "frontend.auth.digest.removeheader",
    "frontend.auth.forward.address",
    "frontend.auth.forward.trustforwardheader",
    "frontend.auth.forward.authresponseheaders",
    "frontend.whitelist.sourcerange",
    "frontend.whitelist.usexforwardedfor",
    "frontend.whitelistsourcerange",
    "frontend.ratelimit.extractorfunc",
    "backend.loadbalancer.method",
    "backend.loadbalancer.stickiness",
    "backend.loadbalancer.stickiness.cookiename",
    "backend.loadbalancer.sticky",
    "backend.loadbalancer.swarm",
    "backend.healthcheck.path",
    "backend.healthcheck.port",
    "backend.healthcheck.scheme",
    "backend.healthcheck.interval",
    "backend.healthcheck.timeout",
    "backend.healthcheck.hostname",
    "backend.circuitbreaker.expression",
    "backend.maxconn.amount",
    "backend.maxconn.extractorfunc",
];

/// Builds the routers, services and middlewares that v1 labels describe.
pub(crate) fn build(entries: &[V1Entry], base: &str, issues: &mut Issues) -> Built {
    let defaults: Vec<&V1Entry> = entries.iter().filter(|e| e.segment.is_none()).collect();
    let mut segments: BTreeMap<&str, Vec<&V1Entry>> = BTreeMap::new();
    for e in entries {
        if let Some(seg) = &e.segment {
            segments.entry(seg).or_default().push(e);
        }
    }
    let mut built = Built::default();
    if segments.is_empty() {
        segment(&mut built, None, &Props::new(&defaults), base, issues);
    }
    for (seg, own) in &segments {
        let props = Props::new(defaults.iter().chain(own.iter()));
        segment(&mut built, Some(seg), &props, base, issues);
    }
    built
}

fn segment(built: &mut Built, seg: Option<&str>, p: &Props<'_>, base: &str, issues: &mut Issues) {
    let backend = p.str("backend");
    let (router_name, service_name) = match seg {
        None => (normalize(base), normalize(backend.unwrap_or(base))),
        Some(s) => (
            normalize(&format!("{base}-{s}")),
            normalize(&format!("{base}-{}", backend.unwrap_or(s))),
        ),
    };
    let mut router = Router {
        service: service_name.clone(),
        entry_points: p.list("frontend.entrypoints"),
        priority: p.num("frontend.priority", issues).unwrap_or(0),
        ..Router::default()
    };
    let rule_path = format!("http.routers.{router_name}.rule");
    if let Some(e) = p
        .entry("frontend.rule")
        .filter(|e| !e.value.trim().is_empty())
    {
        router.rule = e.value.trim().to_string();
        router.rule_syntax = Some(RuleSyntax::V1);
        built.origins.add(&rule_path, &e.key);
    } else if let Some(e) = p.entry("domain").filter(|e| !e.value.trim().is_empty()) {
        // v1.7's default rule: `Host:<name>.<domain>`.
        let sub = base.trim_start_matches('/').replace(['/', '_'], "-");
        router.rule = format!("Host:{sub}.{}", e.value.trim());
        router.rule_syntax = Some(RuleSyntax::V1);
        built.origins.add(&rule_path, &e.key);
    }
    let port_label = match seg {
        Some(s) => format!("traefik.{s}.port"),
        None => "traefik.port".to_string(),
    };
    built.port_labels.insert(service_name.clone(), port_label);
    if let Some(e) = p.entry("port") {
        let path = format!("http.services.{service_name}.loadbalancer.server.port");
        built.origins.add(&path, &e.key);
    }
    let service = service(p, issues, &mut built.lbswarm);
    for (name, mw) in v1_middlewares::build(p, &router_name, issues) {
        router.middlewares.push(name.clone());
        built.config.http.middlewares.insert(name, mw);
    }
    match built.config.http.services.get(&service_name) {
        Some(have) if *have != service => issues.error(
            p.entry("backend").map(|e| e.key.as_str()),
            IssueKind::Conflict,
            format!("segments share the backend `{service_name}` with different settings"),
        ),
        _ => {
            built.config.http.services.insert(service_name, service);
        }
    }
    built.config.http.routers.insert(router_name, router);
    for e in p.unused() {
        unknown(e, issues);
    }
}

fn service(p: &Props<'_>, issues: &mut Issues, lbswarm: &mut bool) -> Service {
    let scheme = p.str("protocol").map(str::to_ascii_lowercase);
    if let (Some(s), Some(e)) = (&scheme, p.entry("protocol")) {
        if !matches!(s.as_str(), "http" | "https" | "h2c") {
            issues.error(
                Some(&e.key),
                IssueKind::InvalidValue,
                format!("unknown protocol {s:?}: expected http, https or h2c"),
            );
        }
    }
    let server = Server {
        url: String::new(),
        weight: p.num("weight", issues),
        port: p.str("port").map(str::to_string),
        scheme,
    };
    let mut lb = LoadBalancer {
        servers: vec![server],
        pass_host_header: p.bool("frontend.passhostheader", issues).unwrap_or(true),
        ..LoadBalancer::default()
    };
    if let Some(e) = p.entry("backend.loadbalancer.method") {
        if !e.value.trim().eq_ignore_ascii_case("wrr") {
            issues.warn(
                Some(&e.key),
                IssueKind::Unsupported,
                format!(
                    "load-balancing method {:?} is not available; weighted round robin is used",
                    e.value.trim()
                ),
            );
        }
    }
    let sticky = p
        .bool("backend.loadbalancer.stickiness", issues)
        .unwrap_or(false)
        | p.bool("backend.loadbalancer.sticky", issues)
            .unwrap_or(false);
    let cookie_name = p.str("backend.loadbalancer.stickiness.cookiename");
    if sticky || cookie_name.is_some() {
        lb.sticky = Some(Sticky {
            cookie: Some(StickyCookie {
                name: cookie_name.map(str::to_string),
                ..StickyCookie::default()
            }),
        });
    }
    if p.bool("backend.loadbalancer.swarm", issues) == Some(true) {
        *lbswarm = true;
    }
    if let Some(path) = p.str("backend.healthcheck.path") {
        let mut hc = HealthCheck {
            path: path.to_string(),
            port: p.num("backend.healthcheck.port", issues),
            scheme: p.str("backend.healthcheck.scheme").map(str::to_string),
            hostname: p.str("backend.healthcheck.hostname").map(str::to_string),
            ..HealthCheck::default()
        };
        if let Some(d) = p.duration("backend.healthcheck.interval", issues) {
            hc.interval = d;
        }
        if let Some(d) = p.duration("backend.healthcheck.timeout", issues) {
            hc.timeout = d;
        }
        if let Some(e) = p.entry("backend.healthcheck.headers") {
            hc.headers = v1_middlewares::header_map(e, issues);
        }
        lb.health_check = Some(hc);
    }
    Service {
        load_balancer: Some(lb),
        ..Service::default()
    }
}

/// Reports a v1 label that nothing reads (Traefik v1 ignored them too).
fn unknown(e: &V1Entry, issues: &mut Issues) {
    let prefix = e
        .key
        .get(..e.key.len().saturating_sub(e.prop_raw.len()))
        .unwrap_or("traefik.");
    let suggestion = nearest(&e.prop, KNOWN.iter().copied()).map(|n| format!("{prefix}{n}"));
    let hint = suggestion
        .as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    issues.warn(
        Some(&e.key),
        IssueKind::UnknownKey { suggestion },
        format!("Traefik v1 label not supported, ignored{hint}"),
    );
}
