//! From the store to the TLS listener: every stored certificate, of every resolver,
//! published to the [`CertResolver`] as the `acme` source in one atomic swap.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use crate::model::{self, CertificateEntry};
use crate::resolver::SourceEntries;
use crate::store::{Store, StoreError};
use crate::CertResolver;

/// The resolver's source name for ACME certificates.
pub const SOURCE: &str = "acme";

/// A stored certificate entry with what was derived from it.
#[derive(Clone)]
pub struct Published {
    /// The resolver it belongs to (the key's second segment).
    pub resolver: String,
    /// The entry.
    pub entry: CertificateEntry,
    /// Its store version.
    pub version: u64,
    /// The servable certificate, when the entry has a usable one.
    pub key: Option<Arc<CertifiedKey>>,
}

/// Keeps the resolver in step with the store, re-parsing only entries that changed.
pub struct Publisher {
    store: Arc<dyn Store>,
    resolver: Arc<CertResolver>,
    provider: Arc<CryptoProvider>,
    current: BTreeMap<String, Published>,
}

impl Publisher {
    /// A publisher with nothing published yet.
    pub fn new(
        store: Arc<dyn Store>,
        resolver: Arc<CertResolver>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        Self {
            store,
            resolver,
            provider,
            current: BTreeMap::new(),
        }
    }

    /// What is published, by store key.
    pub fn current(&self) -> &BTreeMap<String, Published> {
        &self.current
    }

    /// Reads every certificate entry and publishes them. Returns whether anything
    /// changed. On a store error the previous certificates stay published.
    pub async fn refresh(&mut self) -> Result<bool, StoreError> {
        let listed = self.store.list(model::CERTIFICATES).await?;
        let mut next = BTreeMap::new();
        for (key, stored) in listed {
            if let Some(p) = self
                .current
                .get(&key)
                .filter(|p| p.version == stored.version)
            {
                next.insert(key, p.clone());
                continue;
            }
            let entry: CertificateEntry = match serde_json::from_slice(&stored.value) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "undecodable certificate entry skipped");
                    continue;
                }
            };
            let cert_key = entry.certificate.as_ref().and_then(|c| {
                match crate::pem::load_pem(c.chain_pem.as_bytes(), c.key_pem.as_bytes(), &self.provider) {
                    Ok(loaded) => Some(Arc::new(loaded.key)),
                    Err(e) => {
                        tracing::warn!(key = %key, error = %e, "unusable stored certificate skipped");
                        None
                    }
                }
            });
            let resolver = key.split('/').nth(1).unwrap_or_default().to_string();
            next.insert(
                key,
                Published {
                    resolver,
                    entry,
                    version: stored.version,
                    key: cert_key,
                },
            );
        }
        let changed = next.len() != self.current.len()
            || next
                .iter()
                .zip(self.current.iter())
                .any(|((ka, a), (kb, b))| ka != kb || a.version != b.version);
        if changed {
            let entries: SourceEntries = next
                .values()
                .filter_map(|p| {
                    let key = p.key.clone()?;
                    Some((p.entry.domains.all().map(str::to_string).collect(), key))
                })
                .collect();
            tracing::debug!(certificates = entries.len(), "publishing ACME certificates");
            self.resolver.set_source(SOURCE, entries);
        }
        self.current = next;
        Ok(changed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{Domains, IssuedCertificate};
    use crate::store::{Expect, FileStore, FileStoreOptions};
    use crate::testutil::TempDir;

    #[tokio::test]
    async fn stored_certificates_are_published_and_unchanged_ones_not_reparsed() {
        let dir = TempDir::new();
        let store: Arc<dyn Store> =
            Arc::new(FileStore::open(dir.path(), FileStoreOptions::default()).unwrap());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resolver = Arc::new(CertResolver::new(&provider).unwrap());
        let mut publisher = Publisher::new(store.clone(), resolver.clone(), provider);
        let default = resolver.lookup(Some("a.test"));

        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let domains = Domains::new("a.test", &[]);
        let entry = CertificateEntry {
            domains: domains.clone(),
            directory_url: "https://ca/dir".into(),
            certificate: Some(IssuedCertificate {
                chain_pem: cert.pem(),
                key_pem: key.serialize_pem(),
                not_before: 0,
                not_after: i64::MAX / 2,
                ari_cert_id: None,
            }),
            last_attempt: None,
            last_error: None,
        };
        let k = model::certificate_key("le", &domains).unwrap();
        model::save(store.as_ref(), &k, &entry, Expect::Absent)
            .await
            .unwrap();
        assert!(publisher.refresh().await.unwrap());
        let served = resolver.lookup(Some("a.test"));
        assert!(!Arc::ptr_eq(&served, &default));
        assert_eq!(served.cert[0].as_ref(), cert.der().as_ref());
        assert_eq!(publisher.current()[&k].resolver, "le");
        assert!(!publisher.refresh().await.unwrap(), "nothing changed");

        store.delete(&k, Expect::Any).await.unwrap();
        assert!(publisher.refresh().await.unwrap());
        assert!(Arc::ptr_eq(&resolver.lookup(Some("a.test")), &default));
    }
}
