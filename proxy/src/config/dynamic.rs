//! The dynamic configuration: routers, services, middlewares and TLS certificates,
//! with Traefik's field names. Every provider (file, Docker labels, the cluster store)
//! produces one [`DynamicConfig`]; the aggregator merges them and the route table is
//! compiled from the result.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::GoDuration;

/// One provider's dynamic configuration, as in Traefik's dynamic-configuration files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DynamicConfig {
    /// HTTP routers, services and middlewares.
    pub http: HttpConfig,
    /// TCP routers and services (HostSNI); parsed and kept, routed in a later release.
    pub tcp: Option<serde_json::Value>,
    /// UDP routers and services; parsed and kept, routed in a later release.
    pub udp: Option<serde_json::Value>,
    /// TLS certificates, options and stores.
    pub tls: TlsConfig,
}

/// The `http` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Routers by name.
    pub routers: BTreeMap<String, Router>,
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Middlewares by name.
    pub middlewares: BTreeMap<String, Middleware>,
    /// Servers transports by name (accepted for compatibility).
    #[serde(alias = "serversTransports", alias = "serverstransports")]
    pub servers_transports: BTreeMap<String, serde_json::Value>,
}

/// Which rule dialect a router's rule is written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSyntax {
    /// Traefik v1 (`Host:a,b;PathPrefix:/x`).
    V1,
    /// Traefik v2 (multi-value matchers, `{name:regex}` placeholders).
    V2,
    /// Traefik v3 (the default).
    #[default]
    V3,
}

/// An HTTP router: a rule that selects requests, and where they go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Router {
    /// Entrypoints this router listens on; empty means every entrypoint that is not the admin one.
    #[serde(alias = "entrypoints")]
    pub entry_points: Vec<String>,
    /// Middlewares applied in order, by name (`name` or `name@provider`).
    pub middlewares: Vec<String>,
    /// Target service name (`name` or `name@provider`).
    pub service: String,
    /// The matching rule.
    pub rule: String,
    /// Rule dialect for this router; the global default applies when absent.
    #[serde(alias = "rulesyntax")]
    pub rule_syntax: Option<RuleSyntax>,
    /// Priority; 0 or absent means the length of the rule.
    pub priority: i64,
    /// TLS settings; present (even empty) means the router only serves TLS requests.
    pub tls: Option<RouterTls>,
    /// Observability switches (accepted for compatibility).
    pub observability: Option<serde_json::Value>,
}

/// A router's TLS section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct RouterTls {
    /// Name of the TLS options to use.
    pub options: Option<String>,
    /// Certificate resolver that obtains certificates for this router's domains.
    #[serde(alias = "certresolver")]
    pub cert_resolver: Option<String>,
    /// Explicit domains to obtain certificates for.
    pub domains: Vec<Domain>,
}

/// A certificate domain set: a main name and subject alternative names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Domain {
    /// The main domain.
    pub main: String,
    /// Additional names.
    pub sans: Vec<String>,
}

/// An HTTP service. Only one kind is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    /// A load balancer over servers.
    #[serde(alias = "loadbalancer")]
    pub load_balancer: Option<LoadBalancer>,
    /// Weighted round robin over other services.
    pub weighted: Option<Weighted>,
    /// Mirroring (accepted; reported as unsupported).
    pub mirroring: Option<serde_json::Value>,
    /// Failover (accepted; reported as unsupported).
    pub failover: Option<serde_json::Value>,
}

/// A weighted service over other services.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Weighted {
    /// Member services and their weights.
    pub services: Vec<WeightedService>,
    /// Sticky cookie across members.
    pub sticky: Option<Sticky>,
}

/// One member of a weighted service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeightedService {
    /// Service name.
    pub name: String,
    /// Weight (default 1).
    pub weight: Option<u32>,
}

