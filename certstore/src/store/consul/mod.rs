//! The Consul backend: every wharf node talks to the same Consul cluster.
//!
//! # Layout under the key prefix (default `wharf/`)
//!
//! ```text
//! <prefix>kv/<key>      an entry; its version is Consul's ModifyIndex
//! <prefix>locks/<name>  a lock key, held through a Consul session
//! ```
//!
//! * **Versions** are Consul's `ModifyIndex`, a cluster-wide Raft index: it grows
//!   with every write and is never reused, even after a delete. Writes use `?cas=`
//!   (0 for [`Expect::Absent`]). Consul's `PUT` answers only `true`/`false`, so a
//!   write carries a random `Flags` value and is read back to learn its index; if
//!   another node overwrote it in between, the version returned is one below the
//!   newer entry's, which no compare-and-swap can match.
//! * **Values** over Consul's 512 KB limit are refused before anything is sent.
//! * **Locks** are Consul sessions (TTL, lock-delay, behaviour `release`) and
//!   `?acquire=`; see [`lock`](self) for the details.
//! * **Watches** are blocking queries on the prefix (`?recurse&index=&wait=`).
//! * **Outages**: every call fails with a [`StoreError::Backend`] whose source is a
//!   [`ConsulError`] naming Consul's address; watches reconnect with backoff;
//!   [`Store::status`] tells whether Consul answers.
//!
//! The ACL token needs `key_prefix "<prefix>" { policy = "write" }` and
//! `session_prefix "" { policy = "write" }`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::status::{HealthTracker, StoreStatus};
use super::{
    key_in_prefix, normalize_prefix, validate_key, Entry, Expect, Lock, LockError, Store,
    StoreError, WatchStream, MAX_VALUE_LEN,
};

mod api;
mod lock;
#[cfg(test)]
mod tests;
mod watch;

use api::Api;

/// Settings of a [`ConsulStore`].
#[derive(Clone)]
pub struct ConsulStoreOptions {
    /// Consul's HTTP API, `http://host:8500` or `https://host:8501`.
    pub address: String,
    /// Prefix of every key wharf writes (default `wharf/`).
    pub prefix: String,
    /// ACL token, sent as `X-Consul-Token`.
    pub token: Option<String>,
    /// Datacenter to talk to (default: the agent's).
    pub datacenter: Option<String>,
    /// TLS to Consul.
    pub tls: ConsulTls,
    /// TTL of lock sessions; `None`: each lock's own TTL. Consul accepts 10 s to
    /// 24 h, so shorter TTLs are raised to 10 s.
    pub session_ttl: Option<Duration>,
    /// Lock-delay of lock sessions (default 15 s, Consul's): after a holder's
    /// session is lost, its locks cannot be taken for this long.
    pub lock_delay: Duration,
    /// Longest time one ordinary request may take (default 10 s).
    pub request_timeout: Duration,
    /// How long a watch's blocking query waits for a change (default 30 s).
    pub watch_wait: Duration,
    /// Names this node in session names and lock values (default: the host name).
    pub node_name: String,
}

impl std::fmt::Debug for ConsulStoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulStoreOptions")
            .field("address", &self.address)
            .field("prefix", &self.prefix)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("datacenter", &self.datacenter)
            .field("tls", &self.tls)
            .field("session_ttl", &self.session_ttl)
            .field("lock_delay", &self.lock_delay)
            .field("request_timeout", &self.request_timeout)
            .field("watch_wait", &self.watch_wait)
            .field("node_name", &self.node_name)
            .finish()
    }
}

impl Default for ConsulStoreOptions {
    fn default() -> Self {
        Self {
            address: "http://127.0.0.1:8500".into(),
            prefix: "wharf/".into(),
            token: None,
            datacenter: None,
            tls: ConsulTls::default(),
            session_ttl: None,
            lock_delay: Duration::from_secs(15),
            request_timeout: Duration::from_secs(10),
            watch_wait: Duration::from_secs(30),
            node_name: super::file::host_name(),
        }
    }
}

/// TLS settings for the connection to Consul (always rustls).
#[derive(Debug, Clone, Default)]
pub struct ConsulTls {
    /// PEM file of CA certificates to trust, besides the built-in roots.
    pub ca: Option<PathBuf>,
    /// PEM client certificate (with `key`).
    pub cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key: Option<PathBuf>,
    /// Accept any server certificate (tests only).
    pub insecure_skip_verify: bool,
}

