//! Entrypoints: listening sockets, TLS termination, HTTP/1.1 and HTTP/2 serving,
//! connection timeouts and graceful shutdown.

pub mod handle;
mod io;
pub mod observe;
mod park;
pub mod redirect;
pub mod workers;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::LazyConfigAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info_span, warn, Instrument};
use wharf_certstore::challenge::ChallengeSource;

use crate::forward::headers::TrustedPeers;
use crate::provider::labels::LabelIssue;
use crate::router::RouteTable;
use io::{Activity, TrackedIo};
use park::{GuardedBody, Parking, ParkingIo};

/// State shared by every connection: the current route table and lifecycle flags.
pub struct State {
    /// The route table, swapped atomically on every configuration change.
    pub table: ArcSwap<RouteTable>,
    /// Set when shutdown starts; `/ping` then answers `terminating_status`.
    pub terminating: AtomicBool,
    /// Status `/ping` answers while terminating (Traefik's default 503).
    pub terminating_status: u16,
    /// Static facts the admin API shows.
    pub admin: AdminInfo,
    /// Answers to pending ACME challenges, when a certificate resolver is configured.
    pub challenges: Option<Arc<dyn ChallengeSource>>,
    /// Label problems of each Docker provider (`swarm`, `docker`), for the admin API.
    pub label_issues: Vec<(&'static str, tokio::sync::watch::Receiver<Vec<LabelIssue>>)>,
}

/// Static facts for the admin API.
#[derive(Debug, Clone, Default)]
pub struct AdminInfo {
    /// When wharf started (RFC 3339).
    pub start_date: String,
    /// Names of the running providers.
    pub providers: Vec<String>,
    /// Entrypoints as Traefik's API shows them.
    pub entrypoints: Vec<serde_json::Value>,
    /// Managed ACME certificates (`/api/certificates`), when a resolver is configured.
    pub certificates: Option<wharf_certstore::acme::StatusBoard>,
    /// When each provider last delivered a configuration (`/api/providers`).
    pub provider_activity: crate::provider::activity::ProviderActivity,
    /// Serve the dashboard at `/dashboard/` (`api.dashboard`).
    pub dashboard: bool,
    /// Metrics served on `/metrics` of the admin entrypoint, when they are on.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The certificate store (`/api/store`: its connection health), when a resolver
    /// or the cluster mode uses one.
    pub store: Option<StoreHandle>,
    /// The cluster provider's state (`/api/cluster`), when `cluster` is configured.
    pub cluster: Option<tokio::sync::watch::Receiver<crate::provider::cluster::ClusterStatus>>,
}

/// The certificate store as the admin API sees it.
#[derive(Clone)]
pub struct StoreHandle(pub Arc<dyn wharf_certstore::Store>);

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StoreHandle")
            .field(&self.0.status())
            .finish()
    }
}

