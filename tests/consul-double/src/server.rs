//! The double's HTTP server: a hyper accept loop over the shared state, with stop
//! (listener and every connection closed, like an outage) and resume on the same address.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::http::handle;
use crate::state::{Endpoint, SharedState};
use crate::Error;

/// How often the leader's session timers are checked.
const TIMER_TICK: Duration = Duration::from_millis(25);

/// A running (or stopped) Consul double bound to one address.
pub struct ConsulDouble {
    state: SharedState,
    addr: SocketAddr,
    running: Option<Running>,
}

struct Running {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl ConsulDouble {
    /// Starts a double with empty state on `addr` (port 0 picks a free port).
    pub async fn start(addr: SocketAddr) -> Result<ConsulDouble, Error> {
        ConsulDouble::start_with(SharedState::default(), addr).await
    }

    /// Starts a double on `addr` serving `state`, e.g. the state of a stopped double,
    /// as a Consul server restarting from its Raft log would.
    pub async fn start_with(state: SharedState, addr: SocketAddr) -> Result<ConsulDouble, Error> {
        let (addr, running) = spawn(state.clone(), addr).await?;
        Ok(ConsulDouble {
            state,
            addr,
            running: Some(running),
        })
    }

    /// The address the double listens on (the real port when started with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, the base URL for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The data and settings, shared with any later incarnation.
    pub fn state(&self) -> &SharedState {
        &self.state
    }

    /// Whether the server is currently accepting connections.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Closes the listener and every open connection, including blocked queries:
    /// clients see connection refused/reset until [`resume`](Self::resume). Session TTL
    /// timers stop too (no leader); data is kept.
    pub async fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        // The server task may already be gone; either way it is finished below.
        let _already_stopped = running.shutdown.send(());
        if let Err(err) = running.task.await {
            if err.is_panic() {
                std::panic::resume_unwind(err.into_panic());
            }
        }
    }

    /// Listens again on the same address with the same data after [`stop`](Self::stop).
    /// Session TTL timers restart at their full length, as after a leader election.
    pub async fn resume(&mut self) -> Result<(), Error> {
        if self.running.is_some() {
            return Ok(());
        }
        let (_, running) = spawn(self.state.clone(), self.addr).await?;
        self.running = Some(running);
        Ok(())
    }

    /// [`stop`](Self::stop) then [`resume`](Self::resume).
    pub async fn restart(&mut self) -> Result<(), Error> {
        self.stop().await;
        self.resume().await
    }

    /// Requires `token` on every request from now on (`None`: ACLs off).
    pub fn set_token(&self, token: Option<&str>) {
        self.state
            .update_settings(|s| s.token = token.map(str::to_owned));
    }

    /// Delays every response by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.state.update_settings(|s| s.latency = latency);
    }

    /// Takes the leader away or elects one again (see [`SharedState::set_leader`]).
    pub fn set_leader(&self, leader: bool) {
        self.state.set_leader(leader);
    }

    /// How many requests reached `endpoint`, across restarts.
    pub fn requests(&self, endpoint: Endpoint) -> u64 {
        self.state.requests(endpoint)
    }
}

impl Drop for ConsulDouble {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.task.abort();
        }
    }
}

async fn spawn(state: SharedState, addr: SocketAddr) -> Result<(SocketAddr, Running), Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| Error::LocalAddr { addr, source })?;
    state.reset_session_timers();
    let (shutdown, stopped) = oneshot::channel();
    let task = tokio::spawn(serve(listener, state, stopped));
    Ok((bound, Running { shutdown, task }))
}

async fn serve(listener: TcpListener, state: SharedState, mut stopped: oneshot::Receiver<()>) {
    let mut tasks = JoinSet::new();
    tasks.spawn(session_timers(state.clone()));
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tasks.spawn(serve_connection(stream, state.clone()));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = tasks.join_next() => {}
        }
    }
    drop(listener);
    tasks.shutdown().await;
}

async fn serve_connection(stream: TcpStream, state: SharedState) {
    let service = service_fn(move |req| handle(state.clone(), req));
    // A client hanging up mid-request is not the double's concern.
    let _closed = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The leader's session timers: fires due TTL invalidations while the server runs.
async fn session_timers(state: SharedState) {
    loop {
        tokio::time::sleep(TIMER_TICK).await;
        state.with_store(|_, _| ());
    }
}
