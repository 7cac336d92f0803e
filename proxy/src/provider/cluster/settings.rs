//! The `cluster` section resolved against the rest of the static configuration:
//! which provider is shared, the store keys, this node's identity and whether it may
//! publish.

use std::time::Duration;

use wharf_certstore::store::{normalize_prefix, MAX_LOCK_TTL, MIN_LOCK_TTL};

use super::error::ClusterError;
use crate::config::static_config::{ClusterMode, StaticConfig};
use crate::provider::docker::engine::Engine;
use crate::provider::docker::{DockerProviderConfig, Mode};

/// How long the swarm-manager check may take before the node counts as ineligible.
const MANAGER_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything the cluster provider needs, checked.
#[derive(Debug)]
pub struct Settings {
    /// The configured mode.
    pub mode: ClusterMode,
    /// The shared provider's name (`swarm`, `docker` or `file`).
    pub provider: &'static str,
    /// The table's key (`<prefix>/table`).
    pub key: String,
    /// The publisher lock's name (`<prefix>/publisher`).
    pub lock: String,
    /// The lock's lease.
    pub ttl: Duration,
    /// This node's name, written in the tables it publishes.
    pub node: String,
    /// This process's random identifier.
    pub instance: String,
    /// Whether this node may publish.
    pub eligibility: Eligibility,
}

/// Whether a node may contend for the publisher lock.
#[derive(Debug)]
pub enum Eligibility {
    /// Never (`follower`, or the shared provider is not configured here).
    Never,
    /// Always (`publisher`, or `auto` sharing the file provider).
    Always,
    /// While the Docker engine is an active swarm manager (`auto` sharing `swarm` or
    /// `docker`); checked before each attempt, so a promoted or demoted node follows.
    SwarmManager(Engine),
    /// Whatever the flag says (tests of promotion and demotion).
    #[cfg(test)]
    Flag(std::sync::Arc<std::sync::atomic::AtomicBool>),
}

impl Eligibility {
    /// Whether the node may contend now.
    pub async fn check(&self) -> bool {
        match self {
            Eligibility::Never => false,
            Eligibility::Always => true,
            Eligibility::SwarmManager(engine) => {
                match tokio::time::timeout(MANAGER_CHECK_TIMEOUT, engine.detect_mode()).await {
                    Ok(Ok(mode)) => mode == Mode::Swarm,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "cluster: Docker engine not usable; not a publisher candidate");
                        false
                    }
                    Err(_) => false,
                }
            }
            #[cfg(test)]
            Eligibility::Flag(flag) => flag.load(std::sync::atomic::Ordering::SeqCst),
        }
    }

    /// Whether the node can ever contend.
    pub fn possible(&self) -> bool {
        !matches!(self, Eligibility::Never)
    }
}

impl Settings {
    /// The settings when the cluster feature is on: the `cluster` section is present
    /// and its mode is not `off`. Without it wharf behaves as a single instance.
    pub fn from_config(cfg: &StaticConfig) -> Result<Option<Self>, ClusterError> {
        let Some(cluster) = &cfg.cluster else {
            return Ok(None);
        };
        if cluster.mode == ClusterMode::Off {
            return Ok(None);
        }
        let provider = match cluster.provider.as_deref().map(str::trim) {
            None | Some("") => {
                if cfg.providers.swarm.is_none() && cfg.providers.docker.is_some() {
                    "docker"
                } else {
                    "swarm"
                }
            }
            Some(name) => shared_name(name).ok_or_else(|| ClusterError::Config {
                field: "provider",
                message: format!("{name:?} cannot be shared (use swarm, docker or file)"),
            })?,
        };
        let prefix = normalize_prefix(cluster.key_prefix()).map_err(|e| ClusterError::Config {
            field: "keyPrefix",
            message: e.to_string(),
        })?;
        let ttl = cluster.lock_ttl();
        if !(MIN_LOCK_TTL..=MAX_LOCK_TTL).contains(&ttl) {
            return Err(ClusterError::Config {
                field: "lockTTL",
                message: format!("{ttl:?} is outside {MIN_LOCK_TTL:?}..={MAX_LOCK_TTL:?}"),
            });
        }
        let local = local_provider(cfg, provider);
        let eligibility = match cluster.mode {
            ClusterMode::Follower | ClusterMode::Off => Eligibility::Never,
            ClusterMode::Publisher => {
                if local.is_none() {
                    return Err(ClusterError::Config {
                        field: "mode",
                        message: format!(
                            "publisher needs the shared provider {provider:?} configured (providers.{provider})"
                        ),
                    });
                }
                Eligibility::Always
            }
            ClusterMode::Auto => match local {
                None => Eligibility::Never,
                Some(Local::File) => Eligibility::Always,
                Some(Local::Docker(docker)) if docker.swarm_mode == Some(false) => {
                    Eligibility::Never
                }
                Some(Local::Docker(docker)) => match Engine::new(docker) {
                    Ok(engine) => Eligibility::SwarmManager(engine),
                    Err(e) => {
                        tracing::warn!(error = %e, "cluster: cannot use the Docker endpoint; following the shared table");
                        Eligibility::Never
                    }
                },
            },
        };
        Ok(Some(Self {
            mode: cluster.mode,
            provider,
            key: format!("{prefix}/table"),
            lock: format!("{prefix}/publisher"),
            ttl,
            node: cluster
                .node_name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .unwrap_or_else(hostname),
            instance: format!("{:016x}", rand::random::<u64>()),
            eligibility,
        }))
    }
}

