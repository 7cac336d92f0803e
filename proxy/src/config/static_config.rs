//! The static configuration, with Traefik's static-configuration key names, so an
//! existing `traefik.yml` / `traefik.toml` works as wharf's configuration file.
//! Settings wharf adds (`certStore`, `cluster`) have their own sections.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::GoDuration;
use super::dynamic::{Domain, RuleSyntax};
use crate::provider::docker::config::DockerProviderConfig;

mod acme;
mod cluster;
mod observability;

pub use acme::{
    Acme, CertStore, ConsulCertStore, ConsulTlsConfig, Eab, FileCertStore, HttpChallenge, KeyType,
    TlsChallenge, DEFAULT_STORE_DIRECTORY, LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING,
};
pub use cluster::{Cluster, ClusterMode, DEFAULT_KEY_PREFIX, DEFAULT_LOCK_TTL};
pub use observability::{
    AccessLog, AccessLogFields, AccessLogFilters, AccessLogHeaders, Metrics, Prometheus,
    DEFAULT_BUCKETS,
};

/// Name of the entrypoint that serves the API, dashboard, ping and metrics.
pub const ADMIN_ENTRYPOINT: &str = "traefik";

/// Address of the admin entrypoint when the configuration does not give one
/// (loopback only, unlike Traefik's `:8080`).
pub const DEFAULT_ADMIN_ADDRESS: &str = "127.0.0.1:8080";

/// The whole static configuration.
///
/// Serde's defaults here are per field. wharf's defaults for what the user left out
/// altogether (the `web`, `websecure` and admin entrypoints; `api`, `ping` and
/// `metrics.prometheus` turned on) are applied when loading: see
/// [`Loaded`](super::load::Loaded).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticConfig {
    /// Global switches (accepted for compatibility).
    pub global: Option<serde_json::Value>,
    /// Core settings.
    pub core: Core,
    /// Listeners by name.
    pub entry_points: BTreeMap<String, EntryPoint>,
    /// How wharf talks to upstream servers.
    pub servers_transport: ServersTransport,
    /// Configuration providers.
    pub providers: Providers,
    /// The JSON API and dashboard.
    pub api: Option<Api>,
    /// The `/ping` health endpoint.
    pub ping: Option<Ping>,
    /// Metrics exporters.
    pub metrics: Option<Metrics>,
    /// Application log.
    pub log: Log,
    /// Access log; absent means off.
    pub access_log: Option<AccessLog>,
    /// ACME certificate resolvers by name.
    pub certificates_resolvers: BTreeMap<String, CertificateResolver>,
    /// Where certificates, accounts and challenges are stored (wharf).
    pub cert_store: CertStore,
    /// Sharing the routing table between instances through the store (wharf).
    pub cluster: Option<Cluster>,
    /// Tracing exporters (accepted for compatibility).
    pub tracing: Option<serde_json::Value>,
    /// Experimental features (accepted for compatibility).
    pub experimental: Option<serde_json::Value>,
    /// Host resolver (accepted for compatibility).
    pub host_resolver: Option<serde_json::Value>,
    /// TCP servers transport (accepted for compatibility).
    pub tcp_servers_transport: Option<serde_json::Value>,
}

/// `core` settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Core {
    /// Rule syntax for routers that do not set `ruleSyntax` (default v3).
    pub default_rule_syntax: RuleSyntax,
}

/// One listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct EntryPoint {
    /// `[host]:port`, optionally followed by `/tcp` or `/udp`.
    pub address: String,
    /// Whether routers without entrypoints attach here (Traefik `asDefault`).
    pub as_default: bool,
    /// Per-entrypoint HTTP settings.
    pub http: EntryPointHttp,
    /// Connection timeouts and shutdown behaviour.
    pub transport: EntryPointTransport,
    /// Which peers may set X-Forwarded-* headers.
    pub forwarded_headers: ForwardedHeaders,
    /// PROXY protocol (accepted for compatibility).
    pub proxy_protocol: Option<serde_json::Value>,
    /// HTTP/2 settings.
    pub http2: Option<serde_json::Value>,
    /// HTTP/3 settings (accepted for compatibility).
    pub http3: Option<serde_json::Value>,
    /// UDP settings (accepted for compatibility).
    pub udp: Option<serde_json::Value>,
}

