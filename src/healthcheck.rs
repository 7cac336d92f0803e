//! `wharf healthcheck`: asks the running proxy's `/ping` whether it is ready, for
//! Docker's `HEALTHCHECK`. Exit status 0 when `/ping` answers 200, else 1 with a
//! one-line reason on stderr.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use wharf_proxy::config::{load, GoDuration};

/// Time to wait for `/ping` when `--timeout` is not given.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the check with the proxy's configuration flags; `--timeout DURATION` may
/// appear among them.
pub fn run(timeout: Option<String>, flags: Vec<String>) -> ExitCode {
    match check(timeout, flags) {
        Ok(url) => {
            println!("OK: {url}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("unhealthy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Takes `--timeout X` / `--timeout=X` out of `flags`.
fn take_timeout(flags: &mut Vec<String>) -> Option<String> {
    let i = flags
        .iter()
        .position(|f| f == "--timeout" || f.starts_with("--timeout="))?;
    let flag = flags.remove(i);
    match flag.split_once('=') {
        Some((_, v)) => Some(v.to_string()),
        None => (i < flags.len()).then(|| flags.remove(i)),
    }
}

fn check(timeout: Option<String>, mut flags: Vec<String>) -> anyhow::Result<String> {
    let timeout = match timeout.or_else(|| take_timeout(&mut flags)) {
        Some(t) => GoDuration::parse(&t).context("--timeout")?.0,
        None => DEFAULT_TIMEOUT,
    };
    let loaded = load::load(&flags, std::env::vars()).context("invalid configuration")?;
    let ping = loaded
        .config
        .ping
        .as_ref()
        .ok_or_else(|| anyhow!("ping is disabled in the configuration"))?;
    let addr = *loaded.addresses.get(&ping.entry_point).ok_or_else(|| {
        anyhow!(
            "ping.entryPoint {:?} is not an entrypoint",
            ping.entry_point
        )
    })?;
    let addr = reachable(addr);
    let url = format!("http://{addr}/ping");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let status = runtime
        .block_on(async { tokio::time::timeout(timeout, get_ping(addr)).await })
        .map_err(|_| anyhow!("{url} did not answer within {timeout:?}"))?
        .with_context(|| format!("GET {url}"))?;
    if status == 200 {
        Ok(url)
    } else {
        Err(anyhow!("{url} answered {status}"))
    }
}

/// A listening address as a client reaches it: the unspecified address means loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

async fn get_ping(addr: SocketAddr) -> anyhow::Result<u16> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::get("/ping")
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<bytes::Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    Ok(resp.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_is_taken_from_the_flags() {
        let mut flags: Vec<String> = ["--ping", "--timeout=2s", "--entrypoints.traefik.address=:9"]
            .map(String::from)
            .to_vec();
        assert_eq!(take_timeout(&mut flags).as_deref(), Some("2s"));
        assert_eq!(flags.len(), 2);
        let mut flags: Vec<String> = ["--timeout", "3s"].map(String::from).to_vec();
        assert_eq!(take_timeout(&mut flags).as_deref(), Some("3s"));
        assert!(flags.is_empty());
        assert_eq!(
            reachable("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse().unwrap()
        );
    }
}
