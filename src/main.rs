//! The `wharf` binary: a Traefik-compatible edge proxy and certificate manager.

mod certs;

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
    /// Certificates in the configured store (`certStore`), shared by every instance.
    #[command(subcommand)]
    Certs(CertsCommand),
}

/// Flags of every `wharf certs` action: wharf's configuration (`--config FILE`,
/// `--certstore.file.directory=DIR`, ...), the same as the proxy's.
#[derive(clap::Args)]
struct ConfigFlags {
    /// `--config FILE` and Traefik-style flags, as for the proxy.
    #[arg(
        value_name = "FLAGS",
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    flags: Vec<String>,
}

#[derive(Subcommand)]
enum CertsCommand {
    /// List every certificate: resolver, status, expiry, domains, last error
    /// (`--json` for JSON).
    List(ConfigFlags),
    /// Show one certificate in detail, chain included.
    Show {
        /// A name the certificate covers.
        domain: String,
        #[command(flatten)]
        config: ConfigFlags,
    },
    /// Renew now, under the certificate's lock; the running instances answer the
    /// challenge and serve the new certificate once it is stored.
    Renew {
        /// A name the certificate covers.
        domain: String,
        #[command(flatten)]
        config: ConfigFlags,
    },
    /// Store a certificate: `--cert FILE --key FILE [--resolver NAME]` (default: the
    /// only configured resolver, else `imported`). Every instance serves it.
    Import(ConfigFlags),
    /// Write a certificate out: PEM chain to stdout, or `--out DIR` for
    /// DIR/<domain>.crt and DIR/<domain>.key (mode 0600).
    Export {
        /// A name the certificate covers.
        domain: String,
        #[command(flatten)]
        config: ConfigFlags,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let flags = match cli.command {
        Some(Command::Proxy { flags }) => flags,
        Some(Command::Certs(command)) => return run_certs(command),
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

/// Runs a `wharf certs` action, logging warnings to stderr.
fn run_certs(command: CertsCommand) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_from_env("WHARF_LOG_FILTER").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let (action, flags) = match command {
        CertsCommand::List(c) => (certs::Action::List, c.flags),
        CertsCommand::Show { domain, config } => (certs::Action::Show(domain), config.flags),
        CertsCommand::Renew { domain, config } => (certs::Action::Renew(domain), config.flags),
        CertsCommand::Import(c) => (certs::Action::Import, c.flags),
        CertsCommand::Export { domain, config } => (certs::Action::Export(domain), config.flags),
    };
    certs::run(action, flags)
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
