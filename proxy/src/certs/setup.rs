//! Turning the static configuration's `certificatesResolvers` and `certStore` into
//! the certificate store and ACME issuers; shared by the proxy and `wharf certs`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

use base64::Engine;
use rustls::crypto::CryptoProvider;
use wharf_certstore::acme::{
    Backoff, ChallengeKind, ExternalAccount, Issuer, KeyType, Manager, ResolverSettings,
    StatusBoard, StoreChallenges,
};
use wharf_certstore::store::{
    ClusterKey, ConsulStore, ConsulStoreOptions, ConsulTls, FileStore, FileStoreOptions,
    SealedStore, Store,
};
use wharf_certstore::CertResolver;

use crate::config::static_config::{self, Acme, CertStore, ConsulCertStore, StaticConfig};

/// The environment variable holding the cluster key when the configuration does not.
pub const CLUSTER_KEY_ENV: &str = "WHARF_CLUSTER_KEY";

/// Why the certificate store or a resolver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A resolver's settings are invalid.
    #[error("certificatesResolvers.{resolver}.acme: {message}")]
    Resolver {
        /// Resolver name.
        resolver: String,
        /// What is wrong.
        message: String,
    },
    /// The store cannot be opened.
    #[error("certStore: {0}")]
    Store(String),
}

/// The ACME resolvers of `cfg` (those with an `acme` section), checked.
pub fn resolvers(cfg: &StaticConfig) -> Result<Vec<ResolverSettings>, SetupError> {
    cfg.certificates_resolvers
        .iter()
        .filter_map(|(name, r)| Some((name, r.acme.as_ref()?)))
        .map(|(name, acme)| {
            resolver_settings(name, acme, cfg).map_err(|message| SetupError::Resolver {
                resolver: name.clone(),
                message,
            })
        })
        .collect()
}

/// One resolver's settings; reads its `caCertificates` files.
pub fn resolver_settings(
    name: &str,
    acme: &Acme,
    cfg: &StaticConfig,
) -> Result<ResolverSettings, String> {
    let challenge = match (
        &acme.tls_challenge,
        &acme.http_challenge,
        &acme.dns_challenge,
    ) {
        (Some(_), _, _) => ChallengeKind::TlsAlpn01,
        (None, Some(http), _) => {
            let ep = http.entry_point.trim();
            if !ep.is_empty() && !cfg.entry_points.contains_key(ep) {
                return Err(format!(
                    "httpChallenge.entryPoint {ep:?} is not an entrypoint (wharf answers HTTP-01 on every entrypoint; the CA must reach this one on port 80)"
                ));
            }
            ChallengeKind::Http01
        }
        (None, None, Some(_)) => {
            return Err("dnsChallenge is not supported; use httpChallenge or tlsChallenge".into())
        }
        (None, None, None) => {
            return Err(
                "no challenge configured: set httpChallenge.entryPoint or tlsChallenge".into(),
            )
        }
    };
    let directory_url = acme.ca_server.trim().to_string();
    if !(directory_url.starts_with("https://") || directory_url.starts_with("http://")) {
        return Err(format!("caServer {directory_url:?} is not an http(s) URL"));
    }
    let eab = match &acme.eab {
        Some(eab) if !eab.kid.is_empty() || !eab.hmac_encoded.is_empty() => {
            let encoded = eab.hmac_encoded.trim().trim_end_matches('=');
            let hmac_key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded))
                .map_err(|e| format!("eab.hmacEncoded is not base64: {e}"))?;
            if eab.kid.trim().is_empty() {
                return Err("eab.kid is empty".into());
            }
            Some(ExternalAccount {
                kid: eab.kid.trim().to_string(),
                hmac_key,
            })
        }
        _ => None,
    };
    let ca_certificates = acme
        .ca_certificates
        .iter()
        .map(|path| {
            std::fs::read(path).map_err(|e| format!("caCertificates: cannot read {path}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ResolverSettings {
        name: name.to_string(),
        email: acme.email.trim().to_string(),
        directory_url,
        challenge,
        eab,
        key_type: match acme.key_type {
            static_config::KeyType::Ec256 => KeyType::Ec256,
            static_config::KeyType::Ec384 => KeyType::Ec384,
            static_config::KeyType::Rsa2048 => KeyType::Rsa2048,
            static_config::KeyType::Rsa4096 => KeyType::Rsa4096,
            static_config::KeyType::Rsa8192 => KeyType::Rsa8192,
        },
        ca_certificates,
        system_roots: acme.ca_system_cert_pool,
        profile: acme.profile.clone().filter(|p| !p.trim().is_empty()),
        backoff: Backoff {
            initial: acme.retry_initial.0,
            max: acme.retry_max.0,
        },
    })
}

/// Opens the configured store: Consul when `certStore.consul` is set, else the file
/// store; sealed with the cluster key when one is configured.
pub fn open_store(cfg: &CertStore) -> Result<Arc<dyn Store>, SetupError> {
    let store = match &cfg.consul {
        Some(consul) => open_consul(consul)?,
        None => open_file(cfg)?,
    };
    let env_key = std::env::var(CLUSTER_KEY_ENV).ok();
    match cluster_key(cfg, env_key.as_deref())? {
        Some(key) => Ok(Arc::new(SealedStore::new(store, key))),
        None => {
            static WARNED: Once = Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "no cluster key (certStore.encryptionKey, certStore.encryptionKeyFile or {CLUSTER_KEY_ENV}): private keys are stored in clear"
                );
            });
            Ok(store)
        }
    }
}

