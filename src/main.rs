//! The `wharf` binary: a Traefik-compatible edge proxy and certificate manager.

use std::io::IsTerminal;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use wharf_proxy::config::{load, StaticConfig};

const AFTER_HELP: &str = "\
CONFIGURATION:
  wharf reads Traefik's static configuration. Sources, later ones winning:
    defaults  <  --config FILE (TOML or YAML; ./wharf.toml when present)
              <  WHARF_* / TRAEFIK_* environment variables
              <  flags in Traefik's form
  Examples:
    wharf --config traefik.yml
    wharf --entrypoints.web.address=:8000 --providers.file.filename=dynamic.yml
    WHARF_ENTRYPOINTS_WEB_ADDRESS=:8000 wharf
  With nothing given: entrypoints web (:80) and websecure (:443, TLS); API, ping
  and metrics on 127.0.0.1:8080 (entrypoint `traefik`).";

/// Edge reverse proxy and certificate manager for Docker Swarm, compatible with Traefik.
#[derive(Parser)]
#[command(name = "wharf", version, about, after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration: `--config FILE` and Traefik-style flags such as `--entrypoints.web.address=:80`.
    #[arg(
        value_name = "FLAGS",
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    flags: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy (the default).
    #[command(after_help = AFTER_HELP)]
    Proxy {
        /// Configuration: `--config FILE` and Traefik-style flags such as `--entrypoints.web.address=:80`.
        #[arg(
            value_name = "FLAGS",
            allow_hyphen_values = true,
            trailing_var_arg = true
        )]
        flags: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let flags = match cli.command {
        Some(Command::Proxy { flags }) => flags,
        None => cli.flags,
    };
    let cfg = load::load(&flags, std::env::vars())
        .context("invalid configuration")?
        .config;
    init_logging(&cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        wharf_proxy::runtime::run(cfg, shutdown_signal())
            .await
            .context("wharf stopped with an error")
    })
}

/// Sets up the application log from `log.level`, `log.format` and `log.filePath`.
fn init_logging(cfg: &StaticConfig) -> anyhow::Result<()> {
    let level = match cfg.log.level.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" | "WARNING" => "warn",
        "ERROR" | "FATAL" | "PANIC" => "error",
        other => anyhow::bail!(
            "log.level: unknown level {other:?} (use TRACE, DEBUG, INFO, WARN or ERROR)"
        ),
    };
    let filter =
        EnvFilter::try_from_env("WHARF_LOG_FILTER").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(
        !cfg.log.no_color && cfg.log.file_path.is_none() && std::io::stdout().is_terminal(),
    );
    let json = cfg.log.format.eq_ignore_ascii_case("json");
    match &cfg.log.file_path {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("log.filePath: cannot open {path}"))?;
            let writer = std::sync::Mutex::new(file);
            if json {
                builder.json().with_writer(writer).init();
            } else {
                builder.with_writer(writer).init();
            }
        }
        None if json => builder.json().init(),
        None => builder.init(),
    }
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops wharf");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
