//! The compiled route table: for each entrypoint, the routers that listen on it in
//! priority order, indexed by exact host so the common case is a hash lookup rather
//! than a linear scan. A table is immutable; a new configuration compiles a new one.
//!
//! Order: higher priority first; equal priorities are ordered by the qualified router
//! name (`name@provider`), ascending, so the outcome never depends on map order.

pub mod compile;
pub mod info;
#[cfg(test)]
mod middleware_tests;
mod weighted;

use std::collections::HashMap;
use std::sync::Arc;

use crate::lb::HealthCheckHandle;
use crate::metrics::{Metrics, RouteMetrics};
use crate::middleware::HttpService;
use crate::rules::{RequestView, Rule};
pub use compile::{compile, CompileEnv, EntryPointSpec};
pub use info::RuntimeInfo;

/// One router, compiled.
pub struct RouteEntry {
    /// Qualified router name (`name@provider`).
    pub name: Arc<str>,
    /// Qualified service name.
    pub service: Arc<str>,
    /// The compiled rule.
    pub rule: Arc<Rule>,
    /// Middlewares and service as one service.
    pub handler: HttpService,
    /// Its router and service metrics, resolved once per table (see [`RouteTable::attach_metrics`]).
    pub metrics: Option<Arc<RouteMetrics>>,
}

/// The routers of one entrypoint for one kind of connection (plain or TLS).
#[derive(Default)]
pub struct RouteSet {
    routers: Vec<RouteEntry>,
    by_host: HashMap<String, Vec<u32>>,
    generic: Vec<u32>,
}

impl RouteSet {
    /// Builds the set from routers already sorted by precedence.
    fn new(routers: Vec<RouteEntry>) -> Self {
        let mut by_host: HashMap<String, Vec<u32>> = HashMap::new();
        let mut generic = Vec::new();
        for (i, r) in routers.iter().enumerate() {
            let i = i as u32;
            match r.rule.exact_hosts() {
                Some(hosts) => {
                    for h in hosts {
                        let list = by_host.entry(h).or_default();
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
                None => generic.push(i),
            }
        }
        Self {
            routers,
            by_host,
            generic,
        }
    }

    /// The highest-precedence router whose rule matches, if any.
    pub fn find(&self, req: &RequestView<'_>) -> Option<&RouteEntry> {
        let hosted: &[u32] = self.by_host.get(req.host).map(Vec::as_slice).unwrap_or(&[]);
        let (mut a, mut b) = (hosted.iter().peekable(), self.generic.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => return None,
            };
            let entry = next.and_then(|&i| self.routers.get(i as usize))?;
            if entry.rule.matches(req) {
                return Some(entry);
            }
        }
    }

    /// Number of routers in the set.
    pub fn len(&self) -> usize {
        self.routers.len()
    }

    /// Whether the set has no router.
    pub fn is_empty(&self) -> bool {
        self.routers.is_empty()
    }
}

/// The routes of one entrypoint.
#[derive(Default)]
pub struct EntryRoutes {
    /// Routers without TLS, for plain connections.
    pub plain: RouteSet,
    /// Routers with TLS, for TLS connections.
    pub tls: RouteSet,
}

/// Everything the request path needs, compiled from the dynamic configuration.
#[derive(Default)]
pub struct RouteTable {
    entrypoints: HashMap<String, EntryRoutes>,
    /// What the admin API shows.
    pub info: Arc<RuntimeInfo>,
    _health_checks: Vec<HealthCheckHandle>,
}

impl RouteTable {
    /// The routes of an entrypoint.
    pub fn entrypoint(&self, name: &str) -> Option<&EntryRoutes> {
        self.entrypoints.get(name)
    }

    /// Resolves every route's router and service metrics, and lets `metrics` forget
    /// the services no route uses any more.
    pub fn attach_metrics(&mut self, metrics: &Metrics) {
        let mut live = std::collections::HashSet::new();
        for routes in self.entrypoints.values_mut() {
            for entry in routes
                .plain
                .routers
                .iter_mut()
                .chain(routes.tls.routers.iter_mut())
            {
                entry.metrics = metrics.route(&entry.name, &entry.service);
                live.insert(entry.service.clone());
            }
        }
        metrics.retain_services(&live);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::dynamic::RuleSyntax;
    use http::{HeaderMap, Method};

    /// A router that always answers 200, for tests of ordering and lookup.
    pub(crate) fn entry(name: &str, rule: &str) -> RouteEntry {
        let parsed = Rule::parse(rule, RuleSyntax::V3).unwrap();
        let svc = tower::service_fn(|_req: http::Request<crate::body::Body>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(crate::body::empty()))
        });
        RouteEntry {
            name: name.into(),
            service: "s".into(),
            rule: Arc::new(parsed.rule),
            handler: HttpService::new(svc),
            metrics: None,
        }
    }

    fn find<'a>(set: &'a RouteSet, host: &str, path: &str) -> Option<&'a str> {
        let headers = HeaderMap::new();
        let view = RequestView {
            host,
            path,
            query: None,
            method: &Method::GET,
            headers: &headers,
            client_ip: "127.0.0.1".parse().unwrap(),
        };
        set.find(&view).map(|e| &*e.name)
    }

    #[test]
    fn hosted_and_generic_routers_merge_by_precedence() {
        // Already in precedence order, as `compile` sorts them.
        let set = RouteSet::new(vec![
            entry("regex", "HostRegexp(`^[a-z]+\\.example\\.com$`)"),
            entry("api", "Host(`a.example.com`) && PathPrefix(`/api`)"),
            entry("a", "Host(`a.example.com`)"),
            entry("catchall", "PathPrefix(`/`)"),
        ]);
        assert_eq!(set.by_host.get("a.example.com").map(Vec::len), Some(2));
        assert_eq!(set.generic, vec![0, 3]);
        assert_eq!(find(&set, "a.example.com", "/api/x"), Some("regex"));
        assert_eq!(find(&set, "a1.example.com", "/api/x"), Some("catchall"));
        assert_eq!(find(&set, "other.test", "/"), Some("catchall"));
        let set = RouteSet::new(vec![
            entry("api", "Host(`a.example.com`) && PathPrefix(`/api`)"),
            entry("a", "Host(`a.example.com`)"),
        ]);
        assert_eq!(find(&set, "a.example.com", "/api/x"), Some("api"));
        assert_eq!(find(&set, "a.example.com", "/web"), Some("a"));
        assert_eq!(find(&set, "b.example.com", "/web"), None);
    }
}