/// A short description of the configured store, for logs.
pub fn describe_store(cfg: &CertStore) -> String {
    match &cfg.consul {
        Some(c) => format!("consul {} ({})", c.address.trim(), c.prefix.trim()),
        None => cfg.directory().to_string(),
    }
}

/// The cluster key from `certStore.encryptionKey`, `certStore.encryptionKeyFile` or
/// `env_key` (the environment variable), in that order; setting both of the first
/// two is an error.
pub fn cluster_key(
    cfg: &CertStore,
    env_key: Option<&str>,
) -> Result<Option<ClusterKey>, SetupError> {
    let parse = |text: &str, source: &str| {
        ClusterKey::from_base64(text, source)
            .map(Some)
            .map_err(|e| SetupError::Store(e.to_string()))
    };
    let inline = cfg
        .encryption_key
        .as_deref()
        .filter(|k| !k.trim().is_empty());
    let file = cfg
        .encryption_key_file
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty());
    match (inline, file) {
        (Some(_), Some(_)) => Err(SetupError::Store(
            "set encryptionKey or encryptionKeyFile, not both".into(),
        )),
        (Some(key), None) => parse(key, "certStore.encryptionKey"),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                SetupError::Store(format!("encryptionKeyFile: cannot read {path}: {e}"))
            })?;
            parse(&text, &format!("certStore.encryptionKeyFile ({path})"))
        }
        (None, None) => match env_key.filter(|k| !k.trim().is_empty()) {
            Some(key) => parse(key, CLUSTER_KEY_ENV),
            None => Ok(None),
        },
    }
}