/// A load balancer over servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancer {
    /// Upstream servers.
    pub servers: Vec<Server>,
    /// Keep the client's Host header (default true).
    #[serde(alias = "passhostheader")]
    pub pass_host_header: bool,
    /// Sticky sessions.
    pub sticky: Option<Sticky>,
    /// Active health check.
    #[serde(alias = "healthcheck")]
    pub health_check: Option<HealthCheck>,
    /// Balancing strategy: `wrr` (default) or `p2c`.
    pub strategy: Option<String>,
    /// Response forwarding settings.
    #[serde(alias = "responseforwarding")]
    pub response_forwarding: Option<serde_json::Value>,
    /// Name of the servers transport.
    #[serde(alias = "serverstransport")]
    pub servers_transport: Option<String>,
}

impl Default for LoadBalancer {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            pass_host_header: true,
            sticky: None,
            health_check: None,
            strategy: None,
            response_forwarding: None,
            servers_transport: None,
        }
    }
}

/// One upstream server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// `http://host:port`, `https://...` or `h2c://...`.
    pub url: String,
    /// Relative weight (default 1).
    pub weight: Option<u32>,
    /// Port (labels only; combined with the task address by the Docker provider).
    pub port: Option<String>,
    /// Scheme (labels only).
    pub scheme: Option<String>,
}

/// Sticky sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sticky {
    /// Cookie-based stickiness.
    pub cookie: Option<StickyCookie>,
}

/// The sticky cookie's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct StickyCookie {
    /// Cookie name (default: derived from the service name).
    pub name: Option<String>,
    /// Secure attribute.
    pub secure: bool,
    /// HttpOnly attribute.
    #[serde(alias = "httponly")]
    pub http_only: bool,
    /// SameSite attribute: `none`, `lax` or `strict`.
    #[serde(alias = "samesite")]
    pub same_site: Option<String>,
    /// Max-Age in seconds.
    #[serde(alias = "maxage")]
    pub max_age: Option<i64>,
    /// Path attribute.
    pub path: Option<String>,
}

/// Active health check, with Traefik's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// Path to request.
    pub path: String,
    /// Scheme override.
    pub scheme: Option<String>,
    /// Port override.
    pub port: Option<u16>,
    /// Host header to send.
    pub hostname: Option<String>,
    /// HTTP method (default GET).
    pub method: Option<String>,
    /// Expected status; any 2xx/3xx when absent.
    pub status: Option<u16>,
    /// `http` (default) or `grpc`.
    pub mode: Option<String>,
    /// Interval between checks (default 30s).
    pub interval: GoDuration,
    /// Interval for servers currently down (default: `interval`).
    #[serde(alias = "unhealthyinterval")]
    pub unhealthy_interval: Option<GoDuration>,
    /// Timeout of one check (default 5s).
    pub timeout: GoDuration,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Follow redirects (default true).
    #[serde(alias = "followredirects")]
    pub follow_redirects: bool,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            path: "/".into(),
            scheme: None,
            port: None,
            hostname: None,
            method: None,
            status: None,
            mode: None,
            interval: GoDuration(Duration::from_secs(30)),
            unhealthy_interval: None,
            timeout: GoDuration(Duration::from_secs(5)),
            headers: BTreeMap::new(),
            follow_redirects: true,
        }
    }
}

/// A middleware: exactly one of its fields is set. Each option set is kept as its
/// raw value here and validated when the route table is compiled, so a bad
/// middleware only fails the routers that use it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Middleware(pub BTreeMap<String, serde_json::Value>);

/// The `tls` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Static certificates.
    pub certificates: Vec<CertificateFiles>,
    /// TLS options by name (accepted for compatibility).
    pub options: BTreeMap<String, serde_json::Value>,
    /// TLS stores by name (accepted for compatibility).
    pub stores: BTreeMap<String, serde_json::Value>,
}

/// A static certificate given as files or inline PEM.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateFiles {
    /// Certificate chain: a path or inline PEM.
    #[serde(alias = "certfile")]
    pub cert_file: String,
    /// Private key: a path or inline PEM.
    #[serde(alias = "keyfile")]
    pub key_file: String,
    /// Stores this certificate belongs to.
    pub stores: Vec<String>,
}