/// Why an entrypoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound.
    #[error("entrypoint {entrypoint:?} cannot listen on {address}. Change it with --entrypoints.{entrypoint}.address=HOST:PORT (or entryPoints.{entrypoint}.address in the configuration file)")]
    Bind {
        /// Entrypoint name.
        entrypoint: String,
        /// The address.
        address: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Per-entrypoint settings the connection loop needs.
pub struct EntryPointRuntime {
    /// Entrypoint name.
    pub name: Arc<str>,
    /// TLS settings; TLS connections are detected by their first byte.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Who may set X-Forwarded-* headers.
    pub trusted: TrustedPeers,
    /// Time to read request headers (and to finish a TLS handshake).
    pub read_timeout: Duration,
    /// Idle keep-alive connections are closed after this.
    pub idle_timeout: Duration,
    /// Serve `/ping` on this entrypoint.
    pub ping: bool,
    /// Serve the admin API instead of routers.
    pub admin: bool,
    /// Redirect every request elsewhere (`http.redirections.entryPoint`).
    pub redirect: Option<redirect::Redirect>,
    /// Metrics and access log of this entrypoint; `None` when both are off.
    pub observe: Option<Arc<observe::EntryObserver>>,
}

/// What a request's handler knows about its connection.
pub struct ConnCtx {
    /// Entrypoint name.
    pub entrypoint: Arc<str>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The client's IP as a header value (X-Real-Ip, X-Forwarded-For).
    pub peer_ip: http::HeaderValue,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// Whether the peer may set X-Forwarded-* headers.
    pub trusted: bool,
    /// Serve `/ping` here.
    pub ping: bool,
    /// Redirect every request elsewhere.
    pub redirect: Option<redirect::Redirect>,
    /// Metrics and access log of the entrypoint.
    pub observe: Option<Arc<observe::EntryObserver>>,
    /// The TLS version and cipher, on TLS connections.
    pub tls_info: Option<crate::metrics::TlsInfo>,
}

/// Binds an entrypoint's address with SO_REUSEADDR, naming the entrypoint on error.
pub fn bind(entrypoint: &str, address: SocketAddr) -> Result<TcpListener, ServerError> {
    let err = |source| ServerError::Bind {
        entrypoint: entrypoint.to_string(),
        address,
        source,
    };
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.bind(address).map_err(err)?;
    socket.listen(4096).map_err(err)
}

/// Accepts connections on `listener` until `stop_accepting` fires; each connection drains when
/// `drain` fires. Connections are tracked by `tracker` so shutdown can wait for them.
pub async fn serve(
    listener: TcpListener,
    ep: Arc<EntryPointRuntime>,
    state: Arc<State>,
    stop_accepting: CancellationToken,
    drain: CancellationToken,
    tracker: TaskTracker,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(ep.read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);
    loop {
        let accepted = tokio::select! {
            _ = stop_accepting.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(entrypoint = %ep.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let span = info_span!("connection", entrypoint = %ep.name, peer = %peer);
        let (ep, state, drain, builder) =
            (ep.clone(), state.clone(), drain.clone(), builder.clone());
        tracker.spawn(
            async move {
                if let Err(e) = connection(stream, peer, &ep, state, drain, &builder).await {
                    debug!(error = %e, "connection ended with an error");
                }
            }
            .instrument(span),
        );
    }
    // Close the socket now: the kernel must refuse new connections while the
    // accepted ones drain.
    drop(listener);
    debug!(entrypoint = %ep.name, "stopped accepting");
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    ep: &EntryPointRuntime,
    state: Arc<State>,
    drain: CancellationToken,
    builder: &auto::Builder<TokioExecutor>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    stream.set_nodelay(true)?;
    let _open = observe::OpenConnection::new(
        ep.observe
            .as_ref()
            .and_then(|o| o.open_connections.as_ref()),
    );
    let trusted = ep.trusted.trusts(peer.ip());
    let is_tls = match &ep.tls {
        Some(_) => {
            let mut first = [0u8; 1];
            match tokio::time::timeout(ep.read_timeout, stream.peek(&mut first)).await {
                Ok(Ok(1)) => first[0] == 0x16,
                _ => return Ok(()),
            }
        }
        None => false,
    };
    let cx = |tls_info| {
        Arc::new(ConnCtx {
            entrypoint: ep.name.clone(),
            peer,
            peer_ip: crate::forward::headers::ip_value(peer.ip()),
            tls: is_tls,
            trusted,
            ping: ep.ping,
            redirect: ep.redirect.clone(),
            observe: ep.observe.clone(),
            tls_info,
        })
    };
    match (&ep.tls, is_tls) {
        (Some(config), true) => {
            let start = tokio::time::timeout(
                ep.read_timeout,
                LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream),
            )
            .await??;
            let hello = start.client_hello();
            let acme = hello
                .alpn()
                .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
            if acme {
                let sni = hello.server_name().map(str::to_string);
                return answer_tls_alpn01(start, sni, ep, &state).await;
            }
            let tls =
                tokio::time::timeout(ep.read_timeout, start.into_stream(config.clone())).await??;
            let cx = cx(crate::metrics::TlsInfo::of(tls.get_ref().1));
            let activity = Activity::new();
            let io = TrackedIo::new(tls, activity.clone());
            serve_io(io, activity, None, cx, ep, state, drain, builder).await
        }
        _ => serve_plain(stream, cx(None), ep, state, drain, builder).await,
    }
}

/// Serves a plain-TCP connection, parking it between requests when it idles
/// (see [`park`]): while parked it holds no HTTP buffers and waits for the next
/// request on the bare socket.
async fn serve_plain(
    mut stream: TcpStream,
    cx: Arc<ConnCtx>,
    ep: &EntryPointRuntime,
    state: Arc<State>,
    drain: CancellationToken,
    builder: &auto::Builder<TokioExecutor>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let activity = Activity::new();
    let parking = Parking::new();
    loop {
        let io = ParkingIo::new(stream, activity.clone(), parking.clone());
        serve_io(
            io,
            activity.clone(),
            Some(parking.clone()),
            cx.clone(),
            ep,
            state.clone(),
            drain.clone(),
            builder,
        )
        .await?;
        let Some(parked) = parking.take_parked() else {
            return Ok(());
        };
        stream = parked;
        let idle = ep.idle_timeout;
        let remaining = idle.saturating_sub(activity.idle_for());
        tokio::select! {
            r = stream.readable() => r?,
            _ = drain.cancelled() => return Ok(()),
            _ = tokio::time::sleep(remaining), if !idle.is_zero() => return Ok(()),
        }
    }
}

/// ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Completes an `acme-tls/1` handshake with the challenge certificate for `sni`, then
/// closes: the CA only looks at the certificate. Without one, the handshake is dropped.
async fn answer_tls_alpn01(
    start: tokio_rustls::StartHandshake<TcpStream>,
    sni: Option<String>,
    ep: &EntryPointRuntime,
    state: &State,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (Some(source), Some(sni)) = (&state.challenges, sni) else {
        return Ok(());
    };
    let Some(key) = source.tls_alpn01(&sni).await else {
        debug!(domain = %sni, "no TLS-ALPN-01 challenge pending");
        return Ok(());
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(key)));
    config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    let mut tls =
        tokio::time::timeout(ep.read_timeout, start.into_stream(Arc::new(config))).await??;
    tokio::io::AsyncWriteExt::shutdown(&mut tls).await.ok();
    debug!(domain = %sni, "answered a TLS-ALPN-01 challenge");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn serve_io<I>(
    io: I,
    activity: Activity,
    parking: Option<Arc<Parking>>,
    cx: Arc<ConnCtx>,
    ep: &EntryPointRuntime,
    state: Arc<State>,
    drain: CancellationToken,
    builder: &auto::Builder<TokioExecutor>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let admin = ep.admin;
    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let guard = parking
            .as_ref()
            .map(|p| p.begin(req.version() == http::Version::HTTP_2));
        let (cx, state, parking) = (cx.clone(), state.clone(), parking.clone());
        async move {
            let resp = if admin {
                crate::admin::handle(req, &state).await
            } else {
                handle::handle(req, cx, state).await
            };
            if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                if let Some(p) = &parking {
                    p.forbid();
                }
            }
            Ok::<_, std::convert::Infallible>(resp.map(|b| GuardedBody::new(b, guard)))
        }
    });
    // Boxed, so a parked connection's task does not keep room for hyper's state.
    let mut conn = Box::pin(builder.serve_connection_with_upgrades(io, service));
    let idle = ep.idle_timeout;
    let check_every = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut draining = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => return r,
            _ = drain.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(check_every), if !draining && !idle.is_zero() => {
                if activity.idle_for() >= idle {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