impl EntryPoint {
    /// An entrypoint listening on `address`, with default settings otherwise.
    pub fn with_address(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            ..Self::default()
        }
    }
}

/// `entryPoints.<name>.http`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct EntryPointHttp {
    /// Redirect every request to another entrypoint.
    pub redirections: Option<Redirections>,
    /// Middlewares applied to every router on this entrypoint.
    pub middlewares: Vec<String>,
    /// TLS for every router on this entrypoint; present means the entrypoint terminates TLS.
    pub tls: Option<EntryPointTls>,
    /// Encode query semicolons (accepted for compatibility).
    pub encode_query_semicolons: Option<bool>,
}

/// `entryPoints.<name>.http.redirections`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Redirections {
    /// Redirect to another entrypoint.
    pub entry_point: Option<RedirectEntryPoint>,
}

/// `entryPoints.<name>.http.redirections.entryPoint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectEntryPoint {
    /// Target entrypoint name (or a port).
    pub to: String,
    /// Target scheme (default https).
    pub scheme: String,
    /// 301/308 when true (default), 302/307 otherwise.
    pub permanent: bool,
    /// Priority of the generated router.
    pub priority: Option<i64>,
}

impl Default for RedirectEntryPoint {
    fn default() -> Self {
        Self {
            to: String::new(),
            scheme: "https".into(),
            permanent: true,
            priority: None,
        }
    }
}

/// `entryPoints.<name>.http.tls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct EntryPointTls {
    /// TLS options name.
    pub options: Option<String>,
    /// Default certificate resolver for routers on this entrypoint.
    pub cert_resolver: Option<String>,
    /// Default domains.
    pub domains: Vec<Domain>,
}

/// `entryPoints.<name>.transport`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct EntryPointTransport {
    /// Shutdown behaviour.
    pub life_cycle: LifeCycle,
    /// Timeouts on client connections.
    pub responding_timeouts: RespondingTimeouts,
    /// Close a keep-alive connection after this many requests (0 = unlimited).
    pub keep_alive_max_requests: u64,
    /// Close a keep-alive connection after this long (0 = unlimited).
    pub keep_alive_max_time: Option<GoDuration>,
}

/// `transport.lifeCycle`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct LifeCycle {
    /// Keep accepting requests this long after SIGTERM (default 0).
    pub request_accept_grace_timeout: GoDuration,
    /// Time in-flight requests get to finish after SIGTERM (default 10s).
    pub grace_time_out: GoDuration,
}

impl Default for LifeCycle {
    fn default() -> Self {
        Self {
            request_accept_grace_timeout: GoDuration(Duration::ZERO),
            grace_time_out: GoDuration(Duration::from_secs(10)),
        }
    }
}

/// `transport.respondingTimeouts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct RespondingTimeouts {
    /// Time to read the request headers (wharf's default 60s; Traefik's readTimeout also bounds the body).
    pub read_timeout: GoDuration,
    /// Time to write a response (0 = none, the default).
    pub write_timeout: GoDuration,
    /// How long an idle keep-alive connection stays open (default 180s).
    pub idle_timeout: GoDuration,
}

impl Default for RespondingTimeouts {
    fn default() -> Self {
        Self {
            read_timeout: GoDuration(Duration::from_secs(60)),
            write_timeout: GoDuration(Duration::ZERO),
            idle_timeout: GoDuration(Duration::from_secs(180)),
        }
    }
}

/// `entryPoints.<name>.forwardedHeaders`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardedHeaders {
    /// Trust X-Forwarded-* from every peer.
    pub insecure: bool,
    /// Peers (IPs or CIDRs) whose X-Forwarded-* headers are kept.
    #[serde(rename = "trustedIPs")]
    pub trusted_ips: Vec<String>,
    /// Headers listed in Connection that are kept (accepted for compatibility).
    pub connection: Vec<String>,
}