/// The shared provider as configured on this node.
enum Local<'a> {
    File,
    Docker(&'a DockerProviderConfig),
}

fn local_provider<'a>(cfg: &'a StaticConfig, provider: &str) -> Option<Local<'a>> {
    match provider {
        "file" => cfg.providers.file.as_ref().map(|_| Local::File),
        "swarm" => cfg.providers.swarm.as_ref().map(Local::Docker),
        "docker" => cfg.providers.docker.as_ref().map(Local::Docker),
        _ => None,
    }
}

/// The static name of a provider that may be shared.
pub fn shared_name(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "swarm" => Some("swarm"),
        "docker" => Some("docker"),
        "file" => Some("file"),
        _ => None,
    }
}

/// The host name (in a swarm task, the container's unless the stack sets
/// `hostname: "{{.Node.Hostname}}"`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::static_config::{Cluster, FileProvider};

    fn cfg(cluster: Cluster) -> StaticConfig {
        StaticConfig {
            cluster: Some(cluster),
            ..Default::default()
        }
    }

    #[test]
    fn off_unless_configured() {
        assert!(Settings::from_config(&StaticConfig::default())
            .unwrap()
            .is_none());
        let off = cfg(Cluster {
            mode: ClusterMode::Off,
            ..Default::default()
        });
        assert!(Settings::from_config(&off).unwrap().is_none());
    }

    #[test]
    fn auto_without_the_shared_provider_follows() {
        let s = Settings::from_config(&cfg(Cluster::default()))
            .unwrap()
            .unwrap();
        assert_eq!(s.provider, "swarm");
        assert_eq!(s.key, "routes/table");
        assert_eq!(s.lock, "routes/publisher");
        assert!(!s.eligibility.possible());
        assert!(!s.node.is_empty());
    }

    #[test]
    fn auto_with_the_swarm_provider_asks_the_engine() {
        let mut c = cfg(Cluster::default());
        c.providers.swarm = Some(DockerProviderConfig::default());
        let s = Settings::from_config(&c).unwrap().unwrap();
        assert!(matches!(s.eligibility, Eligibility::SwarmManager(_)));
        c.providers.swarm = None;
        c.providers.docker = Some(DockerProviderConfig {
            swarm_mode: Some(false),
            ..Default::default()
        });
        let s = Settings::from_config(&c).unwrap().unwrap();
        assert_eq!(s.provider, "docker");
        assert!(matches!(s.eligibility, Eligibility::Never));
    }

    #[test]
    fn publisher_needs_the_shared_provider() {
        let mut c = cfg(Cluster {
            mode: ClusterMode::Publisher,
            provider: Some("file".into()),
            node_name: Some("edge-1".into()),
            ..Default::default()
        });
        let err = Settings::from_config(&c).unwrap_err().to_string();
        assert!(
            err.contains("cluster.mode") && err.contains("providers.file"),
            "{err}"
        );
        c.providers.file = Some(FileProvider::default());
        let s = Settings::from_config(&c).unwrap().unwrap();
        assert!(matches!(s.eligibility, Eligibility::Always));
        assert_eq!(s.node, "edge-1");
    }

    #[test]
    fn bad_settings_are_named() {
        let c = cfg(Cluster {
            provider: Some("consul".into()),
            ..Default::default()
        });
        let err = Settings::from_config(&c).unwrap_err().to_string();
        assert!(
            err.contains("cluster.provider") && err.contains("consul"),
            "{err}"
        );
        let c = cfg(Cluster {
            key_prefix: Some("a b".into()),
            ..Default::default()
        });
        let err = Settings::from_config(&c).unwrap_err().to_string();
        assert!(err.contains("cluster.keyPrefix"), "{err}");
        let c = cfg(Cluster {
            lock_ttl: Some(crate::config::GoDuration(Duration::from_millis(10))),
            ..Default::default()
        });
        let err = Settings::from_config(&c).unwrap_err().to_string();
        assert!(err.contains("cluster.lockTTL"), "{err}");
    }
}