/// Why a Consul request failed; the source of [`StoreError::Backend`] errors of
/// the Consul store.
#[derive(Debug, thiserror::Error)]
pub enum ConsulError {
    /// A request failed or Consul refused it.
    #[error("consul at {address}: {operation}: {detail}")]
    Request {
        /// Consul's address.
        address: String,
        /// What was being done (naming the key).
        operation: String,
        /// The HTTP status, when Consul answered.
        status: Option<u16>,
        /// What went wrong.
        detail: String,
    },
    /// The settings are unusable.
    #[error("consul at {address}: {setting}: {detail}")]
    Config {
        /// Consul's address.
        address: String,
        /// The setting at fault.
        setting: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// A [`Store`] in Consul's KV store. Cheap to clone; connects lazily, so it opens
/// while Consul is down.
#[derive(Clone)]
pub struct ConsulStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ConsulStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulStore")
            .field("address", &self.inner.api.address)
            .field("prefix", &self.inner.prefix)
            .finish()
    }
}

struct Inner {
    api: Api,
    /// The key prefix, empty or ending in `/`.
    prefix: String,
    /// `<prefix>kv/`.
    kv_root: String,
    options: ConsulStoreOptions,
    /// Distinguishes this handle's sessions from every other handle's.
    instance: String,
}

impl ConsulStore {
    /// A store on the Consul at `options.address`; checks the settings (and reads
    /// the TLS files) but does not connect.
    pub fn new(options: ConsulStoreOptions) -> Result<Self, StoreError> {
        let address = options.address.trim().trim_end_matches('/').to_string();
        let config = |setting: &str, detail: String| StoreError::Backend {
            key: "(store)".into(),
            source: Box::new(ConsulError::Config {
                address: address.clone(),
                setting: setting.into(),
                detail,
            }),
        };
        // consulrs parses the URLs it builds with `unwrap`: only a clean base URL
        // may reach it.
        match reqwest_consul::Url::parse(&address) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some_and(|h| !h.is_empty())
                    && url.path() == "/"
                    && url.query().is_none()
                    && url.fragment().is_none()
                    && url.username().is_empty() => {}
            _ => {
                return Err(config(
                    "address",
                    "not an http:// or https:// URL of the form scheme://host[:port]".into(),
                ))
            }
        }
        if let Some(token) = &options.token {
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(config(
                    "token",
                    "must be non-empty printable ASCII without spaces".into(),
                ));
            }
        }
        if let Some(dc) = &options.datacenter {
            if dc.is_empty()
                || !dc
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(config(
                    "datacenter",
                    format!("{dc:?} is not a datacenter name"),
                ));
            }
        }
        let prefix = normalize_store_prefix(&options.prefix)
            .map_err(|reason| config("prefix", format!("{:?}: {reason}", options.prefix)))?;
        let health = Arc::new(HealthTracker::new(
            "consul",
            format!(
                "{address} ({})",
                if prefix.is_empty() { "/" } else { &prefix }
            ),
        ));
        let api = Api::new(&options, health).map_err(|e| StoreError::Backend {
            key: "(store)".into(),
            source: Box::new(e),
        })?;
        let instance = format!(
            "{}/{}/{:08x}",
            options.node_name,
            std::process::id(),
            rand::random::<u32>()
        );
        Ok(Self {
            inner: Arc::new(Inner {
                api,
                kv_root: format!("{prefix}kv/"),
                prefix,
                options,
                instance,
            }),
        })
    }

    /// Consul's address.
    pub fn address(&self) -> &str {
        &self.inner.api.address
    }

    /// The key prefix (empty or ending in `/`).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }
}

/// The prefix as used: `""` or valid key segments followed by `/`.
fn normalize_store_prefix(prefix: &str) -> Result<String, &'static str> {
    let trimmed = prefix.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    validate_key(trimmed).map_err(|e| match e {
        StoreError::InvalidKey { reason, .. } => reason,
        _ => "invalid",
    })?;
    Ok(format!("{trimmed}/"))
}

fn backend(key: &str) -> impl FnOnce(ConsulError) -> StoreError {
    let key = key.to_string();
    move |e| StoreError::Backend {
        key,
        source: Box::new(e),
    }
}

impl Inner {
    fn kv_path(&self, key: &str) -> String {
        format!("{}{key}", self.kv_root)
    }

    fn lock_path(&self, name: &str) -> String {
        format!("{}locks/{name}", self.prefix)
    }

    /// The current version of `key` (for conflict reports).
    async fn version(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let pair = self
            .api
            .get(&self.kv_path(key))
            .await
            .map_err(backend(key))?;
        Ok(pair.map(|p| p.modify_index))
    }

