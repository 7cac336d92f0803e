//! Loading the static configuration from a file, environment variables and
//! command-line flags, in Traefik's notations, so an existing `traefik.yml` or
//! `traefik.toml`, `TRAEFIK_*` variables or `--entrypoints.web.address=:80` flags work.
//!
//! # Sources and precedence
//!
//! From lowest to highest; a higher source wins for each setting it gives, and
//! sections merge key by key (Traefik itself reads only one source):
//!
//! 1. wharf's defaults (see [`Loaded`]);
//! 2. the configuration file: `--config FILE`, `--configFile=FILE`, or
//!    `WHARF_CONFIGFILE`/`TRAEFIK_CONFIGFILE`; otherwise `wharf.toml` in the working
//!    directory if it exists. TOML or YAML by extension (`.toml`, `.yml`, `.yaml`),
//!    either for any other name;
//! 3. environment variables `TRAEFIK_*`, then `WHARF_*` (which win), mapped as
//!    described in the `env` submodule: `WHARF_ENTRYPOINTS_WEB_ADDRESS=:80`;
//! 4. flags: `--entrypoints.web.address=:80`, `--key value`, bare `--api` or
//!    `--api.insecure` (meaning `true`), lists as `a,b,c` or `--key[0].field=x`.
//!
//! Key names are case-insensitive everywhere; names chosen by the user (entrypoints,
//! resolvers) are kept as written, except from the environment, where they are
//! lowercased as Traefik does. Every unknown key is an error naming its source and
//! the nearest known key.

mod args;
mod env;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::{fmt, fs};

use super::static_config::{
    Api, EntryPoint, EntryPointTls, Metrics, Ping, Prometheus, StaticConfig, ADMIN_ENTRYPOINT,
    DEFAULT_ADMIN_ADDRESS,
};
use super::tree::{Shape, Tree, TreeError};

/// The file read when no configuration file is named.
pub const DEFAULT_CONFIG_FILE: &str = "wharf.toml";

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file.
    File(PathBuf),
    /// A command-line flag, as written.
    Flag(String),
    /// An environment variable, by name.
    Env(String),
    /// The merged sources (a conflict no single source has).
    Combined,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "configuration file {}", path.display()),
            Origin::Flag(arg) => write!(f, "flag `{arg}`"),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Combined => f.write_str("the combined configuration"),
        }
    }
}

/// Why the static configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML or YAML.
    #[error("{}{}: invalid {format}", .path.display(), .line.map(|l| format!(":{l}")).unwrap_or_default())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// `TOML`, `YAML`, or `TOML or YAML`.
        format: &'static str,
        /// Line of the error (1-based), when known.
        line: Option<usize>,
        /// The parser's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A setting is unknown or its value is invalid.
    #[error("invalid setting in {origin}")]
    Invalid {
        /// The source that gave it.
        origin: Origin,
        /// The key path, the problem and the nearest known key.
        #[source]
        error: TreeError,
    },
    /// A command-line argument is not a flag.
    #[error("invalid argument `{arg}`: {reason}")]
    Argument {
        /// The argument.
        arg: String,
        /// What is wrong.
        reason: String,
    },
    /// An address is not `[host]:port[/tcp]`.
    #[error("invalid address {address:?}: {reason}")]
    Address {
        /// The address as written.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// An entrypoint's address is missing or invalid.
    #[error("entrypoint `{entrypoint}`: invalid address {address:?}: {reason}")]
    EntryPointAddress {
        /// The entrypoint's name.
        entrypoint: String,
        /// The address as written.
        address: String,
        /// What is wrong.
        reason: String,
    },
}

/// The loaded static configuration.
///
/// wharf's defaults, applied where the sources say nothing:
/// * entrypoints: when none is configured (the admin one aside), `web` on `:80` and
///   `websecure` on `:443` with `http.tls` set, so it terminates TLS;
/// * the admin entrypoint [`ADMIN_ENTRYPOINT`] on [`DEFAULT_ADMIN_ADDRESS`] unless
///   configured (also when configured without an address);
/// * `api`, `ping` and `metrics.prometheus` on with their defaults unless configured,
///   or turned off with `false` (`--api=false`, `api: false`);
/// * log level `INFO`, format `common` (see [`super::static_config::Log`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The configuration, defaults applied.
    pub config: StaticConfig,
    /// The configuration file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Every entrypoint's parsed listening address.
    pub addresses: BTreeMap<String, SocketAddr>,
}

