//! Encryption at rest for any backend: [`SealedStore`] wraps a [`Store`] and
//! encrypts the entries that hold private keys with the cluster key.
//!
//! Sealed entries are the whole values under [`SEALED_PREFIXES`]: certificates
//! (their key PEM), ACME accounts (the account key) and TLS-ALPN-01 challenge
//! answers (a throwaway key, sealed all the same). Other entries (HTTP-01 answers)
//! are public anyway and pass through unchanged.
//!
//! A sealed value is `MAGIC || nonce (12 bytes) || ChaCha20-Poly1305 ciphertext and
//! tag`, with a random nonce per write and the entry's key as associated data (so a
//! value copied to another key does not open). Values without the magic prefix are
//! read as plaintext: entries written before a key was configured stay readable and
//! are sealed at their next write. A value that does not open (wrong key, damage)
//! is a [`StoreError::Sealed`] naming the entry, never garbage.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use super::{
    key_in_prefix, Entry, Expect, Lock, LockError, Store, StoreError, StoreStatus, WatchStream,
};

/// The key prefixes whose entries are sealed.
pub const SEALED_PREFIXES: [&str; 3] = ["certificates", "accounts", "challenges/tls-alpn-01"];

/// Marks a sealed value (version 1 of the format).
const MAGIC: &[u8] = b"wharf-sealed-1:";

/// Why a cluster key was refused.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {reason}")]
pub struct ClusterKeyError {
    /// Where the key came from (setting or variable name).
    pub source_name: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The 32-byte key sealing private keys in the store, shared by every node.
#[derive(Clone)]
pub struct ClusterKey(Arc<LessSafeKey>);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(<redacted>)")
    }
}

impl ClusterKey {
    /// Parses standard base64 (padded or not) of exactly 32 bytes; `source_name`
    /// names the setting in errors.
    pub fn from_base64(text: &str, source_name: &str) -> Result<Self, ClusterKeyError> {
        let err = |reason: String| ClusterKeyError {
            source_name: source_name.to_string(),
            reason,
        };
        let text = text.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|e| err(format!("not base64 ({e})")))?;
        Self::from_bytes(&bytes).map_err(|_| {
            err(format!(
                "{} bytes, a cluster key is 32 (e.g. `head -c 32 /dev/urandom | base64`)",
                bytes.len()
            ))
        })
    }

    /// A key from its 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ClusterKeyError> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes).map_err(|_| ClusterKeyError {
            source_name: "cluster key".into(),
            reason: format!("{} bytes instead of 32", bytes.len()),
        })?;
        Ok(Self(Arc::new(LessSafeKey::new(unbound))))
    }

    fn seal(&self, key: &str, plain: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| sealed_error(key, "no randomness for a nonce"))?;
        let mut data = plain;
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.as_bytes()),
                &mut data,
            )
            .map_err(|_| sealed_error(key, "encryption failed"))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + data.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&data);
        Ok(out)
    }

    /// The plaintext of `stored`; values without the magic prefix are plaintext
    /// written before sealing was enabled.
    fn open(&self, key: &str, stored: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let Some(rest) = stored.strip_prefix(MAGIC) else {
            return Ok(stored);
        };
        if rest.len() < NONCE_LEN {
            return Err(sealed_error(key, "sealed value too short"));
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| sealed_error(key, "bad nonce"))?;
        let mut data = sealed.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(key.as_bytes()), &mut data)
            .map_err(|_| {
                sealed_error(
                    key,
                    "cannot decrypt: the cluster key differs from the one that sealed it, or the value is damaged",
                )
            })?;
        Ok(plain.to_vec())
    }
}