    async fn conflict(&self, key: &str, expected: Expect) -> StoreError {
        match self.version(key).await {
            Ok(found) => StoreError::Conflict {
                key: key.to_string(),
                expected,
                found,
            },
            Err(e) => e,
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64, StoreError> {
        let cas = match expect {
            Expect::Any => None,
            Expect::Absent => Some(0),
            // Consul reads cas=0 as "absent"; no entry ever has version 0.
            Expect::Version(0) => return Err(self.conflict(key, expect).await),
            Expect::Version(v) => Some(v),
        };
        let path = self.kv_path(key);
        // Non-zero, so it never matches an entry written without flags.
        let tag = rand::random::<u64>() | 1;
        let written = self
            .api
            .put(&path, value, cas, tag)
            .await
            .map_err(backend(key))?;
        if !written {
            return Err(self.conflict(key, expect).await);
        }
        match self.api.get(&path).await.map_err(backend(key))? {
            Some(p) if p.flags == tag => Ok(p.modify_index),
            // Overwritten since: ours was older than what is there now.
            Some(p) => Ok(p.modify_index.saturating_sub(1).max(1)),
            // Deleted since: any version is stale; stay above the expected one.
            None => Ok(cas.unwrap_or(0) + 1),
        }
    }

    async fn delete(&self, key: &str, expect: Expect) -> Result<(), StoreError> {
        let path = self.kv_path(key);
        match expect {
            Expect::Any => {
                self.api.delete(&path, None).await.map_err(backend(key))?;
                Ok(())
            }
            Expect::Absent => match self.version(key).await? {
                None => Ok(()),
                found => Err(StoreError::Conflict {
                    key: key.to_string(),
                    expected: expect,
                    found,
                }),
            },
            Expect::Version(v) => {
                // Consul answers `true` to a cas delete of a missing key, so look first.
                let found = self.version(key).await?;
                if found != Some(v) {
                    return Err(StoreError::Conflict {
                        key: key.to_string(),
                        expected: expect,
                        found,
                    });
                }
                if self
                    .api
                    .delete(&path, Some(v))
                    .await
                    .map_err(backend(key))?
                {
                    Ok(())
                } else {
                    Err(self.conflict(key, expect).await)
                }
            }
        }
    }

    /// Consul pairs under the normalized `prefix`, as store keys.
    fn entries(&self, prefix: &str, pairs: Vec<api::Pair>) -> Vec<(String, Entry)> {
        let mut out: Vec<(String, Entry)> = pairs
            .into_iter()
            .filter_map(|p| {
                let key = p.key.strip_prefix(&self.kv_root)?.to_string();
                if let Err(e) = validate_key(&key) {
                    tracing::warn!(consul_key = %p.key, error = %e, "skipping a Consul key that is not a store key");
                    return None;
                }
                let entry = Entry {
                    value: p.value,
                    version: p.modify_index,
                };
                key_in_prefix(&key, prefix).then_some((key, entry))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn list_path(&self, prefix: &str) -> String {
        if prefix.is_empty() {
            self.kv_root.clone()
        } else {
            self.kv_path(prefix)
        }
    }
}

#[async_trait]
impl Store for ConsulStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        validate_key(key)?;
        let pair = self
            .inner
            .api
            .get(&self.inner.kv_path(key))
            .await
            .map_err(backend(key))?;
        Ok(pair.map(|p| Entry {
            value: p.value,
            version: p.modify_index,
        }))
    }

    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64, StoreError> {
        validate_key(key)?;
        if value.len() > MAX_VALUE_LEN {
            return Err(StoreError::ValueTooLarge {
                key: key.to_string(),
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        self.inner.put(key, value, expect).await
    }

    async fn delete(&self, key: &str, expect: Expect) -> Result<(), StoreError> {
        validate_key(key)?;
        self.inner.delete(key, expect).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError> {
        let p = normalize_prefix(prefix)?;
        let pairs = self
            .inner
            .api
            .list(&self.inner.list_path(p))
            .await
            .map_err(backend(prefix))?;
        Ok(self.inner.entries(p, pairs))
    }

    async fn watch(&self, prefix: &str) -> Result<WatchStream, StoreError> {
        let p = normalize_prefix(prefix)?.to_string();
        watch::watch(self.inner.clone(), p).await
    }

    async fn lock(&self, name: &str, ttl: Duration, wait: Duration) -> Result<Lock, LockError> {
        lock::lock(self.inner.clone(), name, ttl, wait).await
    }

    async fn break_lock(&self, name: &str) -> Result<bool, StoreError> {
        validate_key(name)?;
        lock::break_lock(&self.inner, name).await
    }

    fn status(&self) -> Option<StoreStatus> {
        Some(self.inner.api.health.status())
    }
}
