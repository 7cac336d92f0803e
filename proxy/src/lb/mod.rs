//! Load balancing for one service: smooth weighted round robin over its servers,
//! Traefik's sticky cookie, passive ejection after connection failures and
//! Traefik-style active health checks.
//!
//! The route table owns one [`Balancer`] per service and calls [`Balancer::pick`] for
//! every request; picking takes no lock and, in the common case, allocates nothing.
//! Health state lives in [`ServerHealth`] values kept by a [`HealthRegistry`] across
//! route-table rebuilds, so a reload does not forget that a server is down.
//! [`spawn_health_check`] runs the active checks of one service until its
//! [`HealthCheckHandle`] is dropped.

mod balancer;
mod check;
mod health;
mod probe;
mod server_health;
mod sticky;
mod wrr;

#[cfg(test)]
mod test_server;

use std::sync::Arc;

use crate::config::dynamic::Server;

pub use balancer::{Balancer, Pick};
pub use health::{spawn_health_check, HealthCheckHandle};
pub use probe::validate;
pub use server_health::{
    HealthRegistry, ServerHealth, PASSIVE_EJECTION_BASE, PASSIVE_EJECTION_MAX,
};
pub use sticky::default_cookie_name;

/// Why a load balancer or its health check could not be built from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LbError {
    /// A server URL that cannot be used.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `healthCheck.mode` other than `http` (gRPC checks are not supported).
    #[error("health check mode {0:?} is not supported (only \"http\" is)")]
    UnsupportedMode(String),
    /// A health check over a scheme other than `http` or `h2c` (HTTPS is not supported yet).
    #[error("health check scheme {0:?} is not supported (only \"http\" and \"h2c\" are)")]
    UnsupportedScheme(String),
    /// `healthCheck.method` is not an HTTP method token.
    #[error("invalid health check method {0:?}")]
    InvalidMethod(String),
    /// `healthCheck.path` is not a valid path and query.
    #[error("invalid health check path {0:?}")]
    InvalidPath(String),
    /// `healthCheck.hostname` cannot be sent as a Host header.
    #[error("invalid health check hostname {0:?}")]
    InvalidHostname(String),
    /// A `healthCheck.headers` entry with an invalid name or value.
    #[error("invalid health check header {0:?}")]
    InvalidHeader(String),
    /// `healthCheck.status` is not an HTTP status code.
    #[error("invalid health check status {0}")]
    InvalidStatus(u16),
    /// [`spawn_health_check`] was called outside a Tokio runtime.
    #[error("health checks must be started from within a Tokio runtime")]
    NoRuntime,
}

/// One server of a service, as the balancer sees it.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Where requests go, e.g. `http://10.0.1.5:8080`.
    pub url: http::Uri,
    /// Relative weight; `0` means the server is never picked.
    pub weight: u32,
    /// Health state shared with the health checks and kept across rebuilds.
    pub health: Arc<ServerHealth>,
}

impl Upstream {
    /// Builds the upstream for a configured server of `service`: parses its URL
    /// (which needs a scheme and a host), applies the default weight of 1 and takes
    /// the server's health state from `registry`.
    pub fn from_server(
        service: &str,
        server: &Server,
        registry: &HealthRegistry,
    ) -> Result<Self, LbError> {
        let invalid = |reason: &str| LbError::InvalidUrl {
            url: server.url.clone(),
            reason: reason.to_string(),
        };
        let url: http::Uri = server
            .url
            .trim()
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        if url.scheme().is_none() || url.host().is_none() {
            return Err(invalid("a scheme and a host are required"));
        }
        Ok(Self {
            url,
            weight: server.weight.unwrap_or(1),
            health: registry.get(service, &server.url),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_from_server_applies_defaults_and_shares_health() {
        let registry = HealthRegistry::new();
        let server = Server {
            url: "http://10.0.0.1:8080".into(),
            ..Server::default()
        };
        let up = Upstream::from_server("web", &server, &registry).expect("valid server");
        assert_eq!(up.weight, 1);
        assert_eq!(up.url.port_u16(), Some(8080));
        assert!(Arc::ptr_eq(
            &up.health,
            &registry.get("web", "http://10.0.0.1:8080")
        ));

        let weighted = Server {
            weight: Some(0),
            ..server
        };
        let up = Upstream::from_server("web", &weighted, &registry).expect("valid server");
        assert_eq!(up.weight, 0);
    }

    #[test]
    fn upstream_from_server_rejects_bad_urls() {
        let registry = HealthRegistry::new();
        for url in ["", "10.0.0.1:80", "/path", "http://exa mple"] {
            let server = Server {
                url: url.into(),
                ..Server::default()
            };
            let err = Upstream::from_server("web", &server, &registry);
            assert!(
                matches!(err, Err(LbError::InvalidUrl { .. })),
                "{url:?} gave {err:?}"
            );
        }
    }
}
