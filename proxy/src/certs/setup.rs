//! Turning the static configuration's `certificatesResolvers` and `certStore` into
//! the certificate store and ACME issuers; shared by the proxy and `wharf certs`.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use rustls::crypto::CryptoProvider;
use wharf_certstore::acme::{
    Backoff, ChallengeKind, ExternalAccount, Issuer, KeyType, Manager, ResolverSettings,
    StatusBoard, StoreChallenges,
};
use wharf_certstore::store::{FileStore, FileStoreOptions, Store};
use wharf_certstore::CertResolver;

use crate::config::static_config::{self, Acme, CertStore, StaticConfig};

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

/// Opens the configured store.
pub fn open_store(cfg: &CertStore) -> Result<Arc<dyn Store>, SetupError> {
    if cfg.consul.is_some() {
        return Err(SetupError::Store(
            "the Consul backend is not available yet; use certStore.file".into(),
        ));
    }
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
    let mut manager = Manager::new(store, issuers, resolver.clone(), provider.clone());
    manager.publish_stored().await;
    tracing::info!(resolvers = ?names, store = cfg.cert_store.directory(), "ACME certificate resolvers ready");
    Ok(Some(AcmeRuntime {
        status: manager.status(),
        manager,
        challenges,
    }))
}
