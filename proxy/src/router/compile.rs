//! Compiling the merged dynamic configuration of every provider into a
//! [`RouteTable`]. Each router, service and middleware is checked on its own: an
//! error disables only what it touches and is recorded for the admin API.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use http::Uri;
use tracing::warn;

use super::info::{MiddlewareInfo, RouterInfo, RuntimeInfo, ServiceInfo, Status};
use super::weighted::WeightedService;
use super::{EntryRoutes, RouteEntry, RouteSet, RouteTable};
use crate::config::dynamic::{LoadBalancer, RuleSyntax, Service};
use crate::config::DynamicConfig;
use crate::forward::{client::Clients, LbService};
use crate::lb::{self, Balancer, HealthCheckHandle, HealthRegistry, Upstream};
use crate::middleware::{self, Built, HttpService};
use crate::rules::Rule;

/// An entrypoint as the compiler needs it.
#[derive(Debug, Clone)]
pub struct EntryPointSpec {
    /// Its name.
    pub name: String,
    /// Whether it terminates TLS for every router (`http.tls`).
    pub tls: bool,
    /// Middlewares applied to every router on it.
    pub middlewares: Vec<String>,
    /// Whether routers without entrypoints attach to it.
    pub as_default: bool,
    /// The admin entrypoint only takes routers that name it.
    pub admin: bool,
}

/// Everything besides the dynamic configuration that compiling needs.
pub struct CompileEnv<'a> {
    /// HTTP entrypoints.
    pub entrypoints: &'a [EntryPointSpec],
    /// Rule syntax for routers that do not choose one.
    pub default_syntax: RuleSyntax,
    /// Upstream clients.
    pub clients: &'a Clients,
    /// Health state that survives rebuilds.
    pub health: &'a HealthRegistry,
    /// Services provided by wharf itself (`api@internal`, `ping@internal`).
    pub internal: &'a HashMap<String, HttpService>,
}

/// Qualifies a reference: `name` from provider `p` means `name@p`.
fn qualify(name: &str, provider: &str) -> String {
    if name.contains('@') {
        name.to_string()
    } else {
        format!("{name}@{provider}")
    }
}

/// Routers of one entrypoint with their priorities: plain, then TLS.
type PlainAndTls = (Vec<(i64, RouteEntry)>, Vec<(i64, RouteEntry)>);

struct Compiler<'a> {
    env: &'a CompileEnv<'a>,
    configs: &'a BTreeMap<&'static str, DynamicConfig>,
    info: RuntimeInfo,
    services: HashMap<String, Result<HttpService, String>>,
    middlewares: HashMap<String, Result<Built, String>>,
    health_checks: Vec<HealthCheckHandle>,
}

/// Compiles every provider's configuration into one route table.
pub fn compile(
    configs: &BTreeMap<&'static str, DynamicConfig>,
    env: &CompileEnv<'_>,
) -> RouteTable {
    let mut c = Compiler {
        env,
        configs,
        info: RuntimeInfo::default(),
        services: HashMap::new(),
        middlewares: HashMap::new(),
        health_checks: Vec::new(),
    };
    let mut per_ep: HashMap<String, PlainAndTls> = HashMap::new();
    for (provider, cfg) in configs {
        for (name, router) in &cfg.http.routers {
            let qname = qualify(name, provider);
            for (ep, tls, priority, entry) in c.router(&qname, provider, router) {
                let lists = per_ep.entry(ep).or_default();
                if tls { &mut lists.1 } else { &mut lists.0 }.push((priority, entry));
            }
        }
    }
    c.record_unused();
    let entrypoints = per_ep
        .into_iter()
        .map(|(ep, (plain, tls))| {
            (
                ep,
                EntryRoutes {
                    plain: sorted(plain),
                    tls: sorted(tls),
                },
            )
        })
        .collect();
    RouteTable {
        entrypoints,
        info: Arc::new(c.info),
        _health_checks: c.health_checks,
    }
}