fn sealed_error(key: &str, reason: &str) -> StoreError {
    StoreError::Sealed {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

/// Whether entries under `key` are sealed.
pub fn is_sealed_key(key: &str) -> bool {
    SEALED_PREFIXES.iter().any(|p| key_in_prefix(key, p))
}

/// A [`Store`] that seals private-key entries of the store it wraps.
pub struct SealedStore {
    inner: Arc<dyn Store>,
    key: ClusterKey,
}

impl SealedStore {
    /// Wraps `inner`, sealing with `key`.
    pub fn new(inner: Arc<dyn Store>, key: ClusterKey) -> Self {
        Self { inner, key }
    }

    fn open_entry(&self, key: &str, entry: Entry) -> Result<Entry, StoreError> {
        if !is_sealed_key(key) {
            return Ok(entry);
        }
        Ok(Entry {
            value: self.key.open(key, entry.value)?,
            version: entry.version,
        })
    }
}

#[async_trait]
impl Store for SealedStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        match self.inner.get(key).await? {
            Some(entry) => self.open_entry(key, entry).map(Some),
            None => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64, StoreError> {
        let value = if is_sealed_key(key) {
            super::validate_key(key)?;
            self.key.seal(key, value)?
        } else {
            value
        };
        self.inner.put(key, value, expect).await
    }

    async fn delete(&self, key: &str, expect: Expect) -> Result<(), StoreError> {
        self.inner.delete(key, expect).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError> {
        let entries = self.inner.list(prefix).await?;
        Ok(entries
            .into_iter()
            .filter_map(|(key, entry)| match self.open_entry(&key, entry) {
                Ok(entry) => Some((key, entry)),
                Err(e) => {
                    tracing::error!(error = %e, "skipping a store entry that cannot be decrypted");
                    None
                }
            })
            .collect())
    }

    async fn watch(&self, prefix: &str) -> Result<WatchStream, StoreError> {
        self.inner.watch(prefix).await
    }

    async fn lock(&self, name: &str, ttl: Duration, wait: Duration) -> Result<Lock, LockError> {
        self.inner.lock(name, ttl, wait).await
    }

    async fn break_lock(&self, name: &str) -> Result<bool, StoreError> {
        self.inner.break_lock(name).await
    }

    fn status(&self) -> Option<StoreStatus> {
        self.inner.status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FileStore, FileStoreOptions};
    use crate::testutil::TempDir;

    fn key(byte: u8) -> ClusterKey {
        ClusterKey::from_bytes(&[byte; 32]).unwrap()
    }

    fn file_store(dir: &TempDir) -> Arc<dyn Store> {
        Arc::new(FileStore::open(dir.path().join("s"), FileStoreOptions::default()).unwrap())
    }

    #[test]
    fn keys_parse_from_base64_and_bad_ones_say_why() {
        let text = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        ClusterKey::from_base64(&format!(" {text}\n"), "k").unwrap();
        let err = ClusterKey::from_base64("c2hvcnQ=", "certStore.encryptionKey").unwrap_err();
        assert!(
            err.to_string().contains("certStore.encryptionKey: 5 bytes"),
            "{err}"
        );
        let err = ClusterKey::from_base64("***", "WHARF_CLUSTER_KEY").unwrap_err();
        assert!(err.to_string().contains("not base64"), "{err}");
    }

    #[tokio::test]
    async fn private_key_entries_are_sealed_others_pass_through() {
        let dir = TempDir::new();
        let raw = file_store(&dir);
        let sealed = SealedStore::new(raw.clone(), key(1));
        let cert = "certificates/le/example.com-0123456789abcdef";
        let secret = br#"{"key_pem":"-----BEGIN PRIVATE KEY-----"}"#.to_vec();
        let v = sealed
            .put(cert, secret.clone(), Expect::Absent)
            .await
            .unwrap();
        let stored = raw.get(cert).await.unwrap().unwrap();
        assert_eq!(stored.version, v);
        assert!(stored.value.starts_with(MAGIC));
        assert!(!stored.value.windows(11).any(|w| w == b"PRIVATE KEY"));
        assert_eq!(sealed.get(cert).await.unwrap().unwrap().value, secret);
        assert_eq!(
            sealed.list("certificates").await.unwrap()[0].1.value,
            secret
        );
        // Two writes of the same value differ (random nonce).
        sealed.put(cert, secret.clone(), Expect::Any).await.unwrap();
        assert_ne!(raw.get(cert).await.unwrap().unwrap().value, stored.value);

        let http = "challenges/http-01/tok";
        sealed
            .put(http, b"answer".to_vec(), Expect::Any)
            .await
            .unwrap();
        assert_eq!(raw.get(http).await.unwrap().unwrap().value, b"answer");
    }

    #[tokio::test]
    async fn plaintext_from_before_is_read_and_sealed_on_next_write() {
        let dir = TempDir::new();
        let raw = file_store(&dir);
        let account = "accounts/ca.example/ops@example.com";
        raw.put(account, b"{\"plain\":1}".to_vec(), Expect::Any)
            .await
            .unwrap();
        let sealed = SealedStore::new(raw.clone(), key(2));
        let entry = sealed.get(account).await.unwrap().unwrap();
        assert_eq!(entry.value, b"{\"plain\":1}");
        sealed
            .put(account, entry.value, Expect::Version(entry.version))
            .await
            .unwrap();
        assert!(raw
            .get(account)
            .await
            .unwrap()
            .unwrap()
            .value
            .starts_with(MAGIC));
    }

    #[tokio::test]
    async fn wrong_key_or_moved_value_is_an_error_naming_the_entry() {
        let dir = TempDir::new();
        let raw = file_store(&dir);
        let cert = "certificates/le/a.example-0000000000000000";
        SealedStore::new(raw.clone(), key(3))
            .put(cert, b"secret".to_vec(), Expect::Any)
            .await
            .unwrap();
        let other = SealedStore::new(raw.clone(), key(4));
        match other.get(cert).await {
            Err(StoreError::Sealed { key, reason }) => {
                assert_eq!(key, cert);
                assert!(reason.contains("cluster key"), "{reason}");
            }
            r => panic!("expected a sealed error, got {r:?}"),
        }
        assert!(other.list("certificates").await.unwrap().is_empty());
        // The key is the associated data: a value copied elsewhere does not open.
        let moved = "certificates/le/b.example-0000000000000000";
        let value = raw.get(cert).await.unwrap().unwrap().value;
        raw.put(moved, value, Expect::Any).await.unwrap();
        let same_key = SealedStore::new(raw, key(3));
        assert!(matches!(
            same_key.get(moved).await,
            Err(StoreError::Sealed { .. })
        ));
        assert_eq!(same_key.get(cert).await.unwrap().unwrap().value, b"secret");
    }

    mod conformance_cases {
        use super::*;

        fn nodes() -> impl Fn() -> Arc<dyn Store> + Send + Sync {
            let dir = TempDir::new();
            move || {
                let options = FileStoreOptions {
                    poll_interval: Duration::from_millis(100),
                    ..FileStoreOptions::default()
                };
                let raw: Arc<dyn Store> =
                    Arc::new(FileStore::open(dir.path().join("store"), options).unwrap());
                Arc::new(SealedStore::new(raw, key(9))) as Arc<dyn Store>
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn sealed_file_store_passes_the_suite() {
            crate::store::conformance::run_all(nodes()).await;
        }
    }
}
