//! Prometheus metrics with Traefik's names and labels (`traefik_entrypoint_*`,
//! `traefik_router_*`, `traefik_service_*`, `traefik_config_*`, ...) plus wharf's
//! own (`wharf_*`), served in the text exposition format on `/metrics`.
//!
//! Request metrics are recorded through [`RequestScope`]s made ahead of time: one per
//! entrypoint at start-up, one per router and service when a route table is
//! compiled. A finished request increments atomics only.

mod collect;
pub mod scope;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use http::{header, HeaderValue, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::body::{self, Body};
use crate::config::static_config::Prometheus;
pub use collect::{AcmeCollector, CertsCollector, ServersCollector};
use scope::{Buckets, FixedLabels, RequestFamilies};
pub use scope::{Outcome, RequestScope, TlsInfo};

/// Content type of the exposition (OpenMetrics text, which Prometheus reads).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets of wharf's provider sync latency histogram, in seconds.
const SYNC_BUCKETS: [f64; 8] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

type OneLabel = [(&'static str, Arc<str>); 1];
type TwoLabels = [(&'static str, Arc<str>); 2];

/// Every metric wharf exports, and the registry that encodes them.
pub struct Metrics {
    registry: Mutex<Registry>,
    settings: Prometheus,
    add_internals: bool,
    entry: RequestFamilies,
    router: RequestFamilies,
    service: RequestFamilies,
    open_connections: Family<TwoLabels, Gauge>,
    retries: Family<OneLabel, Counter>,
    config_reloads: Counter,
    last_reload_success: Gauge<f64, AtomicU64>,
    sync_seconds: Histogram,
    /// Service scopes by name, kept across route table rebuilds.
    services: Mutex<HashMap<Arc<str>, Arc<RequestScope>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The router and service metrics of one route, resolved when the table is compiled.
#[derive(Debug, Clone, Default)]
pub struct RouteMetrics {
    /// `traefik_router_*`, when `addRoutersLabels` is on.
    pub router: Option<Arc<RequestScope>>,
    /// `traefik_service_*`, when `addServicesLabels` is on.
    pub service: Option<Arc<RequestScope>>,
}

impl RouteMetrics {
    /// Counts one finished request in both scopes.
    pub fn record(&self, o: &Outcome<'_>) {
        if let Some(r) = &self.router {
            r.record(o);
        }
        if let Some(s) = &self.service {
            s.record(o);
        }
    }
}

impl Metrics {
    /// Registers every family for `settings`; `add_internals` also counts requests
    /// to wharf's own services.
    pub fn new(settings: &Prometheus, add_internals: bool) -> Self {
        let buckets = Buckets(settings.buckets.iter().copied().collect());
        let m = Self {
            registry: Mutex::new(Registry::default()),
            settings: settings.clone(),
            add_internals,
            entry: RequestFamilies::new(&buckets),
            router: RequestFamilies::new(&buckets),
            service: RequestFamilies::new(&buckets),
            open_connections: Family::default(),
            retries: Family::default(),
            config_reloads: Counter::default(),
            last_reload_success: Gauge::default(),
            sync_seconds: Histogram::new(SYNC_BUCKETS),
            services: Mutex::new(HashMap::new()),
        };
        {
            let mut r = m.lock_registry();
            r.register(
                "traefik_config_reloads",
                "Config reloads",
                m.config_reloads.clone(),
            );
            r.register(
                "traefik_config_last_reload_success",
                "Last config reload success",
                m.last_reload_success.clone(),
            );
            r.register(
                "traefik_open_connections",
                "How many open connections exist, by entryPoint and protocol",
                m.open_connections.clone(),
            );
            if settings.add_entry_points_labels {
                register_requests(&mut r, "traefik_entrypoint", "entrypoint", &m.entry);
            }
            if settings.add_routers_labels {
                register_requests(&mut r, "traefik_router", "router", &m.router);
            }
            if settings.add_services_labels {
                register_requests(&mut r, "traefik_service", "service", &m.service);
                r.register(
                    "traefik_service_retries",
                    "How many request retries happened on a service",
                    m.retries.clone(),
                );
            }
            r.register(
                "wharf_provider_sync_seconds",
                "Time from a provider's new configuration reaching the aggregator to the new route table being live",
                m.sync_seconds.clone(),
            );
        }
        m
    }

    fn lock_registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a collector read on every scrape.
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        self.lock_registry().register_collector(collector);
    }

    /// Registers a counter maintained elsewhere (such as the access log's dropped lines).
    pub fn register_counter(&self, name: &str, help: &str, counter: Counter) {
        self.lock_registry().register(name, help, counter);
    }

    /// The entrypoint `metrics.prometheus.entryPoint` names.
    pub fn entry_point(&self) -> &str {
        &self.settings.entry_point
    }

    /// Whether `/metrics` is served without a router (`manualRouting` off).
    pub fn automatic_routing(&self) -> bool {
        !self.settings.manual_routing
    }

    /// The request scope of an entrypoint, when `addEntryPointsLabels` is on.
    pub fn entrypoint(&self, name: &str) -> Option<Arc<RequestScope>> {
        self.settings.add_entry_points_labels.then(|| {
            let fixed: FixedLabels = Arc::new([("entrypoint", Arc::from(name))]);
            Arc::new(RequestScope::new(&self.entry, fixed))
        })
    }

    /// The open-connections gauge of an entrypoint.
    pub fn open_connections(&self, entrypoint: &str) -> Gauge {
        self.open_connections.get_or_create_owned(&[
            ("entrypoint", entrypoint.into()),
            ("protocol", "TCP".into()),
        ])
    }

    /// The router and service scopes of a route (`None` when neither is counted).
    pub fn route(&self, router: &Arc<str>, service: &Arc<str>) -> Option<Arc<RouteMetrics>> {
        if !self.add_internals && service.ends_with("@internal") {
            return None;
        }
        let router_scope = self.settings.add_routers_labels.then(|| {
            let fixed: FixedLabels =
                Arc::new([("router", router.clone()), ("service", service.clone())]);
            Arc::new(RequestScope::new(&self.router, fixed))
        });
        let service_scope = self.settings.add_services_labels.then(|| {
            let mut services = self.services.lock().unwrap_or_else(|p| p.into_inner());
            services
                .entry(service.clone())
                .or_insert_with(|| {
                    let fixed: FixedLabels = Arc::new([("service", service.clone())]);
                    Arc::new(RequestScope::new(&self.service, fixed))
                })
                .clone()
        });
        if router_scope.is_none() && service_scope.is_none() {
            return None;
        }
        Some(Arc::new(RouteMetrics {
            router: router_scope,
            service: service_scope,
        }))
    }

    /// Forgets service scopes no route uses any more (their counts stay exported).
    pub fn retain_services(&self, live: &std::collections::HashSet<Arc<str>>) {
        let mut services = self.services.lock().unwrap_or_else(|p| p.into_inner());
        services.retain(|name, _| live.contains(name));
    }

    /// Counts `n` retries of a request on `service`.
    pub fn retried(&self, service: &str, n: u64) {
        if n > 0 && self.settings.add_services_labels {
            self.retries
                .get_or_create(&[("service", service.into())])
                .inc_by(n);
        }
    }

    /// Counts a configuration reload that went live now.
    pub fn reloaded(&self) {
        self.config_reloads.inc();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        self.last_reload_success.set(now);
    }

    /// Records how long a provider change took to go live.
    pub fn synced(&self, seconds: f64) {
        self.sync_seconds.observe(seconds);
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.lock_registry();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        out
    }

    /// The `/metrics` response.
    pub fn respond(&self) -> Response<Body> {
        let mut resp = Response::new(body::full(self.encode()));
        *resp.status_mut() = StatusCode::OK;
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        resp
    }
}

/// Registers the five request families of one scope kind under `prefix`.
fn register_requests(r: &mut Registry, prefix: &str, what: &str, f: &RequestFamilies) {
    r.register(
        format!("{prefix}_requests"),
        format!("How many HTTP requests processed on a {what}, partitioned by status code, protocol, and method"),
        f.requests.clone(),
    );
    r.register(
        format!("{prefix}_request_duration_seconds"),
        format!("How long it took to process the request on a {what}, partitioned by status code, protocol, and method"),
        f.duration.clone(),
    );
    r.register(
        format!("{prefix}_requests_bytes"),
        format!("The total size of requests in bytes handled by a {what}, partitioned by status code, protocol, and method"),
        f.request_bytes.clone(),
    );
    r.register(
        format!("{prefix}_responses_bytes"),
        format!("The total size of responses in bytes handled by a {what}, partitioned by status code, protocol, and method"),
        f.response_bytes.clone(),
    );
    r.register(
        format!("{prefix}_requests_tls"),
        format!("How many HTTP requests with TLS processed on a {what}, partitioned by TLS version and TLS cipher"),
        f.tls.clone(),
    );
}

#[cfg(test)]
mod tests;