/// Loads the static configuration; see the [module documentation](self).
#[derive(Debug, Clone, Default)]
pub struct Loader {
    args: Vec<String>,
    env: Vec<(String, String)>,
    working_dir: Option<PathBuf>,
}

/// Loads the static configuration from `args` (the flags after the subcommand),
/// the environment `env`, and the configuration file (looked up in the process's
/// working directory).
pub fn load(
    args: &[String],
    env: impl Iterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    Loader::new().args(args.iter().cloned()).env(env).load()
}

impl Loader {
    /// A loader with no flags, no environment, and the process's working directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// The command-line flags.
    pub fn args(mut self, args: impl IntoIterator<Item = String>) -> Self {
        self.args = args.into_iter().collect();
        self
    }

    /// The environment variables (others than `WHARF_*` and `TRAEFIK_*` are ignored).
    pub fn env(mut self, env: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env = env.into_iter().collect();
        self
    }

    /// The directory where `wharf.toml` is looked for and relative file names start.
    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    /// Reads, merges and validates every source.
    pub fn load(self) -> Result<Loaded, ConfigError> {
        let shape = Shape::of::<StaticConfig>();
        let args = args::parse(&self.args)?;
        let env = env::collect(&self.env, &shape)?;
        let dir = self.working_dir.clone().unwrap_or_default();

        let named = args.config_file.as_ref().or(env.config_file.as_ref());
        let config_file = match named {
            Some(name) => Some(dir.join(name)),
            None => Some(dir.join(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
        };

        let mut merged = Tree::Map(BTreeMap::new());
        if let Some(path) = &config_file {
            let mut tree = Tree::from_json(&read_file(path)?);
            tree.normalize_keys(&shape);
            check(&tree, &shape, || Origin::File(path.clone()))?;
            merged.merge(tree);
        }
        for setting in env.settings {
            let mut tree = Tree::Null;
            tree.insert(&setting.path, Tree::String(setting.value));
            check(&tree, &shape, || Origin::Env(setting.var.clone()))?;
            merged.merge(tree);
        }
        for flag in args.flags {
            let origin = || Origin::Flag(flag.arg.clone());
            let mut tree =
                Tree::from_flat([(flag.key.clone(), flag.value.clone())]).map_err(|error| {
                    ConfigError::Invalid {
                        origin: origin(),
                        error,
                    }
                })?;
            tree.normalize_keys(&shape);
            check(&tree, &shape, origin)?;
            merged.merge(tree);
        }
        let mut config: StaticConfig = check(&merged, &shape, || Origin::Combined)?;
        apply_defaults(&mut config, &merged);
        let addresses = entrypoint_addresses(&config)?;
        Ok(Loaded {
            config,
            config_file,
            addresses,
        })
    }
}

/// Deserializes `tree`, naming `origin` in the error.
fn check(
    tree: &Tree,
    shape: &Shape,
    origin: impl FnOnce() -> Origin,
) -> Result<StaticConfig, ConfigError> {
    tree.deserialize_with(shape)
        .map_err(|error| ConfigError::Invalid {
            origin: origin(),
            error,
        })
}

/// Reads a TOML or YAML file into a JSON value.
fn read_file(path: &Path) -> Result<serde_json::Value, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let syntax = |format, line, source| ConfigError::Syntax {
        path: path.to_path_buf(),
        format,
        line,
        source,
    };
    match ext.as_deref() {
        Some("toml") => parse_toml(&text).map_err(|(line, e)| syntax("TOML", line, e)),
        Some("yml" | "yaml") => parse_yaml(&text).map_err(|(line, e)| syntax("YAML", line, e)),
        _ => parse_toml(&text).or_else(|(toml_line, toml)| {
            parse_yaml(&text).map_err(|(yaml_line, yaml)| {
                let both = format!("as TOML: {toml}; as YAML: {yaml}");
                syntax("TOML or YAML", toml_line.or(yaml_line), both.into())
            })
        }),
    }
}

type ParseError = (Option<usize>, Box<dyn std::error::Error + Send + Sync>);

fn parse_toml(text: &str) -> Result<serde_json::Value, ParseError> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        (line, Box::new(e) as _)
    })
}

