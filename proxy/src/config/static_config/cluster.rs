//! `cluster` (wharf): sharing one node's routing table with every other node through
//! the certificate store, so nodes without access to the swarm manager API still
//! route every service. See [`crate::provider::cluster`] for how it runs.

use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::config::duration::GoDuration;

/// Default key prefix of the shared table under the store.
pub const DEFAULT_KEY_PREFIX: &str = "routes";

/// Default lease of the publisher lock.
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(10);

/// `cluster`: absent means off (a single instance behaves as without the section).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Cluster {
    /// This instance's part (default `auto`).
    pub mode: ClusterMode,
    /// The provider whose output is shared: `swarm` (default when `providers.swarm`
    /// is set or `providers.docker` is not), `docker` or `file`. Every node of a
    /// cluster must name the same one.
    pub provider: Option<String>,
    /// Key prefix under the store (default `routes`): the table is `<prefix>/table`,
    /// the publisher lock `<prefix>/publisher`.
    pub key_prefix: Option<String>,
    /// Lease of the publisher lock, renewed every third (default 10s). A crashed
    /// publisher is replaced after at most this long.
    #[serde(rename = "lockTTL")]
    pub lock_ttl: Option<GoDuration>,
    /// The name this node publishes under (default: the host name).
    pub node_name: Option<String>,
}

impl Cluster {
    /// The key prefix, without a trailing `/`.
    pub fn key_prefix(&self) -> &str {
        self.key_prefix
            .as_deref()
            .map(|p| p.trim().trim_end_matches('/'))
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_KEY_PREFIX)
    }

    /// The publisher lock's lease.
    pub fn lock_ttl(&self) -> Duration {
        self.lock_ttl
            .map(|d| d.0)
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_LOCK_TTL)
    }
}

/// `cluster.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClusterMode {
    /// Publisher candidate when the shared provider can see the whole cluster (the
    /// Docker engine is an active swarm manager; for `file`, the file provider is
    /// configured), follower otherwise.
    #[default]
    Auto,
    /// Always a publisher candidate.
    Publisher,
    /// Never publishes; routes from the shared table only.
    Follower,
    /// The section is ignored: no sharing at all.
    Off,
}

impl ClusterMode {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterMode::Auto => "auto",
            ClusterMode::Publisher => "publisher",
            ClusterMode::Follower => "follower",
            ClusterMode::Off => "off",
        }
    }

    /// Parses the configuration spelling (any case).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(ClusterMode::Auto),
            "publisher" => Ok(ClusterMode::Publisher),
            "follower" => Ok(ClusterMode::Follower),
            "off" | "false" => Ok(ClusterMode::Off),
            other => Err(format!(
                "unknown cluster.mode {other:?} (use auto, publisher, follower or off)"
            )),
        }
    }
}

impl Serialize for ClusterMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ClusterMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ClusterMode::parse(&s).map_err(de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::load::load_flags as load;

    #[test]
    fn loads_from_flags_with_defaults() {
        let c = load(&["--cluster.mode=Follower", "--cluster.lockttl=3s"]).unwrap();
        let cluster = c.cluster.unwrap();
        assert_eq!(cluster.mode, ClusterMode::Follower);
        assert_eq!(cluster.lock_ttl(), Duration::from_secs(3));
        assert_eq!(cluster.key_prefix(), "routes");
        assert_eq!(cluster.provider, None);

        let c = load(&["--cluster.keyprefix=wharf/routes/"]).unwrap();
        let cluster = c.cluster.unwrap();
        assert_eq!(cluster.mode, ClusterMode::Auto);
        assert_eq!(cluster.key_prefix(), "wharf/routes");
        assert_eq!(cluster.lock_ttl(), DEFAULT_LOCK_TTL);
    }

    #[test]
    fn the_node_name_comes_from_the_environment_as_in_deploy_wharf_yml() {
        let c = crate::config::load::Loader::new()
            .working_dir("/nonexistent/wharf-cluster-test")
            .env([("WHARF_CLUSTER_NODENAME".to_string(), "node-7".to_string())])
            .args(["--cluster.mode=auto".to_string()])
            .load()
            .unwrap()
            .config;
        let cluster = c.cluster.unwrap();
        assert_eq!(cluster.node_name.as_deref(), Some("node-7"));
        assert_eq!(cluster.mode, ClusterMode::Auto);
    }

    #[test]
    fn absent_section_means_off_and_bad_modes_are_named() {
        assert_eq!(load(&[]).unwrap().cluster, None);
        let err = load(&["--cluster.mode=leader"]).unwrap_err();
        assert!(err.contains("unknown cluster.mode \"leader\""), "{err}");
    }
}
