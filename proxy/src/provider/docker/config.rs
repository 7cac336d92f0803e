//! The Docker and Swarm providers' static settings (`providers.docker`, the Traefik v2
//! style with `swarmMode`, and `providers.swarm`, the v3 style), with Traefik's option
//! names, and the mode they resolve to.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::GoDuration;

/// The default engine address.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// Traefik's default rule for workloads without a router rule.
pub const DEFAULT_RULE: &str = "Host(`{{ normalize .Name }}`)";

/// `providers.docker` or `providers.swarm`.
///
/// Both sections take the same options; `swarmMode` only means something under
/// `providers.docker` (`providers.swarm` always watches swarm services).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct DockerProviderConfig {
    /// Engine address: `unix:///path`, `tcp://host:port`, `http://host:port` or
    /// `https://host:port` (default `unix:///var/run/docker.sock`).
    pub endpoint: String,
    /// TLS towards a `tcp://` or `https://` endpoint.
    pub tls: Option<ClientTls>,
    /// Route workloads without `traefik.enable=true` too (default true).
    pub exposed_by_default: bool,
    /// Network whose addresses are used when a workload is on several.
    pub network: Option<String>,
    /// Rule of routers that do not set one (default ``Host(`{{ normalize .Name }}`)``).
    pub default_rule: String,
    /// Constraint expression on labels (`Label(...)`, `LabelRegex(...)`, `&&`, `||`, `!`).
    pub constraints: Option<String>,
    /// Follow the engine's events (default true); without it, only the periodic
    /// resync picks up changes.
    pub watch: bool,
    /// Period of the full resync that backs up the event stream (default 30s;
    /// Traefik's polling interval, whence the name). `swarmModeRefreshSeconds` is
    /// accepted as an alias.
    #[serde(alias = "swarmModeRefreshSeconds")]
    pub refresh_seconds: GoDuration,
    /// `providers.docker` only: `true` watches swarm services, `false` containers;
    /// absent, wharf decides from the engine (swarm when it is an active manager).
    pub swarm_mode: Option<bool>,
    /// Use the host address of a published port (accepted; not used yet).
    #[serde(rename = "useBindPortIP", alias = "useBindPortIp")]
    pub use_bind_port_ip: bool,
    /// Keep services that have no server (default false: they are left out).
    pub allow_empty_services: bool,
    /// Timeout of one API request (default 30s; the event stream is not bounded by it).
    pub http_client_timeout: Option<GoDuration>,
    /// Accepted for compatibility; ignored.
    pub username: Option<String>,
    /// Accepted for compatibility; ignored.
    pub password: Option<String>,
    /// Label prefixes read, in order (wharf; default `["traefik", "wharf"]`).
    pub label_prefixes: Vec<String>,
}

impl Default for DockerProviderConfig {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.into(),
            tls: None,
            exposed_by_default: true,
            network: None,
            default_rule: DEFAULT_RULE.into(),
            constraints: None,
            watch: true,
            refresh_seconds: GoDuration(Duration::from_secs(30)),
            swarm_mode: None,
            use_bind_port_ip: false,
            allow_empty_services: false,
            http_client_timeout: None,
            username: None,
            password: None,
            label_prefixes: vec!["traefik".into(), "wharf".into()],
        }
    }
}

/// `tls` of a TCP endpoint: files in PEM.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTls {
    /// CA certificates that sign the engine's certificate (default: the system's
    /// bundle at `/etc/ssl/certs/ca-certificates.crt`).
    pub ca: Option<String>,
    /// Client certificate chain.
    pub cert: Option<String>,
    /// Client private key.
    pub key: Option<String>,
    /// Do not verify the engine's certificate.
    pub insecure_skip_verify: bool,
}

/// Which section configured the provider; it names the provider (`@docker`, `@swarm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// `providers.docker` (resources are `name@docker`).
    Docker,
    /// `providers.swarm` (resources are `name@swarm`).
    Swarm,
}

