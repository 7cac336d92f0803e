//! What wharf keeps in the [`Store`], serialized as JSON, and
//! the keys it lives under.
//!
//! | key | value |
//! |---|---|
//! | `certificates/<resolver>/<main>-<hash>` | [`CertificateEntry`] |
//! | `accounts/<directory host>/<email>` | [`AccountEntry`] |
//! | `challenges/http-01/<token>` | [`ChallengeEntry::Http01`] |
//! | `challenges/tls-alpn-01/<domain>` | [`ChallengeEntry::TlsAlpn01`] |
//!
//! `<main>` is the certificate's main domain made key-safe (`*.` becomes
//! `wildcard_.`) and `<hash>` the first 16 hex digits of the SHA-256 of the sorted,
//! comma-joined domain set, so each distinct set of names has its own entry. The
//! lock guarding an entry's issuance or registration has the entry's key as its name
//! ([`certificate_lock`], [`account_lock`]); backends keep lock names in a namespace
//! of their own (the file backend under `locks/`), apart from entries.
//!
//! Times are whole seconds since the Unix epoch (`i64`), UTC: compact, unambiguous
//! and what certificate validity and ARI windows reduce to anyway.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::{Expect, Store, StoreError};

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// The current time as [`UnixTime`].
pub fn unix_now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The names a certificate covers: the main domain (subject) and the other SANs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domains {
    /// The main domain.
    pub main: String,
    /// Further names, without the main one.
    #[serde(default)]
    pub sans: Vec<String>,
}

impl Domains {
    /// Normalized domains: lowercase, no trailing dot, SANs deduplicated and without
    /// the main domain, in their given order.
    pub fn new(main: &str, sans: &[&str]) -> Self {
        let norm = |d: &str| d.trim().trim_end_matches('.').to_ascii_lowercase();
        let main = norm(main);
        let mut out: Vec<String> = Vec::new();
        for san in sans.iter().map(|s| norm(s)) {
            if san != main && !out.contains(&san) {
                out.push(san);
            }
        }
        Self { main, sans: out }
    }

    /// Every name, main first.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.main.as_str()).chain(self.sans.iter().map(String::as_str))
    }

    /// Every name, sorted and deduplicated: the identity of the set.
    pub fn sorted(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.all().collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// A certificate managed for a resolver, and the state of its issuance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateEntry {
    /// The names it covers.
    pub domains: Domains,
    /// The ACME directory URL of the CA that issues it.
    pub directory_url: String,
    /// The current certificate; `None` until the first issuance succeeds.
    #[serde(default)]
    pub certificate: Option<IssuedCertificate>,
    /// When issuance or renewal was last attempted.
    #[serde(default)]
    pub last_attempt: Option<UnixTime>,
    /// The error of the last attempt, if it failed.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// An issued certificate and its key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCertificate {
    /// The certificate chain, leaf first, PEM.
    pub chain_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// Start of validity.
    pub not_before: UnixTime,
    /// End of validity.
    pub not_after: UnixTime,
    /// The ARI certificate identifier (RFC 9773: base64url AKI `.` serial), if known.
    #[serde(default)]
    pub ari_cert_id: Option<String>,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field(
                "chain_pem",
                &format_args!("<{} bytes>", self.chain_pem.len()),
            )
            .field("key_pem", &format_args!("<redacted>"))
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("ari_cert_id", &self.ari_cert_id)
            .finish()
    }
}

/// An ACME account, one per CA directory and email.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEntry {
    /// The ACME directory URL.
    pub directory_url: String,
    /// The contact email ("" for none).
    pub email: String,
    /// The ACME client's serialized credentials (account URL and key), kept opaque.
    pub credentials: serde_json::Value,
    /// When the account was registered.
    pub created: UnixTime,
}

impl std::fmt::Debug for AccountEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountEntry")
            .field("directory_url", &self.directory_url)
            .field("email", &self.email)
            .field("credentials", &format_args!("<redacted>"))
            .field("created", &self.created)
            .finish()
    }
}

/// A pending ACME challenge answer, readable by every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ChallengeEntry {
    /// Answer to `GET /.well-known/acme-challenge/<token>`.
    #[serde(rename = "http-01")]
    Http01 {
        /// The token from the request path.
        token: String,
        /// The response body.
        key_authorization: String,
        /// When the entry may be removed.
        expires: UnixTime,
    },
    /// Certificate to present for an `acme-tls/1` handshake naming `domain`.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01 {
        /// The domain being validated.
        domain: String,
        /// The self-signed challenge certificate, PEM.
        cert_pem: String,
        /// Its private key, PEM.
        key_pem: String,
        /// When the entry may be removed.
        expires: UnixTime,
    },
}

impl ChallengeEntry {
    /// When the entry may be removed.
    pub fn expires(&self) -> UnixTime {
        match self {
            ChallengeEntry::Http01 { expires, .. } | ChallengeEntry::TlsAlpn01 { expires, .. } => {
                *expires
            }
        }
    }

    /// Whether the entry is past its expiry at `now`.
    pub fn is_expired(&self, now: UnixTime) -> bool {
        now >= self.expires()
    }

    /// The key the entry is stored under.
    pub fn key(&self) -> Result<String, StoreError> {
        match self {
            ChallengeEntry::Http01 { token, .. } => http01_challenge_key(token),
            ChallengeEntry::TlsAlpn01 { domain, .. } => tls_alpn01_challenge_key(domain),
        }
    }
}

/// A record failed to load or save.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored JSON does not decode as the expected record.
    #[error("cannot decode the record at {key}")]
    Decode {
        /// The key.
        key: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The record does not encode as JSON.
    #[error("cannot encode the record for {key}")]
    Encode {
        /// The key.
        key: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads the JSON record at `key` and its version.
pub async fn load<T: DeserializeOwned>(
    store: &dyn Store,
    key: &str,
) -> Result<Option<(T, u64)>, ModelError> {
    let Some(entry) = store.get(key).await? else {
        return Ok(None);
    };
    let value = serde_json::from_slice(&entry.value).map_err(|source| ModelError::Decode {
        key: key.to_string(),
        source,
    })?;
    Ok(Some((value, entry.version)))
}

/// Writes `value` as JSON at `key` if `expect` holds; returns the new version.
pub async fn save<T: Serialize>(
    store: &dyn Store,
    key: &str,
    value: &T,
    expect: Expect,
) -> Result<u64, ModelError> {
    let bytes = serde_json::to_vec(value).map_err(|source| ModelError::Encode {
        key: key.to_string(),
        source,
    })?;
    Ok(store.put(key, bytes, expect).await?)
}

mod keys;

pub use keys::{
    account_key, account_lock, certificate_key, certificate_lock, certificate_prefix,
    http01_challenge_key, tls_alpn01_challenge_key, ACCOUNTS, CERTIFICATES, HTTP01_CHALLENGES,
    TLS_ALPN01_CHALLENGES,
};

#[cfg(test)]
mod tests;
