//! Assembling and running the proxy from a static configuration: entrypoints,
//! providers, the aggregator that compiles their output into route tables, and the
//! shutdown sequence.

mod observe;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};
use wharf_certstore::acme::DesiredCertificates;

use crate::certs::EntryPointTlsDefaults;
use crate::config::static_config::{StaticConfig, ADMIN_ENTRYPOINT};
use crate::config::{load::parse_address, DynamicConfig};
use crate::forward::client::{ClientSettings, Clients};
use crate::forward::headers::TrustedPeers;
use crate::lb::HealthRegistry;
use crate::metrics::{AcmeCollector, CertsCollector, Metrics, ServersCollector};
use crate::middleware::HttpService;
use crate::provider::activity::ProviderActivity;
use crate::provider::cluster::{self, ClusterProvider};
use crate::provider::docker::{DockerProvider, ProviderKind};
use crate::provider::{file, ProviderUpdate};
use crate::router::{compile, CompileEnv, EntryPointSpec, RouteTable};
use crate::server::redirect::Redirect;
use crate::server::{self, AdminInfo, EntryPointRuntime, State};

/// How long start-up waits for the Docker providers' first listing.
const DOCKER_INITIAL_WAIT: Duration = Duration::from_secs(2);

/// How long start-up waits for the shared routing table (cluster mode).
const CLUSTER_INITIAL_WAIT: Duration = Duration::from_secs(2);

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An entrypoint's configuration is invalid.
    #[error("entrypoint {entrypoint:?}: {message}")]
    EntryPoint {
        /// Entrypoint name.
        entrypoint: String,
        /// What is wrong.
        message: String,
    },
    /// Binding a listener failed.
    #[error(transparent)]
    Bind(#[from] server::ServerError),
    /// TLS could not be set up.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The certificate store or a certificate resolver could not be set up.
    #[error(transparent)]
    Certificates(#[from] crate::certs::setup::SetupError),
    /// Metrics or the access log could not be set up (the message names the setting).
    #[error("{0}")]
    Observability(String),
    /// The `cluster` section is invalid.
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    /// The traffic workers could not be started or given the listening sockets.
    #[error("cannot start the traffic workers: {0}")]
    Workers(#[source] std::io::Error),
}

/// Compiles provider output into route tables.
struct Assembler {
    entrypoints: Vec<EntryPointSpec>,
    default_syntax: crate::config::dynamic::RuleSyntax,
    clients: Clients,
    health: HealthRegistry,
    internal: HashMap<String, HttpService>,
    crypto: Arc<rustls::crypto::CryptoProvider>,
    resolver: Arc<wharf_certstore::CertResolver>,
    /// Entrypoints' `http.tls` defaults, for the certificates routers need.
    tls_defaults: BTreeMap<String, EntryPointTlsDefaults>,
    /// Where the certificates the routers need are sent, when ACME is on.
    wanted: Option<watch::Sender<DesiredCertificates>>,
    /// Router and service metrics are resolved here for every new table.
    metrics: Option<Arc<Metrics>>,
}

impl Assembler {
    /// Compiles the route table, publishes the static certificates and tells the
    /// ACME manager which certificates the routers need.
    fn apply(&self, configs: &BTreeMap<&'static str, DynamicConfig>, state: &State) -> usize {
        self.resolver.set_source(
            "file",
            crate::tls::static_certificates(configs, &self.crypto),
        );
        let mut table = self.compile(configs);
        if let Some(m) = &self.metrics {
            table.attach_metrics(m);
        }
        let routers = table.info.routers.len();
        if let Some(tx) = &self.wanted {
            let wanted = crate::certs::wanted(&table.info, &self.tls_defaults, self.default_syntax);
            tx.send_if_modified(|current| {
                let changed = *current != wanted;
                *current = wanted;
                changed
            });
        }
        state.table.store(Arc::new(table));
        if let Some(m) = &self.metrics {
            m.reloaded();
        }
        routers
    }

    fn compile(&self, configs: &BTreeMap<&'static str, DynamicConfig>) -> RouteTable {
        let env = CompileEnv {
            entrypoints: &self.entrypoints,
            default_syntax: self.default_syntax,
            clients: &self.clients,
            health: &self.health,
            internal: &self.internal,
        };
        compile(configs, &env)
    }
}

/// Runs wharf until `shutdown` completes, then drains connections and returns.
pub async fn run(cfg: StaticConfig, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let ft = &cfg.servers_transport.forwarding_timeouts;
    let worker_count = server::workers::Workers::default_count();
    let clients = Clients::per_worker(
        ClientSettings {
            connect_timeout: ft.dial_timeout.0,
            idle_timeout: ft.idle_conn_timeout.0,
            max_idle_per_host: cfg.servers_transport.max_idle_conns_per_host.unwrap_or(200),
            response_header_timeout: ft.response_header_timeout.0,
        },
        worker_count,
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = Arc::new(
        wharf_certstore::CertResolver::new(&provider).map_err(|e| RunError::Tls(e.to_string()))?,
    );
    let tls_config = crate::tls::server_config(provider.clone(), resolver.clone())
        .map_err(|e| RunError::Tls(e.to_string()))?;
    let tls_config = Arc::new(tls_config);
    let cluster_settings = cluster::Settings::from_config(&cfg)?;
    let store = match &cluster_settings {
        Some(_) => Some(crate::certs::setup::open_store(&cfg.cert_store)?),
        None => None,
    };
    let acme = crate::certs::setup::start(&cfg, &resolver, &provider, store.clone()).await?;
    // `/api/store` shows the store's health whenever one is open: for ACME, or for
    // the cluster provider alone on a worker without resolvers.
    let admin_store = acme
        .as_ref()
        .map(|a| a.store.clone())
        .or_else(|| store.clone())
        .map(crate::server::StoreHandle);
    let observability = observe::Observability::start(&cfg)?;
    if let Some(m) = &observability.metrics {
        m.register_collector(Box::new(CertsCollector(resolver.clone())));
        if let Some(a) = &acme {
            m.register_collector(Box::new(AcmeCollector(a.manager.counters())));
        }
    }

    let ping_ep = cfg.ping.as_ref().map(|p| p.entry_point.clone());
    let mut runtimes = Vec::new();
    let mut specs = Vec::new();
    let mut ep_views = Vec::new();
    for (name, ep) in &cfg.entry_points {
        let ep_err = |message: String| RunError::EntryPoint {
            entrypoint: name.clone(),
            message,
        };
        let address = parse_address(&ep.address).map_err(|e| ep_err(e.to_string()))?;
        let trusted = TrustedPeers::new(
            ep.forwarded_headers.insecure,
            &ep.forwarded_headers.trusted_ips,
        )
        .map_err(|e| ep_err(format!("forwardedHeaders.trustedIPs: {e}")))?;
        let admin = name == ADMIN_ENTRYPOINT;
        let listener = server::bind(name, address)?;
        info!(entrypoint = %name, address = %address, "listening");
        let timeouts = &ep.transport.responding_timeouts;
        let redirect = match ep
            .http
            .redirections
            .as_ref()
            .and_then(|r| r.entry_point.as_ref())
        {
            Some(r) => Some(
                redirect_target(&cfg, r)
                    .map_err(|m| ep_err(format!("http.redirections.entryPoint: {m}")))?,
            ),
            None => None,
        };
        runtimes.push((
            listener,
            EntryPointRuntime {
                name: name.as_str().into(),
                tls: (!admin).then(|| tls_config.clone()),
                trusted,
                read_timeout: timeouts.read_timeout.0,
                idle_timeout: timeouts.idle_timeout.0,
                ping: ping_ep.as_deref() == Some(name.as_str()) && !admin,
                admin,
                redirect,
                observe: observability.entrypoint(name),
            },
            ep.transport.life_cycle.clone(),
        ));
        specs.push(EntryPointSpec {
            name: name.clone(),
            tls: ep.http.tls.is_some(),
            middlewares: ep.http.middlewares.clone(),
            as_default: ep.as_default,
            admin,
        });
        let mut view = serde_json::to_value(ep).unwrap_or_default();
        if let Some(o) = view.as_object_mut() {
            o.insert("name".into(), name.clone().into());
        }
        ep_views.push(view);
    }

    let mut providers = Vec::new();
    let mut provider_names = Vec::new();
    if cfg.providers.file.is_some() {
        providers.push("File".to_string());
        provider_names.push("file");
    }
    if cfg.providers.docker.is_some() {
        providers.push("Docker".to_string());
        provider_names.push(ProviderKind::Docker.name());
    }
    if cfg.providers.swarm.is_some() {
        providers.push("Swarm".to_string());
        provider_names.push(ProviderKind::Swarm.name());
    }
    let activity = ProviderActivity::new(&provider_names);
    let (tx, rx) = mpsc::channel::<ProviderUpdate>(16);
    // Cluster mode: the shared provider's output goes to the cluster provider, which
    // publishes it (when this node holds the lock) and serves the shared table. A
    // follower does not run the shared provider at all.
    let shared = cluster_settings.as_ref().map(|s| s.provider);
    let follower = cluster_settings
        .as_ref()
        .is_some_and(|s| !s.eligibility.possible());
    let (local_tx, local_rx) = mpsc::channel::<ProviderUpdate>(16);
    let provider_tx = |name: &str| {
        if shared == Some(name) {
            local_tx.clone()
        } else {
            tx.clone()
        }
    };
    let runs = |name: &str| !(follower && shared == Some(name));
    // Docker providers: serve with their first listing when the engine answers
    // within DOCKER_INITIAL_WAIT, otherwise start without it and fill in later.
    let docker_sections = [
        (ProviderKind::Docker, cfg.providers.docker.clone()),
        (ProviderKind::Swarm, cfg.providers.swarm.clone()),
    ];
    let mut docker_providers = Vec::new();
    for (kind, section) in docker_sections {
        if let Some(section) = section.filter(|_| runs(kind.name())) {
            docker_providers.push(DockerProvider::spawn(
                section,
                kind,
                cfg.core.default_rule_syntax,
                provider_tx(kind.name()),
            ));
        }
    }
    let label_issues = docker_providers
        .iter()
        .map(|p| (p.name(), p.subscribe_errors()))
        .collect();

    // Providers: an initial synchronous load, so wharf starts with its routes.
    let mut configs = BTreeMap::new();
    let mut initial_local = None;
    if let Some(fp) = cfg.providers.file.clone().filter(|_| runs("file")) {
        let initial = match file::load(&fp) {
            Ok(c) => Some(c),
            Err(e) => {
                error!(error = %e, "file provider: invalid configuration, starting without it");
                None
            }
        };
        if let Some(c) = &initial {
            if shared == Some("file") {
                initial_local = Some(c.clone());
            } else {
                configs.insert("file", c.clone());
                activity.record("file", SystemTime::now());
            }
        }
        tokio::spawn(file::run(fp, initial, provider_tx("file")));
    }
    let deadline = tokio::time::Instant::now() + DOCKER_INITIAL_WAIT;
    for p in &mut docker_providers {
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        match p.initial(wait).await {
            Some(c) if shared == Some(p.name()) => initial_local = Some(c),
            Some(c) => {
                configs.insert(p.name(), c);
                activity.record(p.name(), SystemTime::now());
            }
            None => info!(
                provider = p.name(),
                "Docker did not answer in time; starting without its routes"
            ),
        }
    }
    let mut cluster = match (cluster_settings, store) {
        (Some(settings), Some(store)) => Some(ClusterProvider::spawn(
            settings,
            store,
            (!follower).then_some(local_rx),
            initial_local,
            tx.clone(),
        )),
        _ => None,
    };
    drop(local_tx);
    if let Some(c) = &mut cluster {
        match c.initial(CLUSTER_INITIAL_WAIT).await {
            Some(config) => {
                configs.insert(c.name(), config);
                activity.record(c.name(), SystemTime::now());
            }
            None => info!(
                provider = c.name(),
                "no shared routing table yet; starting without it"
            ),
        }
    }
    drop(tx);

    let state = Arc::new(State {
        table: ArcSwap::from_pointee(RouteTable::default()),
        terminating: Default::default(),
        terminating_status: cfg
            .ping
            .as_ref()
            .map(|p| p.terminating_status_code)
            .unwrap_or(503),
        admin: AdminInfo {
            start_date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            providers,
            entrypoints: ep_views,
            certificates: acme.as_ref().map(|a| a.status.clone()),
            provider_activity: activity.clone(),
            dashboard: cfg.api.as_ref().is_some_and(|api| api.dashboard),
            metrics: observability.metrics_on_admin(),
            store: admin_store,
            cluster: cluster.as_ref().map(ClusterProvider::status),
        },
        challenges: acme
            .as_ref()
            .map(|a| a.challenges.clone() as Arc<dyn wharf_certstore::challenge::ChallengeSource>),
        label_issues,
    });
    if let Some(m) = &observability.metrics {
        m.register_collector(Box::new(ServersCollector(Arc::downgrade(&state))));
    }
    let (wanted_tx, wanted_rx) = watch::channel(DesiredCertificates::new());
    let assembler = Assembler {
        entrypoints: specs,
        default_syntax: cfg.core.default_rule_syntax,
        clients,
        health: HealthRegistry::new(),
        internal: internal_services(Arc::downgrade(&state), observability.metrics.clone()),
        crypto: provider,
        resolver,
        tls_defaults: crate::certs::entrypoint_defaults(&cfg),
        wanted: acme.is_some().then_some(wanted_tx),
        metrics: observability.metrics.clone(),
    };

    assembler.apply(&configs, &state);
    let throttle = cfg
        .providers
        .providers_throttle_duration
        .map(|d| d.0)
        .unwrap_or(Duration::from_millis(100));
    tokio::spawn(aggregate(rx, configs, assembler, state.clone(), throttle));
    if let Some(acme) = acme {
        tokio::spawn(acme.manager.run(wanted_rx));
    }

    // Entrypoints.
    let stop_traffic = CancellationToken::new();
    let stop_admin = CancellationToken::new();
    let drain = CancellationToken::new();
    let tracker = TaskTracker::new();
    let admin_tracker = TaskTracker::new();
    let accept_grace = runtimes
        .iter()
        .map(|(_, _, l)| l.request_accept_grace_timeout.0)
        .max()
        .unwrap_or_default();
    let grace = runtimes
        .iter()
        .map(|(_, _, l)| l.grace_time_out.0)
        .max()
        .unwrap_or(Duration::from_secs(10));
    // Every worker accepts from each entrypoint's socket and serves what it accepted.
    let workers = server::workers::Workers::start(worker_count).map_err(RunError::Workers)?;
    info!(workers = workers.len(), "serving");
    let mut loops = Vec::new();
    for (listener, rt, _) in runtimes {
        let (stop, tr) = if rt.admin {
            (stop_admin.clone(), admin_tracker.clone())
        } else {
            (stop_traffic.clone(), tracker.clone())
        };
        let conn_drain = if rt.admin {
            stop_admin.clone()
        } else {
            drain.clone()
        };
        let rt = Arc::new(rt);
        let listener = listener.into_std().map_err(RunError::Workers)?;
        let mut copies = Vec::new();
        for _ in 0..workers.len() {
            copies.push(listener.try_clone().map_err(RunError::Workers)?);
        }
        // The original closes here; each worker closes its copy when it stops accepting.
        drop(listener);
        let mut copies = copies.into_iter();
        loops.extend(workers.spawn_each(|_| {
            let copy = copies.next();
            let (rt, state, stop, conn_drain, tr) = (
                rt.clone(),
                state.clone(),
                stop.clone(),
                conn_drain.clone(),
                tr.clone(),
            );
            async move {
                let Some(listener) = copy.and_then(|c| tokio::net::TcpListener::from_std(c).ok())
                else {
                    warn!(entrypoint = %rt.name, "a worker cannot accept on this entrypoint");
                    return;
                };
                server::serve(listener, rt, state, stop, conn_drain, tr).await
            }
        }));
    }

    shutdown.await;
    info!(accept_grace = ?accept_grace, grace = ?grace, "shutting down");
    // Hand the publisher lock over at once; the current routes keep serving.
    if let Some(c) = cluster {
        c.stop().await;
    }
    state.terminating.store(true, Ordering::SeqCst);
    tokio::time::sleep(accept_grace).await;
    stop_traffic.cancel();
    drain.cancel();
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        info!(
            remaining = tracker.len(),
            "grace period over, closing remaining connections"
        );
    }
    stop_admin.cancel();
    admin_tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(1), admin_tracker.wait()).await;
    for l in loops {
        l.abort();
    }
    drop(workers);
    // Held until here so that their label errors stay readable while serving.
    drop(docker_providers);
    info!("stopped");
    Ok(())
}

/// The redirect an entrypoint's `http.redirections.entryPoint` asks for: `to` names
/// an entrypoint (its port is used) or is a port number.
fn redirect_target(
    cfg: &StaticConfig,
    r: &crate::config::static_config::RedirectEntryPoint,
) -> Result<Redirect, String> {
    let port = match cfg.entry_points.get(&r.to) {
        Some(target) => parse_address(&target.address)
            .map_err(|e| e.to_string())?
            .port(),
        None => {
            r.to.trim_start_matches(':')
                .parse::<u16>()
                .map_err(|_| format!("{:?} is neither an entrypoint nor a port", r.to))?
        }
    };
    Ok(Redirect {
        scheme: r.scheme.clone(),
        port,
        permanent: r.permanent,
    })
}

/// Keeps the latest configuration of every provider and swaps in a new route table
/// when they change, coalescing bursts within `throttle`.
async fn aggregate(
    mut rx: mpsc::Receiver<ProviderUpdate>,
    mut configs: BTreeMap<&'static str, DynamicConfig>,
    assembler: Assembler,
    state: Arc<State>,
    throttle: Duration,
) {
    let mut applied = configs.clone();
    let activity = &state.admin.provider_activity;
    while let Some(update) = rx.recv().await {
        activity.record(update.provider, SystemTime::now());
        let received = std::time::Instant::now();
        configs.insert(update.provider, update.config);
        let deadline = tokio::time::sleep(throttle);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                more = rx.recv() => match more {
                    Some(u) => {
                        activity.record(u.provider, SystemTime::now());
                        configs.insert(u.provider, u.config);
                    }
                    None => break,
                },
            }
        }
        if configs == applied {
            continue;
        }
        let routers = assembler.apply(&configs, &state);
        if let Some(m) = &assembler.metrics {
            m.synced(received.elapsed().as_secs_f64());
        }
        applied = configs.clone();
        info!(routers, "configuration applied");
    }
}

/// wharf's own services that routers may target: `api@internal`, `ping@internal`,
/// `prometheus@internal` (when metrics are on).
fn internal_services(
    state: Weak<State>,
    metrics: Option<Arc<Metrics>>,
) -> HashMap<String, HttpService> {
    let mut map = HashMap::new();
    if let Some(m) = metrics {
        let svc = tower::service_fn(move |_req: http::Request<crate::body::Body>| {
            let resp = m.respond();
            async move { Ok::<_, std::convert::Infallible>(resp) }
        });
        map.insert("prometheus@internal".to_string(), HttpService::new(svc));
    }
    for name in ["api@internal", "ping@internal", "dashboard@internal"] {
        let state = state.clone();
        let svc = tower::service_fn(move |req: http::Request<crate::body::Body>| {
            let state = state.upgrade();
            async move {
                Ok::<_, std::convert::Infallible>(match state {
                    Some(s) => crate::admin::handle(req, &s).await,
                    None => crate::error::ProxyError::NoServer.into_response(),
                })
            }
        });
        map.insert(name.to_string(), HttpService::new(svc));
    }
    map
}
