//! The v2/v3 label tree (`traefik.http.*`, `traefik.tcp.*`, `traefik.udp.*`,
//! `traefik.tls.stores.*`), decoded with the configuration [`Tree`] so that keys are
//! case-insensitive, values are coerced from strings, and unknown keys get the nearest
//! known one as a suggestion.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;

use crate::config::dynamic::{Router, Server, Service};
use crate::config::tree::{Shape, Tree};

use super::assign::Built;
use super::decode::{sections, tree_error, unknown_key, valid_name, Origins};
use super::keys::Entry;
use super::{layer4, middlewares, IssueKind, Issues};

/// Decodes the v2 labels of one workload.
pub(crate) fn build(entries: &[Entry], issues: &mut Issues) -> Built {
    let mut built = Built::default();
    for entry in entries {
        built.origins.add(&entry.rest, &entry.key);
    }
    let mut families: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for entry in entries {
        let (family, rest) = entry.rest.split_once('.').unwrap_or((&entry.rest, ""));
        families
            .entry(family.to_ascii_lowercase())
            .or_default()
            .push((rest.to_string(), entry.value.clone()));
    }
    for (family, pairs) in families {
        let Some(tree) = flat_tree(&family, pairs, &built.origins, issues) else {
            continue;
        };
        match family.as_str() {
            "http" => http(&tree, &mut built, issues),
            "tcp" | "udp" => {
                let value = layer4::decode(&family, &tree, &built.origins, issues);
                if family == "tcp" {
                    built.config.tcp = value;
                } else {
                    built.config.udp = value;
                }
            }
            _ => tls(&tree, &mut built, issues),
        }
    }
    built
}

/// Builds the tree of one family; a malformed key (`domains[x]`) is reported.
fn flat_tree(
    family: &str,
    pairs: Vec<(String, String)>,
    origins: &Origins,
    issues: &mut Issues,
) -> Option<Tree> {
    let mut tree = Tree::Map(BTreeMap::new());
    let mut ok = true;
    for (key, value) in pairs {
        if key.is_empty() {
            // `traefik.http=true`: nothing to decode.
            continue;
        }
        match Tree::from_flat([(key.clone(), value)]) {
            Ok(one) => tree.merge(one),
            Err(e) => {
                ok = false;
                let path = format!("{family}.{key}");
                issues.error(origins.find(&path), IssueKind::InvalidValue, e.message);
            }
        }
    }
    ok.then_some(tree)
}

fn http(tree: &Tree, built: &mut Built, issues: &mut Issues) {
    let known = ["routers", "services", "middlewares"];
    let sections = sections(tree, "http", &known, &built.origins, issues);
    for (section, items) in sections {
        for (name, node) in items {
            let base = format!("http.{section}.{name}");
            if !valid_name(&name, &base, &built.origins, issues) {
                continue;
            }
            match section.as_str() {
                "routers" => {
                    if let Some(router) =
                        decode::<Router>(&node, router_shape(), &base, built, issues)
                    {
                        built.config.http.routers.insert(name, router);
                    }
                }
                "services" => {
                    if let Some(service) = service(&node, &base, built, issues) {
                        built.config.http.services.insert(name, service);
                    }
                }
                _ => {
                    if let Some(mw) = middlewares::decode(&node, &base, &built.origins, issues) {
                        built.config.http.middlewares.insert(name, mw);
                    }
                }
            }
        }
    }
}

fn router_shape() -> &'static Shape {
    static SHAPE: OnceLock<Shape> = OnceLock::new();
    SHAPE.get_or_init(Shape::of::<Router>)
}

fn service_shape() -> &'static Shape {
    static SHAPE: OnceLock<Shape> = OnceLock::new();
    SHAPE.get_or_init(Shape::of::<Service>)
}

