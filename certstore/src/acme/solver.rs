//! Challenge answers backed by the store: the [`ChallengeSource`] the listener asks.
//!
//! The issuer [`present`](StoreChallenges::present)s each answer to the store (so any
//! instance sharing it can answer the CA) and to this instance's memory (so its own
//! challenges need no store read), then tells the CA it is ready. Lookups look in
//! memory first, then read the store, bounded by [`STORE_READ_TIMEOUT`]; only
//! challenge requests ever reach the store.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use crate::challenge::{BoxFuture, ChallengeSource};
use crate::model::{self, ChallengeEntry};
use crate::store::{Expect, Store, StoreError};

/// The longest a challenge lookup waits for the store.
pub const STORE_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// A challenge answer ready to serve.
#[derive(Clone)]
enum Answer {
    Http(String),
    Tls(Arc<CertifiedKey>),
}

/// Answers pending challenges from memory, then from the store.
pub struct StoreChallenges {
    store: Arc<dyn Store>,
    provider: Arc<CryptoProvider>,
    /// Answers by store key, with their expiry.
    local: RwLock<HashMap<String, (Answer, i64)>>,
}

impl StoreChallenges {
    /// Answers from `store`; TLS-ALPN-01 keys are loaded with `provider`.
    pub fn new(store: Arc<dyn Store>, provider: Arc<CryptoProvider>) -> Self {
        Self {
            store,
            provider,
            local: RwLock::new(HashMap::new()),
        }
    }

    /// Writes `entry` to the store and to memory. Call before telling the CA the
    /// challenge is ready.
    pub async fn present(&self, entry: &ChallengeEntry) -> Result<(), StoreError> {
        let key = entry.key()?;
        let bytes = serde_json::to_vec(entry).map_err(|e| StoreError::Backend {
            key: key.clone(),
            source: Box::new(e),
        })?;
        self.store.put(&key, bytes, Expect::Any).await?;
        if let Some(answer) = self.answer(entry) {
            self.write_local().insert(key, (answer, entry.expires()));
        }
        Ok(())
    }

    /// Removes `entry` from the store and from memory.
    pub async fn clean_up(&self, entry: &ChallengeEntry) -> Result<(), StoreError> {
        let key = entry.key()?;
        self.write_local().remove(&key);
        self.store.delete(&key, Expect::Any).await
    }

    fn write_local(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, (Answer, i64)>> {
        match self.local.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn answer(&self, entry: &ChallengeEntry) -> Option<Answer> {
        match entry {
            ChallengeEntry::Http01 {
                key_authorization, ..
            } => Some(Answer::Http(key_authorization.clone())),
            ChallengeEntry::TlsAlpn01 {
                domain,
                cert_pem,
                key_pem,
                ..
            } => {
                match crate::pem::load_pem(cert_pem.as_bytes(), key_pem.as_bytes(), &self.provider)
                {
                    Ok(loaded) => Some(Answer::Tls(Arc::new(loaded.key))),
                    Err(e) => {
                        tracing::warn!(domain = %domain, error = %e, "unusable TLS-ALPN-01 challenge certificate");
                        None
                    }
                }
            }
        }
    }

    /// The answer stored under `key`: from memory, else from the store.
    async fn lookup(&self, key: &str) -> Option<Answer> {
        let now = model::unix_now();
        let cached = match self.local.read() {
            Ok(g) => g.get(key).cloned(),
            Err(poisoned) => poisoned.into_inner().get(key).cloned(),
        };
        if let Some((answer, expires)) = cached {
            if now < expires {
                return Some(answer);
            }
        }
        let read = tokio::time::timeout(STORE_READ_TIMEOUT, self.store.get(key)).await;
        let entry = match read {
            Ok(Ok(Some(entry))) => entry,
            Ok(Ok(None)) => return None,
            Ok(Err(e)) => {
                tracing::warn!(key, error = %e, "cannot read a challenge from the store");
                return None;
            }
            Err(_) => {
                tracing::warn!(key, "challenge lookup in the store timed out");
                return None;
            }
        };
        let entry: ChallengeEntry = match serde_json::from_slice(&entry.value) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(key, error = %e, "undecodable challenge entry in the store");
                return None;
            }
        };
        if entry.is_expired(now) {
            return None;
        }
        self.answer(&entry)
    }
}

impl ChallengeSource for StoreChallenges {
    fn http01<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            let key = model::http01_challenge_key(token).ok()?;
            match self.lookup(&key).await? {
                Answer::Http(body) => Some(body),
                Answer::Tls(_) => None,
            }
        })
    }

    fn tls_alpn01<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Option<Arc<CertifiedKey>>> {
        Box::pin(async move {
            let key = model::tls_alpn01_challenge_key(domain).ok()?;
            match self.lookup(&key).await? {
                Answer::Tls(cert) => Some(cert),
                Answer::Http(_) => None,
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::{FileStore, FileStoreOptions};
    use crate::testutil::TempDir;

    fn source(store: &Arc<dyn Store>) -> StoreChallenges {
        StoreChallenges::new(
            store.clone(),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
    }

    #[tokio::test]
    async fn any_instance_sharing_the_store_answers_until_clean_up() {
        let dir = TempDir::new();
        let store: Arc<dyn Store> =
            Arc::new(FileStore::open(dir.path(), FileStoreOptions::default()).unwrap());
        let (mine, other) = (source(&store), source(&store));
        let expires = model::unix_now() + 60;
        let http = ChallengeEntry::Http01 {
            token: "tok_1-A".into(),
            key_authorization: "tok_1-A.thumb".into(),
            expires,
        };
        let (cert_pem, key_pem) =
            super::super::keys::tls_alpn01_certificate("c.test", &[1u8; 32]).unwrap();
        let tls = ChallengeEntry::TlsAlpn01 {
            domain: "c.test".into(),
            cert_pem,
            key_pem,
            expires,
        };
        mine.present(&http).await.unwrap();
        mine.present(&tls).await.unwrap();
        for s in [&mine, &other] {
            assert_eq!(s.http01("tok_1-A").await.as_deref(), Some("tok_1-A.thumb"));
            assert!(s.tls_alpn01("C.test.").await.is_some());
            assert!(s.http01("nope").await.is_none());
            assert!(s.http01("../etc/passwd").await.is_none());
            assert!(s.tls_alpn01("other.test").await.is_none());
        }
        mine.clean_up(&http).await.unwrap();
        mine.clean_up(&tls).await.unwrap();
        assert!(other.http01("tok_1-A").await.is_none());
        assert!(mine.tls_alpn01("c.test").await.is_none());
    }

    #[tokio::test]
    async fn expired_answers_are_not_served() {
        let dir = TempDir::new();
        let store: Arc<dyn Store> =
            Arc::new(FileStore::open(dir.path(), FileStoreOptions::default()).unwrap());
        let s = source(&store);
        let old = ChallengeEntry::Http01 {
            token: "old".into(),
            key_authorization: "old.thumb".into(),
            expires: model::unix_now() - 1,
        };
        s.present(&old).await.unwrap();
        assert!(s.http01("old").await.is_none());
        assert!(source(&store).http01("old").await.is_none());
    }
}
