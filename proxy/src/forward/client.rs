//! Pooled keep-alive clients to upstream servers. Each traffic worker has its own
//! HTTP/1.1 pool ([`Http1Pool`], with upgrades) and HTTP/2 prior-knowledge client
//! (`h2c://`, gRPC), so an upstream connection is only used by the thread that
//! opened it; one more HTTP/1.1 client serves the middlewares that call servers
//! themselves.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::pool::Http1Pool;
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

/// A pooled client to plain-HTTP upstreams.
pub type PlainClient = Client<HttpConnector, Reclaimable>;

/// The upstream clients shared by every service.
#[derive(Clone)]
pub struct Clients {
    /// An HTTP/1.1 client for the middlewares that call servers themselves
    /// (forwardAuth).
    http1: PlainClient,
    /// HTTP/2 prior-knowledge clients, one per traffic worker.
    h2c: Arc<[PlainClient]>,
    /// HTTP/1.1 connections to servers of load-balanced services, one pool per
    /// traffic worker.
    pools: Arc<[Arc<Http1Pool>]>,
    /// The settings they were built with.
    pub settings: ClientSettings,
}

impl Clients {
    /// Builds the clients for one traffic worker.
    pub fn new(settings: ClientSettings) -> Self {
        Self::per_worker(settings, 1)
    }

    /// Builds the HTTP/2 client and the HTTP/1.1 pool of each of `workers`
    /// traffic workers.
    pub fn per_worker(settings: ClientSettings, workers: usize) -> Self {
        let connector = connector(&settings, true);
        let builder = builder(&settings);
        let count = workers.max(1);
        let http1 = builder.clone().build(connector.clone());
        let h2c = (0..count)
            .map(|_| builder.clone().http2_only(true).build(connector.clone()))
            .collect();
        let pools = (0..count)
            .map(|_| Http1Pool::new(settings.clone()))
            .collect();
        Self {
            http1,
            h2c,
            pools,
            settings,
        }
    }

    /// The HTTP/1.1 client for middlewares that call servers themselves.
    pub fn http1(&self) -> &PlainClient {
        &self.http1
    }

    /// The HTTP/2 prior-knowledge client of the traffic worker on this thread (the
    /// first worker's elsewhere).
    pub fn h2c(&self) -> &PlainClient {
        &self.h2c[Self::slot(self.h2c.len())]
    }

    /// The HTTP/1.1 connection pool of the traffic worker on this thread, which
    /// forwards to the servers of load-balanced services.
    pub fn pool(&self) -> &Arc<Http1Pool> {
        &self.pools[Self::slot(self.pools.len())]
    }

    fn slot(len: usize) -> usize {
        crate::server::workers::current().unwrap_or(0) % len.max(1)
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
