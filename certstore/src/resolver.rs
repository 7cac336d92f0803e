//! The in-memory certificate resolver the TLS listener reads on every handshake:
//! an atomically swapped snapshot of certificates by exact name and `*.` wildcard,
//! with a generated default certificate for unknown names. No lock is taken on the
//! handshake path.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate could not be prepared for serving.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    /// Generating the default certificate failed.
    #[error("cannot generate the default certificate")]
    Generate(#[source] rcgen::Error),
    /// The private key is not usable by the TLS provider.
    #[error("unusable private key")]
    Key(#[source] rustls::Error),
}

/// Certificates by the names they serve.
#[derive(Debug, Default)]
struct Snapshot {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by the parent domain: `*.example.com` is stored under `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

/// Certificates of one source, each with the names it serves.
pub type SourceEntries = Vec<(Vec<String>, Arc<CertifiedKey>)>;

/// Chooses the certificate for a handshake from the current snapshot.
#[derive(Debug)]
pub struct CertResolver {
    snapshot: ArcSwap<Snapshot>,
    default: Arc<CertifiedKey>,
    /// Writers' view: certificates by source (`acme`, `file`); never read on a handshake.
    sources: Mutex<BTreeMap<String, SourceEntries>>,
}

impl CertResolver {
    /// A resolver with no certificates and a freshly generated default certificate.
    pub fn new(provider: &CryptoProvider) -> Result<Self, ResolverError> {
        Ok(Self {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            default: Arc::new(self_signed(provider, "WHARF DEFAULT CERT", &[])?),
            sources: Mutex::new(BTreeMap::new()),
        })
    }

    /// Replaces the certificates of one source (`"acme"`, `"file"`, ...) and publishes a
    /// new snapshot. Where two sources serve the same name, the source whose name sorts
    /// last wins, so static `file` certificates take precedence over `acme` ones.
    pub fn set_source(&self, source: &str, entries: SourceEntries) {
        let mut sources = match self.sources.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        sources.insert(source.to_string(), entries);
        let mut snap = Snapshot::default();
        for (names, key) in sources.values().flatten() {
            for name in names {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                match name.strip_prefix("*.") {
                    Some(parent) => snap.wildcard.insert(parent.to_string(), key.clone()),
                    None => snap.exact.insert(name, key.clone()),
                };
            }
        }
        self.snapshot.store(Arc::new(snap));
    }

    /// Every certificate served by name (the generated default aside), once each,
    /// read from the writers' view: for metrics, never for a handshake.
    pub fn served(&self) -> Vec<Arc<CertifiedKey>> {
        let sources = match self.sources.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out: Vec<Arc<CertifiedKey>> = Vec::new();
        for (_, key) in sources.values().flatten() {
            if !out.iter().any(|k| Arc::ptr_eq(k, key)) {
                out.push(key.clone());
            }
        }
        out
    }

    /// The certificate served for `server_name` (the default one when none matches).
    pub fn lookup(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let snap = self.snapshot.load();
        let Some(name) = server_name else {
            return self.default.clone();
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(k) = snap.exact.get(&name) {
            return k.clone();
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(k) = snap.wildcard.get(parent) {
                return k.clone();
            }
        }
        self.default.clone()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.lookup(hello.server_name()))
    }
}

/// A self-signed certificate with common name `common_name` and the DNS names `sans`,
/// usable by `provider`.
pub fn self_signed(
    provider: &CryptoProvider,
    common_name: &str,
    sans: &[&str],
) -> Result<CertifiedKey, ResolverError> {
    let sans: Vec<String> = sans.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(sans).map_err(ResolverError::Generate)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let key_pair = rcgen::KeyPair::generate().map_err(ResolverError::Generate)?;
    let cert = params
        .self_signed(&key_pair)
        .map_err(ResolverError::Generate)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let key = provider
        .key_provider
        .load_private_key(der)
        .map_err(ResolverError::Key)?;
    Ok(CertifiedKey::new(
        vec![CertificateDer::from(cert.der().to_vec())],
        key,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_then_wildcard_then_default() {
        let p = rustls::crypto::ring::default_provider();
        let r = CertResolver::new(&p).unwrap();
        let a = Arc::new(self_signed(&p, "a.test", &["a.test"]).unwrap());
        let w = Arc::new(self_signed(&p, "*.w.test", &["*.w.test"]).unwrap());
        r.set_source("acme", vec![(vec!["A.test.".into()], a.clone())]);
        r.set_source("file", vec![(vec!["*.w.test".into()], w.clone())]);
        assert!(Arc::ptr_eq(&r.lookup(Some("a.test")), &a));
        assert!(Arc::ptr_eq(&r.lookup(Some("x.w.test")), &w));
        assert!(!Arc::ptr_eq(&r.lookup(Some("y.x.w.test")), &w));
        assert!(!Arc::ptr_eq(&r.lookup(Some("other.test")), &a));
        assert!(!Arc::ptr_eq(&r.lookup(None), &a));
        assert_eq!(r.served().len(), 2);
    }
}