/// Deserializes one router or service; errors name the label.
fn decode<T: DeserializeOwned>(
    node: &Tree,
    shape: &Shape,
    base: &str,
    built: &Built,
    issues: &mut Issues,
) -> Option<T> {
    let mut node = node.clone();
    node.normalize_keys(shape);
    match node.deserialize_with::<T>(shape) {
        Ok(value) => Some(value),
        Err(e) => {
            // Serde stops at the first error: decode each key alone to report them all.
            let mut found = false;
            if let Tree::Map(map) = &node {
                for (key, value) in map {
                    let one = Tree::Map([(key.clone(), value.clone())].into());
                    if let Err(e) = one.deserialize_with::<T>(shape) {
                        tree_error(base, &e, &built.origins, issues);
                        found = true;
                    }
                }
            }
            if !found {
                tree_error(base, &e, &built.origins, issues);
            }
            None
        }
    }
}

/// A service: `loadbalancer.server.*` is the template of every server.
fn service(node: &Tree, base: &str, built: &mut Built, issues: &mut Issues) -> Option<Service> {
    let mut node = node.clone();
    if let Tree::Map(map) = &mut node {
        for (key, lb) in map.iter_mut() {
            if !key.eq_ignore_ascii_case("loadbalancer") {
                continue;
            }
            let Tree::Map(lb) = lb else { continue };
            if let Some(plural) = lb.keys().find(|k| k.eq_ignore_ascii_case("servers")) {
                unknown_key(
                    &format!("{base}.{key}.{plural}"),
                    plural,
                    &["server"],
                    &built.origins,
                    issues,
                );
                return None;
            }
            let singular: Vec<String> = lb
                .keys()
                .filter(|k| k.eq_ignore_ascii_case("server"))
                .cloned()
                .collect();
            let mut server = Tree::Null;
            for k in singular {
                if let Some(v) = lb.remove(&k) {
                    server.merge(v);
                }
            }
            if server != Tree::Null {
                lb.insert("servers".into(), Tree::List(vec![server]));
            }
        }
    }
    let mut service: Service = decode(&node, service_shape(), base, built, issues)?;
    if let Some(lb) = &mut service.load_balancer {
        if lb.sticky.as_ref().is_some_and(|s| s.cookie.is_none()) {
            issues.warn(
                built.origins.find(&format!("{base}.loadbalancer.sticky")),
                IssueKind::Ignored,
                "`sticky` without `sticky.cookie` enables nothing (as in Traefik); set `sticky.cookie=true`",
            );
        }
        if lb.servers.is_empty() {
            lb.servers.push(Server::default());
        }
        let server = &lb.servers[0];
        if !server.url.is_empty() && (server.port.is_some() || server.scheme.is_some()) {
            let label = built
                .origins
                .find(&format!("{base}.loadbalancer.server.url"));
            issues.error(
                label,
                IssueKind::Conflict,
                "`server.port` and `server.scheme` cannot be set together with `server.url`",
            );
            return None;
        }
    }
    Some(service)
}

