//! The `wharf` binary: a Traefik-compatible edge proxy and certificate manager.

mod certs;
mod healthcheck;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use wharf_proxy::check;
use wharf_proxy::config::dynamic::RuleSyntax;
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
    /// Check stack files offline: interpolation, labels, and the routers they make.
    #[command(after_help = check_help())]
    Check(CheckArgs),
    /// Certificates in the configured store (`certStore`: a directory or Consul), shared
    /// by every instance.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Ask the running proxy's `/ping` (on `ping.entryPoint`) whether it is ready: exit
    /// status 0 on 200, else 1 with the reason. Reads the same configuration as the proxy.
    Healthcheck {
        /// How long to wait for the answer (Go notation: `5s`, `500ms`).
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
        /// `--config FILE` and Traefik-style flags, as for the proxy.
        #[arg(
            value_name = "FLAGS",
            allow_hyphen_values = true,
            trailing_var_arg = true
        )]
        flags: Vec<String>,
    },
}

/// Flags of every `wharf certs` action: wharf's configuration (`--config FILE`,
/// `--certstore.file.directory=DIR`, `--certstore.consul.address=URL`, ...), the same
/// as the proxy's.
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

/// `wharf check` arguments.
#[derive(clap::Args)]
struct CheckArgs {
    /// Stack files, or directories to search for `*.yml` and `*.yaml` files.
    #[arg(required = true, value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,
    /// Variables for interpolation, in compose's `.env` syntax (repeatable; later
    /// files win). They win over the process environment.
    #[arg(long = "env-file", value_name = "F")]
    env_files: Vec<PathBuf>,
    /// Print the report as JSON (schema below).
    #[arg(long)]
    json: bool,
    /// Stack name for Swarm service names (`<stack>_<service>`); default: each
    /// file's directory name.
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
    /// The provider's default network (Traefik's `providers.swarm.network`).
    #[arg(long = "provider-network", value_name = "NET")]
    provider_network: Option<String>,
    /// Expose services without `traefik.enable=true` (Traefik's `exposedByDefault`).
    #[arg(
        long = "exposed-by-default",
        value_name = "BOOL",
        num_args = 0..=1,
        default_value_t = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    exposed_by_default: bool,
    /// Traefik constraints, e.g. ``Label(`traefik.constraint-label`, `public`)``.
    #[arg(long, value_name = "EXPR")]
    constraints: Option<String>,
    /// Syntax of rules whose router sets no `ruleSyntax` (Traefik's `core.defaultRuleSyntax`).
    #[arg(long = "default-rule-syntax", value_name = "v2|v3", default_value = "v3", value_parser = parse_syntax)]
    default_rule_syntax: RuleSyntax,
    /// Also list services without traefik labels and files that are not stack files.
    #[arg(short, long)]
    verbose: bool,
}

fn check_help() -> String {
    format!(
        "\
Reads stack files as `docker stack deploy` does and the labels as Traefik's Swarm
provider does (swarm mode, prefixes `traefik` and `wharf`, Traefik's defaults).
Interpolation: `$VAR`, `${{VAR}}`, `${{VAR:-default}}`, `${{VAR-default}}`, `${{VAR:?error}}`,
`${{VAR?error}}`, `${{VAR:+alt}}`, `${{VAR+alt}}`, `$$`; variables come from --env-file, then
the environment. Exit status: 1 when an error is found, else 0.

{}",
        check::report::SCHEMA
    )
}

fn parse_syntax(s: &str) -> Result<RuleSyntax, String> {
    match s.to_ascii_lowercase().as_str() {
        "v2" => Ok(RuleSyntax::V2),
        "v3" => Ok(RuleSyntax::V3),
        _ => Err(format!("expected v2 or v3, found {s:?}")),
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let flags = match cli.command {
        Some(Command::Proxy { flags }) => flags,
        Some(Command::Check(args)) => return run_check(args),
        Some(Command::Certs(command)) => return run_certs(command).map(|()| ExitCode::SUCCESS),
        Some(Command::Healthcheck { timeout, flags }) => {
            return Ok(healthcheck::run(timeout, flags))
        }
        None => cli.flags,
    };
    let cfg = load::load(&flags, std::env::vars())
        .context("invalid configuration")?
        .config;
    let _log_guard = init_logging(&cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        wharf_proxy::runtime::run(cfg, shutdown_signal())
            .await
            .context("wharf stopped with an error")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `wharf check`: prints the report; exit status 1 when it has an error.
fn run_check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let process = check::interpolate::Variables::from_sources(std::env::vars(), []);
    let mut from_files = Vec::new();
    for path in &args.env_files {
        from_files.extend(check::envfile::read(path, &process)?);
    }
    let mut settings = wharf_proxy::provider::labels::LabelSettings::swarm();
    settings.exposed_by_default = args.exposed_by_default;
    settings.constraints = args.constraints;
    settings.network = args.provider_network;
    settings.default_rule_syntax = args.default_rule_syntax;
    let opts = check::Options {
        variables: check::interpolate::Variables::from_sources(from_files, std::env::vars()),
        stack: args.stack,
        settings,
    };
    let report = check::run(&args.paths, &opts)?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", check::render::text(&report, args.verbose));
    }
    Ok(if report.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs a `wharf certs` action, logging warnings to stderr.
fn run_certs(command: CertsCommand) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
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
/// The returned guard flushes pending lines when dropped: keep it for the life of the process.
fn init_logging(cfg: &StaticConfig) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
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
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(
        !cfg.log.no_color && cfg.log.file_path.is_none() && std::io::stdout().is_terminal(),
    );
    let json = cfg.log.format.eq_ignore_ascii_case("json");
    // Log lines are handed to a background thread and dropped when it falls behind:
    // a stdout nobody reads (a stopped log collector, a dead Docker daemon) must
    // never block the request path.
    let sink: Box<dyn std::io::Write + Send> = match &cfg.log.file_path {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("log.filePath: cannot open {path}"))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    // 8192 queued lines (the default, 128,000, costs ~4 MB of memory up front).
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(8192)
        .lossy(true)
        .finish(sink);
    if json {
        builder.json().with_writer(writer).init();
    } else {
        builder.with_writer(writer).init();
    }
    Ok(guard)
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