fn sorted(mut list: Vec<(i64, RouteEntry)>) -> RouteSet {
    list.sort_by(|(pa, a), (pb, b)| pb.cmp(pa).then_with(|| a.name.cmp(&b.name)));
    RouteSet::new(list.into_iter().map(|(_, e)| e).collect())
}

impl Compiler<'_> {
    /// Compiles one router; returns one entry per (entrypoint, tls) it serves.
    fn router(
        &mut self,
        qname: &str,
        provider: &str,
        cfg: &crate::config::dynamic::Router,
    ) -> Vec<(String, bool, i64, RouteEntry)> {
        let mut errors = Vec::new();
        let syntax = cfg.rule_syntax.unwrap_or(self.env.default_syntax);
        let parsed = match Rule::parse(&cfg.rule, syntax) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(format!("router {qname}: invalid rule {:?}: {e}", cfg.rule));
                None
            }
        };
        let priority = if cfg.priority == 0 {
            cfg.rule.len() as i64
        } else {
            cfg.priority
        };
        let eps: Vec<&EntryPointSpec> = if cfg.entry_points.is_empty() {
            let defaults: Vec<_> = self
                .env
                .entrypoints
                .iter()
                .filter(|e| !e.admin && e.as_default)
                .collect();
            if defaults.is_empty() {
                self.env.entrypoints.iter().filter(|e| !e.admin).collect()
            } else {
                defaults
            }
        } else {
            cfg.entry_points
                .iter()
                .filter_map(|n| {
                    let found = self.env.entrypoints.iter().find(|e| &e.name == n);
                    if found.is_none() {
                        errors.push(format!("router {qname}: entryPoint {n:?} doesn't exist"));
                    }
                    found
                })
                .collect()
        };
        if eps.is_empty() && errors.is_empty() {
            errors.push(format!("router {qname}: no valid entryPoint"));
        }
        let service = qualify(&cfg.service, provider);
        if cfg.service.is_empty() {
            errors.push(format!("router {qname}: no service"));
        }
        let handler = if cfg.service.is_empty() {
            None
        } else {
            self.service(&service, qname, &mut errors)
        };
        let mut mw_names: Vec<String> = Vec::new();
        let mut out = Vec::new();
        let mut config = cfg.clone();
        config.service = service.clone();
        config.middlewares = cfg
            .middlewares
            .iter()
            .map(|m| qualify(m, provider))
            .collect();
        if let (Some(parsed), Some(handler)) = (parsed, handler) {
            let rule = Arc::new(parsed.rule);
            let mut v1_layers = Vec::new();
            for m in &parsed.modifiers {
                match middleware::from_v1_modifier(m) {
                    Ok(b) => v1_layers.push(b),
                    Err(e) => errors.push(format!("router {qname}: invalid rule modifier: {e}")),
                }
            }
            for ep in &eps {
                let names: Vec<String> = ep
                    .middlewares
                    .iter()
                    .map(|m| qualify(m, provider))
                    .chain(config.middlewares.iter().cloned())
                    .collect();
                let mut chain = Vec::new();
                for n in &names {
                    self.expand_middleware(n, qname, &mut chain, &mut errors, 0);
                }
                mw_names.extend(names);
                if !errors.is_empty() {
                    break;
                }
                let mut svc = handler.clone();
                for b in v1_layers.iter().rev().chain(chain.iter().rev()) {
                    svc = b.wrap(svc);
                }
                let tls = ep.tls || cfg.tls.is_some();
                let entry = RouteEntry {
                    name: qname.into(),
                    service: service.as_str().into(),
                    rule: rule.clone(),
                    handler: svc,
                    metrics: None,
                };
                out.push((ep.name.clone(), tls, priority, entry));
            }
        }
        let status = if errors.is_empty() {
            Status::Enabled
        } else {
            Status::Disabled
        };
        for e in &errors {
            warn!(router = qname, error = %e, "router disabled");
        }
        if !errors.is_empty() {
            out.clear();
        }
        if let Some(s) = self.info.services.get_mut(&service) {
            s.used_by.push(qname.to_string());
        }
        mw_names.sort();
        mw_names.dedup();
        for m in mw_names {
            if let Some(info) = self.info.middlewares.get_mut(&m) {
                info.used_by.push(qname.to_string());
            }
        }
        let using = eps.iter().map(|e| e.name.clone()).collect();
        self.info.routers.insert(
            qname.to_string(),
            RouterInfo {
                provider: provider.to_string(),
                config,
                priority,
                using,
                status,
                errors,
            },
        );
        out
    }

    /// Appends the built middleware `name` (chains expanded) to `out`.
    fn expand_middleware(
        &mut self,
        name: &str,
        router: &str,
        out: &mut Vec<Built>,
        errors: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > 10 {
            errors.push(format!(
                "router {router}: middleware chain {name} is too deep or recursive"
            ));
            return;
        }
        match self.middleware(name) {
            Ok(Built::Chain(children)) => {
                let provider = name
                    .rsplit_once('@')
                    .map(|(_, p)| p.to_string())
                    .unwrap_or_default();
                for child in children {
                    self.expand_middleware(
                        &qualify(&child, &provider),
                        router,
                        out,
                        errors,
                        depth + 1,
                    );
                }
            }
            Ok(b) => out.push(b),
            Err(e) => errors.push(format!("router {router}: middleware {name}: {e}")),
        }
    }

    fn middleware(&mut self, qname: &str) -> Result<Built, String> {
        if let Some(r) = self.middlewares.get(qname) {
            return r.clone();
        }
        let (name, provider) = qname.rsplit_once('@').unwrap_or((qname, ""));
        let configs = self.configs;
        let found = configs
            .iter()
            .find(|(p, _)| **p == provider)
            .and_then(|(p, c)| c.http.middlewares.get(name).map(|m| (*p, m)));
        let result = match found {
            None => Err("middleware does not exist".to_string()),
            Some((p, cfg)) => {
                let mut ctx = MiddlewareContext {
                    compiler: self,
                    provider: p,
                };
                let r = middleware::build_with(cfg, &mut ctx).map_err(|e| e.to_string());
                let errors = r.as_ref().err().cloned().into_iter().collect::<Vec<_>>();
                let status = if errors.is_empty() {
                    Status::Enabled
                } else {
                    Status::Disabled
                };
                self.info.middlewares.insert(
                    qname.to_string(),
                    MiddlewareInfo {
                        provider: p.to_string(),
                        config: cfg.clone(),
                        status,
                        errors,
                        used_by: Vec::new(),
                    },
                );
                r
            }
        };
        self.middlewares.insert(qname.to_string(), result.clone());
        result
    }

    /// The handler of service `qname`, built once per table, or why there is none.
    fn service_handler_by_name(&mut self, qname: &str) -> Result<HttpService, String> {
        if let Some(internal) = self.env.internal.get(qname) {
            return Ok(internal.clone());
        }
        if !self.services.contains_key(qname) {
            let r = self.build_service(qname, 0);
            self.services.insert(qname.to_string(), r);
        }
        self.services
            .get(qname)
            .cloned()
            .unwrap_or_else(|| Err("the service does not exist".into()))
    }

    /// The handler of a service, built once per table.
    fn service(
        &mut self,
        qname: &str,
        router: &str,
        errors: &mut Vec<String>,
    ) -> Option<HttpService> {
        match self.service_handler_by_name(qname) {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(format!("router {router}: service {qname}: {e}"));
                None
            }
        }
    }

    fn build_service(&mut self, qname: &str, depth: usize) -> Result<HttpService, String> {
        let (name, provider) = qname.rsplit_once('@').unwrap_or((qname, ""));
        let Some((p, cfg)) = self
            .configs
            .iter()
            .find(|(p, _)| **p == provider)
            .and_then(|(p, c)| c.http.services.get(name).map(|s| (*p, s.clone())))
        else {
            return Err("the service does not exist".into());
        };
        let mut lb_handle = None;
        let result = self.service_handler(qname, p, &cfg, depth, &mut lb_handle);
        let errors: Vec<String> = result.as_ref().err().cloned().into_iter().collect();
        if let Err(e) = &result {
            warn!(service = qname, error = %e, "service disabled");
        }
        let status = if errors.is_empty() {
            Status::Enabled
        } else {
            Status::Disabled
        };
        self.info.services.insert(
            qname.to_string(),
            ServiceInfo {
                provider: p.to_string(),
                config: cfg,
                status,
                errors,
                used_by: Vec::new(),
                lb: lb_handle,
            },
        );
        result
    }

    fn service_handler(
        &mut self,
        qname: &str,
        provider: &str,
        cfg: &Service,
        depth: usize,
        lb_out: &mut Option<LbService>,
    ) -> Result<HttpService, String> {
        let kinds = [
            cfg.load_balancer.is_some(),
            cfg.weighted.is_some(),
            cfg.mirroring.is_some(),
            cfg.failover.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(
                "a service must set exactly one of loadBalancer, weighted, mirroring, failover"
                    .into(),
            );
        }
        if let Some(lbc) = &cfg.load_balancer {
            let svc = self.load_balancer(qname, lbc)?;
            *lb_out = Some(svc.clone());
            return Ok(HttpService::new(svc));
        }
        if let Some(w) = &cfg.weighted {
            if depth > 10 {
                return Err("weighted services nest too deeply".into());
            }
            let mut members = Vec::new();
            for m in &w.services {
                let child = qualify(&m.name, provider);
                if !self.services.contains_key(&child) {
                    let r = self.build_service(&child, depth + 1);
                    self.services.insert(child.clone(), r);
                }
                match self.services.get(&child) {
                    Some(Ok(s)) => members.push((s.clone(), m.weight.unwrap_or(1))),
                    Some(Err(e)) => return Err(format!("member {child}: {e}")),
                    None => return Err(format!("member {child} does not exist")),
                }
            }
            return Ok(HttpService::new(WeightedService::new(members)));
        }
        Err("mirroring and failover services are not supported yet".into())
    }

    fn load_balancer(&mut self, qname: &str, cfg: &LoadBalancer) -> Result<LbService, String> {
        let mut upstreams = Vec::new();
        for s in &cfg.servers {
            let url: Uri = s
                .url
                .parse()
                .map_err(|e| format!("server url {:?}: {e}", s.url))?;
            match url.scheme_str() {
                Some("http") | Some("h2c") => {}
                Some("https") => {
                    return Err(format!(
                        "server url {:?}: https upstreams are not supported yet",
                        s.url
                    ))
                }
                _ => {
                    return Err(format!(
                        "server url {:?}: scheme must be http or h2c",
                        s.url
                    ))
                }
            }
            if url.host().is_none() {
                return Err(format!("server url {:?} has no host", s.url));
            }
            let health = self.env.health.get(qname, &s.url);
            upstreams.push(Upstream {
                url,
                weight: s.weight.unwrap_or(1),
                health,
            });
        }
        if let Some(hc) = &cfg.health_check {
            let targets = upstreams
                .iter()
                .map(|u| (u.url.clone(), u.health.clone()))
                .collect();
            let handle = lb::spawn_health_check(qname.to_string(), hc.clone(), targets)
                .map_err(|e| format!("healthCheck: {e}"))?;
            self.health_checks.push(handle);
        }
        let sticky = cfg.sticky.as_ref().and_then(|s| s.cookie.as_ref());
        let balancer = Balancer::new(qname, upstreams, sticky);
        Ok(LbService::new(
            qname.to_string(),
            balancer,
            cfg.pass_host_header,
            self.env.clients.clone(),
        ))
    }

    /// Services and middlewares no router uses still appear in the API with their errors.
    fn record_unused(&mut self) {
        let mut missing_services = Vec::new();
        let mut missing_middlewares = Vec::new();
        for (provider, cfg) in self.configs {
            for name in cfg.http.services.keys() {
                let q = qualify(name, provider);
                if !self.services.contains_key(&q) {
                    missing_services.push(q);
                }
            }
            for name in cfg.http.middlewares.keys() {
                let q = qualify(name, provider);
                if !self.middlewares.contains_key(&q) {
                    missing_middlewares.push(q);
                }
            }
        }
        for q in missing_services {
            let r = self.build_service(&q, 0);
            self.services.insert(q, r);
        }
        for q in missing_middlewares {
            let _ = self.middleware(&q);
        }
        let live: HashSet<(String, String)> = self
            .info
            .services
            .iter()
            .flat_map(|(n, s)| {
                s.config.load_balancer.iter().flat_map(move |lb| {
                    lb.servers
                        .iter()
                        .map(move |srv| (n.clone(), srv.url.clone()))
                })
            })
            .collect();
        self.env.health.retain(&live);
    }
}