fn parse_yaml(text: &str) -> Result<serde_json::Value, ParseError> {
    match serde_yaml_ng::from_str::<serde_json::Value>(text) {
        // An empty document is an empty configuration.
        Ok(serde_json::Value::Null) => Ok(serde_json::Value::Object(Default::default())),
        Ok(value) => Ok(value),
        Err(e) => Err((e.location().map(|l| l.line()), Box::new(e))),
    }
}

/// Applies wharf's defaults (documented on [`Loaded`]) where `given` says nothing.
fn apply_defaults(config: &mut StaticConfig, given: &Tree) {
    if given.get(&["api"]).is_none() {
        config.api = Some(Api::default());
    }
    if given.get(&["ping"]).is_none() {
        config.ping = Some(Ping::default());
    }
    if given.get(&["metrics"]).is_none() {
        config.metrics = Some(Metrics::default());
    }
    if let Some(metrics) = &mut config.metrics {
        if given.get(&["metrics", "prometheus"]).is_none() {
            metrics.prometheus = Some(Prometheus::default());
        }
    }
    let entry_points = &mut config.entry_points;
    if entry_points.keys().all(|name| name == ADMIN_ENTRYPOINT) {
        entry_points.insert("web".into(), EntryPoint::with_address(":80"));
        let mut websecure = EntryPoint::with_address(":443");
        websecure.http.tls = Some(EntryPointTls::default());
        entry_points.insert("websecure".into(), websecure);
    }
    let admin = entry_points.entry(ADMIN_ENTRYPOINT.into()).or_default();
    if admin.address.trim().is_empty() {
        admin.address = DEFAULT_ADMIN_ADDRESS.into();
    }
}

/// Parses every entrypoint's address.
fn entrypoint_addresses(
    config: &StaticConfig,
) -> Result<BTreeMap<String, SocketAddr>, ConfigError> {
    config
        .entry_points
        .iter()
        .map(|(name, ep)| {
            let addr = parse_address(&ep.address).map_err(|e| {
                let reason = match e {
                    ConfigError::Address { reason, .. } => reason,
                    other => other.to_string(),
                };
                ConfigError::EntryPointAddress {
                    entrypoint: name.clone(),
                    address: ep.address.clone(),
                    reason,
                }
            })?;
            Ok((name.clone(), addr))
        })
        .collect()
}

/// Parses a Traefik entrypoint address: `:80` (all interfaces, `0.0.0.0:80`),
/// `0.0.0.0:80`, `127.0.0.1:8080`, `[::]:443`, `host:port` (resolved now), each
/// optionally followed by `/tcp`. UDP (`/udp`) is refused: wharf serves TCP only.
pub fn parse_address(addr: &str) -> Result<SocketAddr, ConfigError> {
    let bad = |reason: &str| ConfigError::Address {
        address: addr.to_string(),
        reason: reason.to_string(),
    };
    let mut text = addr.trim();
    if let Some((rest, protocol)) = text.rsplit_once('/') {
        match protocol.to_ascii_lowercase().as_str() {
            "tcp" => text = rest,
            "udp" => return Err(bad("UDP entrypoints are not supported")),
            _ => return Err(bad("unknown protocol (use /tcp)")),
        }
    }
    if text.is_empty() {
        return Err(bad("no address set (use :PORT or HOST:PORT)"));
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| bad("missing port (use :PORT or HOST:PORT)"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| bad("unclosed `[` in IPv6 address"))?,
        None if host.contains(':') => {
            return Err(bad("write IPv6 addresses in brackets: [::1]:80"))
        }
        None => host,
    };
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| bad("cannot resolve the host name"))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_sources;

/// Loads a configuration from flags alone (no file, no environment), for unit
/// tests; an error is its text followed by its causes.
#[cfg(test)]
pub(crate) fn load_flags(args: &[&str]) -> Result<crate::config::StaticConfig, String> {
    Loader::new()
        .working_dir("/nonexistent/wharf-unit-test")
        .args(args.iter().map(|s| s.to_string()))
        .load()
        .map(|l| l.config)
        .map_err(|e| {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        })
}