fn tls(tree: &Tree, built: &mut Built, issues: &mut Issues) {
    let sections = sections(tree, "tls", &["stores"], &built.origins, issues);
    for (name, node) in sections.into_values().flatten() {
        match node.deserialize_into::<serde_json::Value>() {
            Ok(value) => {
                built.config.tls.stores.insert(name, value);
            }
            Err(e) => tree_error(&format!("tls.stores.{name}"), &e, &built.origins, issues),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use super::*;
    use crate::config::dynamic::RuleSyntax;

    /// Builds the v2 tree of `traefik.`-prefixed labels for workload `w`.
    pub(in crate::provider::labels) fn build_from(pairs: &[(&str, &str)]) -> (Built, Issues) {
        let entries: Vec<Entry> = pairs
            .iter()
            .map(|(k, v)| Entry {
                key: format!("traefik.{k}"),
                rest: k.to_string(),
                value: v.to_string(),
            })
            .collect();
        let mut issues = Issues::new("w");
        let built = build(&entries, &mut issues);
        (built, issues)
    }

    #[test]
    fn decodes_routers_with_any_key_case() {
        let (built, mut issues) = build_from(&[
            ("http.routers.Web.rule", "Host(`a.example.com`)"),
            ("http.routers.Web.entryPoints", "web, websecure"),
            ("http.Routers.Web.TLS.certResolver", "le"),
            ("http.routers.Web.tls.domains[0].main", "example.com"),
            (
                "http.routers.Web.tls.domains[0].sans",
                "a.example.com,b.example.com",
            ),
            ("http.routers.Web.middlewares", "auth,redirect@file"),
            ("http.routers.Web.priority", "42"),
            ("http.routers.Web.ruleSyntax", "v2"),
        ]);
        issues.check().unwrap();
        let r = &built.config.http.routers["Web"];
        assert_eq!(r.rule, "Host(`a.example.com`)");
        assert_eq!(r.entry_points, vec!["web", "websecure"]);
        assert_eq!(r.middlewares, vec!["auth", "redirect@file"]);
        assert_eq!(r.priority, 42);
        assert_eq!(r.rule_syntax, Some(RuleSyntax::V2));
        let tls = r.tls.as_ref().unwrap();
        assert_eq!(tls.cert_resolver.as_deref(), Some("le"));
        assert_eq!(tls.domains[0].sans, vec!["a.example.com", "b.example.com"]);
    }

    #[test]
    fn service_server_is_a_template() {
        let (built, mut issues) = build_from(&[
            ("http.services.app.loadbalancer.server.port", "8080"),
            ("http.services.app.loadbalancer.server.scheme", "h2c"),
            ("http.services.app.loadbalancer.passHostHeader", "false"),
            ("http.services.app.loadbalancer.sticky.cookie.name", "sid"),
            ("http.services.app.loadbalancer.healthcheck.path", "/health"),
            ("http.services.app.loadbalancer.healthcheck.interval", "10s"),
        ]);
        issues.check().unwrap();
        let lb = built.config.http.services["app"]
            .load_balancer
            .clone()
            .unwrap();
        assert_eq!(lb.servers.len(), 1);
        assert_eq!(lb.servers[0].port.as_deref(), Some("8080"));
        assert_eq!(lb.servers[0].scheme.as_deref(), Some("h2c"));
        assert!(!lb.pass_host_header);
        let cookie = lb.sticky.unwrap().cookie.unwrap();
        assert_eq!(cookie.name.as_deref(), Some("sid"));
        assert_eq!(lb.health_check.unwrap().interval.0.as_secs(), 10);
    }

    #[test]
    fn unknown_keys_name_the_label_and_suggest() {
        let (_, mut issues) = build_from(&[
            ("http.routers.web.rulee", "Host(`a`)"),
            ("http.services.web.loadbalancer.server.prot", "80"),
            ("http.routes.x.rule", "Host(`a`)"),
        ]);
        let errors = issues.check().unwrap_err();
        let by_label = |l: &str| {
            errors
                .iter()
                .find(|e| e.label.as_deref() == Some(l))
                .unwrap()
        };
        let e = by_label("traefik.http.routers.web.rulee");
        assert_eq!(
            e.kind,
            IssueKind::UnknownKey {
                suggestion: Some("traefik.http.routers.web.rule".into())
            }
        );
        let e = by_label("traefik.http.services.web.loadbalancer.server.prot");
        assert_eq!(
            e.kind,
            IssueKind::UnknownKey {
                suggestion: Some("traefik.http.services.web.loadbalancer.server.port".into())
            }
        );
        let e = by_label("traefik.http.routes.x.rule");
        assert!(e.message.contains("traefik.http.routers.x.rule"), "{e}");
    }

    #[test]
    fn bad_values_and_names_are_errors() {
        let (_, mut issues) = build_from(&[
            ("http.routers.web.priority", "high"),
            ("http.services.a@b.loadbalancer.server.port", "80"),
            ("http.services.u.loadbalancer.server.url", "http://x:1"),
            ("http.services.u.loadbalancer.server.port", "1"),
        ]);
        let errors = issues.check().unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(
            errors[0].label.as_deref(),
            Some("traefik.http.routers.web.priority")
        );
        assert_eq!(errors[0].kind, IssueKind::InvalidValue);
        assert!(errors.iter().any(|e| e.kind == IssueKind::InvalidName));
        assert!(errors.iter().any(|e| e.kind == IssueKind::Conflict));
    }
}
