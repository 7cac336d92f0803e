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
        let connector = connector(&settings, true);
        let builder = builder(&settings);
        let http1 = builder.clone().build(connector.clone());
        let h2c = builder.clone().http2_only(true).build(connector);
        Self {
            http1,
            h2c,
            settings,
        }
    }

    /// An HTTP/1.1 client with the same settings that speaks TLS to `https://`
    /// URLs (and plain HTTP to `http://` ones), verifying servers with `tls`
    /// (rustls on ring). It keeps its own connection pool.
    pub fn with_tls(&self, tls: rustls::ClientConfig) -> TlsClient {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector(&self.settings, false));
        builder(&self.settings).build(https)
    }
}

/// A pooled client for `https://` (and `http://`) URLs, from [`Clients::with_tls`].
pub type TlsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Reclaimable>;

fn connector(settings: &ClientSettings, enforce_http: bool) -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(settings.connect_timeout));
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(30)));
    connector.enforce_http(enforce_http);
    connector
}

fn builder(settings: &ClientSettings) -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(settings.idle_timeout)
        .pool_max_idle_per_host(settings.max_idle_per_host);
    builder
}
