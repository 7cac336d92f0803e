//! Pooled keep-alive clients to upstream servers: one for HTTP/1.1 (with upgrades)
//! and one for HTTP/2 with prior knowledge (`h2c://`, gRPC).

use std::time::Duration;

use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::reclaim::Reclaimable;

/// Settings of the upstream clients (from `serversTransport`).
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Time to establish a TCP connection.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub idle_timeout: Duration,
    /// Idle connections kept per upstream.
    pub max_idle_per_host: usize,
    /// Time to wait for response headers; zero disables it.
    pub response_header_timeout: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            max_idle_per_host: 200,
            response_header_timeout: Duration::from_secs(60),
        }
    }
}

/// The upstream clients shared by every service.
#[derive(Clone)]
pub struct Clients {
    /// HTTP/1.1 client.
    pub http1: Client<HttpConnector, Reclaimable>,
    /// HTTP/2 prior-knowledge client.
    pub h2c: Client<HttpConnector, Reclaimable>,
    /// The settings they were built with.
    pub settings: ClientSettings,
}

impl Clients {
    /// Builds both clients.
    pub fn new(settings: ClientSettings) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(settings.connect_timeout));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(30)));
        connector.enforce_http(true);
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(settings.idle_timeout)
            .pool_max_idle_per_host(settings.max_idle_per_host);
        let http1 = builder.clone().build(connector.clone());
        let h2c = builder.http2_only(true).build(connector);
        Self {
            http1,
            h2c,
            settings,
        }
    }
}