/// What a middleware of provider `provider` may ask of the compiler: services
/// (an unqualified name is the provider's own) and the upstream clients.
struct MiddlewareContext<'c, 'a> {
    compiler: &'c mut Compiler<'a>,
    provider: &'c str,
}

impl middleware::BuildContext for MiddlewareContext<'_, '_> {
    fn service(&mut self, name: &str) -> Result<HttpService, String> {
        let qname = qualify(name, self.provider);
        self.compiler.service_handler_by_name(&qname)
    }

    fn clients(&self) -> &Clients {
        self.compiler.env.clients
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::tests::entry;

    #[test]
    fn higher_priority_first_then_name() {
        let rule = "PathPrefix(`/`)";
        let set = sorted(vec![
            (5, entry("b@file", rule)),
            (10, entry("z@file", rule)),
            (5, entry("a@file", rule)),
            (-1, entry("neg@file", rule)),
        ]);
        let order: Vec<&str> = set.routers.iter().map(|e| &*e.name).collect();
        assert_eq!(order, vec!["z@file", "a@file", "b@file", "neg@file"]);
    }

    #[test]
    fn references_are_qualified_by_their_provider() {
        assert_eq!(qualify("svc", "file"), "svc@file");
        assert_eq!(qualify("svc@docker", "file"), "svc@docker");
    }

    #[test]
    fn one_broken_router_or_service_leaves_the_others_alone() {
        let dynamic: DynamicConfig = serde_json::from_value(serde_json::json!({"http": {
            "routers": {
                "good": {"rule": "Host(`good.test`)", "service": "ok"},
                "badrule": {"rule": "Host(`x.test`", "service": "ok"},
                "nosvc": {"rule": "Host(`y.test`)", "service": "missing"},
                "badmw": {"rule": "Host(`z.test`)", "service": "ok", "middlewares": ["nope"]},
                "badscheme": {"rule": "Host(`w.test`)", "service": "ftp"},
            },
            "services": {
                "ok": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:1"}]}},
                "ftp": {"loadBalancer": {"servers": [{"url": "ftp://127.0.0.1:1"}]}},
            },
        }}))
        .unwrap();
        let configs = BTreeMap::from([("file", dynamic)]);
        let entrypoints = vec![EntryPointSpec {
            name: "web".into(),
            tls: false,
            middlewares: vec![],
            as_default: false,
            admin: false,
        }];
        let clients = Clients::new(Default::default());
        let health = HealthRegistry::new();
        let internal = HashMap::new();
        let env = CompileEnv {
            entrypoints: &entrypoints,
            default_syntax: RuleSyntax::V3,
            clients: &clients,
            health: &health,
            internal: &internal,
        };
        let table = compile(&configs, &env);
        let status = |n: &str| table.info.routers[n].status;
        assert_eq!(status("good@file"), Status::Enabled);
        for bad in ["badrule@file", "nosvc@file", "badmw@file", "badscheme@file"] {
            assert_eq!(status(bad), Status::Disabled, "{bad}");
            assert!(table.info.routers[bad].errors[0].contains(bad), "{bad}");
        }
        assert!(table.info.routers["badrule@file"].errors[0].contains("column"));
        assert_eq!(table.info.services["ftp@file"].status, Status::Disabled);
        let web = table.entrypoint("web").unwrap();
        assert_eq!(web.plain.len(), 1);
    }
}