fn open_consul(cfg: &ConsulCertStore) -> Result<Arc<dyn Store>, SetupError> {
    let path = |p: &Option<String>| {
        p.as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    };
    let tls = cfg.tls.clone().unwrap_or_default();
    let mut options = ConsulStoreOptions {
        address: cfg.address.trim().to_string(),
        prefix: cfg.prefix.clone(),
        token: cfg.token.clone().filter(|t| !t.is_empty()),
        datacenter: cfg.datacenter.clone().filter(|d| !d.is_empty()),
        tls: ConsulTls {
            ca: path(&tls.ca),
            cert: path(&tls.cert),
            key: path(&tls.key),
            insecure_skip_verify: tls.insecure_skip_verify,
        },
        session_ttl: cfg.session_ttl.map(|d| d.0),
        ..ConsulStoreOptions::default()
    };
    if let Some(delay) = cfg.lock_delay {
        if delay.0 > Duration::from_secs(60) {
            return Err(SetupError::Store(format!(
                "consul.lockDelay {delay} is longer than Consul's 60s maximum"
            )));
        }
        options.lock_delay = delay.0;
    }
    if let Some(ttl) = options.session_ttl {
        if !(Duration::from_secs(10)..=Duration::from_secs(86_400)).contains(&ttl) {
            return Err(SetupError::Store(format!(
                "consul.sessionTTL {} is outside Consul's 10s..24h",
                humantime::format_duration(ttl)
            )));
        }
    }
    let store = ConsulStore::new(options)
        .map_err(|e| SetupError::Store(format!("consul: {}", error_chain(&e))))?;
    Ok(Arc::new(store))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn open_file(cfg: &CertStore) -> Result<Arc<dyn Store>, SetupError> {
    let dir = cfg.directory();
    create_private_dir(Path::new(dir))
        .map_err(|e| SetupError::Store(format!("cannot create {dir}: {e}")))?;
    let mut options = FileStoreOptions::default();
    if let Some(poll) = cfg.file.as_ref().and_then(|f| f.poll_interval) {
        options.poll_interval = poll.0.max(std::time::Duration::from_millis(50));
    }
    let store = FileStore::open(Path::new(dir), options).map_err(|e| {
        SetupError::Store(format!(
            "cannot open the file store in {dir} ({e}); set certStore.file.directory to a writable directory"
        ))
    })?;
    Ok(Arc::new(store))
}

/// Creates `dir` (and its parents) if missing; the store directory itself gets mode
/// 0700, since private keys live there.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// An issuer for every resolver, presenting challenges through `challenges`.
pub fn issuers(
    store: &Arc<dyn Store>,
    resolvers: Vec<ResolverSettings>,
    challenges: &Arc<StoreChallenges>,
) -> Result<Vec<Issuer>, SetupError> {
    resolvers
        .into_iter()
        .map(|settings| {
            let name = settings.name.clone();
            Issuer::new(store.clone(), settings, challenges.clone()).map_err(|e| {
                SetupError::Resolver {
                    resolver: name,
                    message: e.detail(),
                }
            })
        })
        .collect()
}

/// The ACME side of a running proxy.
pub struct AcmeRuntime {
    /// The loop that issues, renews and publishes; run it with [`Manager::run`].
    pub manager: Manager,
    /// Challenge answers for the listener.
    pub challenges: Arc<StoreChallenges>,
    /// Certificate status for the admin API.
    pub status: StatusBoard,
    /// The store, for its health in the admin API.
    pub store: Arc<dyn Store>,
}

/// Sets up the resolvers when any `certificatesResolvers.*.acme` is configured, on
/// `store` when the caller already opened it (else the store is opened here), and
/// publishes the stored certificates to `resolver` before returning, so they are
/// served from the first connection on.
pub async fn start(
    cfg: &StaticConfig,
    resolver: &Arc<CertResolver>,
    provider: &Arc<CryptoProvider>,
    store: Option<Arc<dyn Store>>,
) -> Result<Option<AcmeRuntime>, SetupError> {
    let settings = resolvers(cfg)?;
    if settings.is_empty() {
        return Ok(None);
    }
    let store = match store {
        Some(store) => store,
        None => open_store(&cfg.cert_store)?,
    };
    let challenges = Arc::new(StoreChallenges::new(store.clone(), provider.clone()));
    let names: Vec<String> = settings.iter().map(|s| s.name.clone()).collect();
    let issuers = issuers(&store, settings, &challenges)?;
    let mut manager = Manager::new(store.clone(), issuers, resolver.clone(), provider.clone());
    manager.publish_stored().await;
    tracing::info!(resolvers = ?names, store = %describe_store(&cfg.cert_store), "ACME certificate resolvers ready");
    Ok(Some(AcmeRuntime {
        status: manager.status(),
        manager,
        challenges,
        store,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn cluster_key_comes_from_the_setting_the_file_or_the_environment() {
        let mut cfg = CertStore::default();
        assert!(cluster_key(&cfg, None).unwrap().is_none());
        assert!(cluster_key(&cfg, Some(KEY)).unwrap().is_some());
        let err = cluster_key(&cfg, Some("c2hvcnQ=")).unwrap_err().to_string();
        assert!(
            err.contains(CLUSTER_KEY_ENV) && err.contains("5 bytes"),
            "{err}"
        );

        cfg.encryption_key = Some("bm90IDMyIGJ5dGVz".into());
        let err = cluster_key(&cfg, Some(KEY)).unwrap_err().to_string();
        assert!(
            err.contains("certStore.encryptionKey"),
            "setting wins: {err}"
        );

        let path = std::env::temp_dir().join(format!("wharf-key-{}", rand::random::<u64>()));
        std::fs::write(&path, format!("{KEY}\n")).unwrap();
        cfg.encryption_key_file = Some(path.display().to_string());
        let err = cluster_key(&cfg, None).unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");
        cfg.encryption_key = None;
        assert!(cluster_key(&cfg, None).unwrap().is_some());
        std::fs::remove_file(&path).unwrap();
        let err = cluster_key(&cfg, None).unwrap_err().to_string();
        assert!(err.contains("cannot read"), "{err}");
    }

    #[test]
    fn consul_settings_are_checked_when_the_store_opens() {
        let mut cfg = CertStore {
            consul: Some(ConsulCertStore::default()),
            ..CertStore::default()
        };
        assert!(open_store(&cfg).is_ok(), "opens without reaching Consul");
        let consul = cfg.consul.as_mut().unwrap();
        consul.address = "consul:8500".into();
        let err = open_store(&cfg).err().unwrap().to_string();
        assert!(
            err.contains("address") && err.contains("consul:8500"),
            "{err}"
        );
        let consul = cfg.consul.as_mut().unwrap();
        consul.address = "http://127.0.0.1:8500".into();
        consul.tls = Some(static_config::ConsulTlsConfig {
            ca: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        });
        let err = open_store(&cfg).err().unwrap().to_string();
        assert!(
            err.contains("tls.ca") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
        let consul = cfg.consul.as_mut().unwrap();
        consul.tls = None;
        consul.session_ttl = Some(crate::config::duration::GoDuration(Duration::from_secs(2)));
        let err = open_store(&cfg).err().unwrap().to_string();
        assert!(err.contains("sessionTTL"), "{err}");
    }
}