/// `serversTransport`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ServersTransport {
    /// Skip verification of upstream TLS certificates.
    pub insecure_skip_verify: bool,
    /// Extra CA certificates for upstream TLS.
    #[serde(rename = "rootCAs")]
    pub root_cas: Vec<String>,
    /// Idle pooled connections kept per upstream host (default 200).
    pub max_idle_conns_per_host: Option<usize>,
    /// Upstream timeouts.
    pub forwarding_timeouts: ForwardingTimeouts,
    /// Span settings (accepted for compatibility).
    pub spiffe: Option<serde_json::Value>,
}

/// `serversTransport.forwardingTimeouts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardingTimeouts {
    /// Time to connect to an upstream (default 30s).
    pub dial_timeout: GoDuration,
    /// Time to wait for the upstream's response headers (wharf's default 60s; 0 = none).
    pub response_header_timeout: GoDuration,
    /// How long an idle pooled upstream connection is kept (default 90s).
    pub idle_conn_timeout: GoDuration,
}

impl Default for ForwardingTimeouts {
    fn default() -> Self {
        Self {
            dial_timeout: GoDuration(Duration::from_secs(30)),
            response_header_timeout: GoDuration(Duration::from_secs(60)),
            idle_conn_timeout: GoDuration(Duration::from_secs(90)),
        }
    }
}

/// `providers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Providers {
    /// Quiet period before a provider's new configuration is applied (default 100ms in wharf).
    pub providers_throttle_duration: Option<GoDuration>,
    /// The file provider.
    pub file: Option<FileProvider>,
    /// The Docker provider (Traefik v2 style; `swarmMode` chooses services or containers).
    pub docker: Option<DockerProviderConfig>,
    /// The Swarm provider (Traefik v3 style).
    pub swarm: Option<DockerProviderConfig>,
}

/// `providers.file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct FileProvider {
    /// One dynamic-configuration file.
    pub filename: Option<String>,
    /// A directory of dynamic-configuration files.
    pub directory: Option<String>,
    /// Reload on change (default true).
    pub watch: bool,
    /// Accepted for compatibility.
    pub debug_log_generated_template: bool,
}

impl Default for FileProvider {
    fn default() -> Self {
        Self {
            filename: None,
            directory: None,
            watch: true,
            debug_log_generated_template: false,
        }
    }
}

/// `api`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Api {
    /// Serve the API on the `traefik` entrypoint without a router (default true in wharf).
    pub insecure: bool,
    /// Serve the dashboard (default true).
    pub dashboard: bool,
    /// Debug endpoints.
    pub debug: bool,
    /// Path prefix of the API and dashboard.
    pub base_path: String,
}

impl Default for Api {
    fn default() -> Self {
        Self {
            insecure: true,
            dashboard: true,
            debug: false,
            base_path: "/".into(),
        }
    }
}

/// `ping`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Ping {
    /// Entrypoint serving `/ping` (default `traefik`).
    pub entry_point: String,
    /// Do not add the ping route automatically.
    pub manual_routing: bool,
    /// Status answered once shutdown has started (default 503).
    pub terminating_status_code: u16,
}

impl Default for Ping {
    fn default() -> Self {
        Self {
            entry_point: ADMIN_ENTRYPOINT.into(),
            manual_routing: false,
            terminating_status_code: 503,
        }
    }
}

/// `log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Log {
    /// TRACE, DEBUG, INFO (default), WARN, ERROR, FATAL, PANIC.
    pub level: String,
    /// `common` (text, default) or `json`.
    pub format: String,
    /// Write to this file instead of stdout.
    pub file_path: Option<String>,
    /// Disable colours.
    pub no_color: bool,
    /// Rotation settings (accepted for compatibility).
    pub max_size: Option<u64>,
    /// Rotation settings (accepted for compatibility).
    pub max_age: Option<u64>,
    /// Rotation settings (accepted for compatibility).
    pub max_backups: Option<u64>,
    /// Rotation settings (accepted for compatibility).
    pub compress: Option<bool>,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: "INFO".into(),
            format: "common".into(),
            file_path: None,
            no_color: false,
            max_size: None,
            max_age: None,
            max_backups: None,
            compress: None,
        }
    }
}

/// `certificatesResolvers.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateResolver {
    /// ACME settings.
    pub acme: Option<Acme>,
    /// Tailscale (accepted for compatibility).
    pub tailscale: Option<serde_json::Value>,
}
