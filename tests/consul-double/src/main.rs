//! `consul-double --listen 127.0.0.1:8500 [--token T]`: runs the double until SIGINT or
//! SIGTERM, for shell scripts and multi-process tests. Prints `listening on <addr>`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use consul_double::{duration, ConsulDouble, Error, Settings, SharedState};
use tokio::signal::unix::{signal, SignalKind};

/// A test double of Consul's HTTP API (KV, sessions, blocking queries).
#[derive(Parser, Debug)]
#[command(name = "consul-double", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8500")]
    listen: SocketAddr,
    /// ACL token every request must carry.
    #[arg(long)]
    token: Option<String>,
    /// Smallest session TTL accepted, as a Go duration (Consul's `session_ttl_min`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    session_ttl_min: Duration,
    /// Delay added to every response, as a Go duration.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    latency: Duration,
    /// Datacenter name.
    #[arg(long, default_value = "dc1")]
    datacenter: String,
    /// Node name of the agent (the default node of sessions).
    #[arg(long, default_value = "consul-double")]
    node: String,
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    duration::parse(raw).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    let state = SharedState::new(Settings {
        token: args.token,
        latency: args.latency,
        session_ttl_min: args.session_ttl_min,
        datacenter: args.datacenter,
        node_name: args.node,
        ..Settings::default()
    });
    let mut terminate = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    let mut double = ConsulDouble::start_with(state, args.listen).await?;
    println!("listening on {}", double.addr());
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    double.stop().await;
    Ok(())
}