impl ProviderKind {
    /// The provider name that qualifies resources.
    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Swarm => "swarm",
        }
    }
}

/// What the provider watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Swarm services and their tasks (needs a manager node).
    Swarm,
    /// Containers of this engine.
    Containers,
}

impl DockerProviderConfig {
    /// The mode the settings force, if any: `providers.swarm` always watches swarm
    /// services; `providers.docker` follows `swarmMode` when it is set.
    pub fn forced_mode(&self, kind: ProviderKind) -> Option<Mode> {
        match (kind, self.swarm_mode) {
            (ProviderKind::Swarm, _) | (ProviderKind::Docker, Some(true)) => Some(Mode::Swarm),
            (ProviderKind::Docker, Some(false)) => Some(Mode::Containers),
            (ProviderKind::Docker, None) => None,
        }
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.http_client_timeout
            .map(|d| d.0)
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(30))
    }

    /// The resync period, at least one second.
    pub fn resync_period(&self) -> Duration {
        self.refresh_seconds.0.max(Duration::from_secs(1))
    }
}

/// The mode to run in when nothing forces one: swarm when the engine's swarm is
/// active and this node is a manager, containers otherwise.
pub fn auto_mode(swarm_active: bool, is_manager: bool) -> Mode {
    if swarm_active && is_manager {
        Mode::Swarm
    } else {
        Mode::Containers
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Tree;

    fn parse(pairs: &[(&str, &str)]) -> DockerProviderConfig {
        let tree =
            Tree::from_flat(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        tree.deserialize_into().unwrap()
    }

    #[test]
    fn defaults_follow_traefik() {
        let c = DockerProviderConfig::default();
        assert_eq!(c.endpoint, "unix:///var/run/docker.sock");
        assert!(c.exposed_by_default && c.watch);
        assert_eq!(c.resync_period(), Duration::from_secs(30));
        assert_eq!(c.label_prefixes, ["traefik", "wharf"]);
        assert_eq!(c.default_rule, "Host(`{{ normalize .Name }}`)");
    }

    #[test]
    fn reads_traefik_option_names() {
        let c = parse(&[
            ("endpoint", "tcp://10.0.0.1:2376"),
            ("tls.ca", "/certs/ca.pem"),
            ("tls.insecureskipverify", "true"),
            ("exposedbydefault", "false"),
            ("swarmMode", "true"),
            ("swarmModeRefreshSeconds", "15"),
            ("useBindPortIP", "true"),
            ("allowEmptyServices", "true"),
            ("httpClientTimeout", "5s"),
            ("password", "x"),
            ("labelPrefixes", "wharf"),
        ]);
        assert_eq!(c.endpoint, "tcp://10.0.0.1:2376");
        let tls = c.tls.as_ref().unwrap();
        assert_eq!(tls.ca.as_deref(), Some("/certs/ca.pem"));
        assert!(tls.insecure_skip_verify);
        assert!(!c.exposed_by_default);
        assert_eq!(c.resync_period(), Duration::from_secs(15));
        assert!(c.use_bind_port_ip && c.allow_empty_services);
        assert_eq!(c.request_timeout(), Duration::from_secs(5));
        assert_eq!(c.label_prefixes, ["wharf"]);
        assert_eq!(c.forced_mode(ProviderKind::Docker), Some(Mode::Swarm));
    }

    #[test]
    fn mode_selection() {
        let mut c = DockerProviderConfig::default();
        assert_eq!(c.forced_mode(ProviderKind::Swarm), Some(Mode::Swarm));
        assert_eq!(c.forced_mode(ProviderKind::Docker), None);
        c.swarm_mode = Some(false);
        assert_eq!(c.forced_mode(ProviderKind::Docker), Some(Mode::Containers));
        assert_eq!(auto_mode(true, true), Mode::Swarm);
        assert_eq!(auto_mode(true, false), Mode::Containers);
        assert_eq!(auto_mode(false, false), Mode::Containers);
    }
}
