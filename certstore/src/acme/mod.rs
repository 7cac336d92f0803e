//! ACME issuance and renewal shared by every wharf instance through the [`Store`].
//!
//! The design follows certmagic's cluster mode:
//!
//! * **Account**: one per CA directory and email, kept in the store; registered once,
//!   under the account's lock, by whichever instance gets there first ([`account`]).
//! * **Issuance** of one domain set ([`Issuer::obtain`]): take the set's lock, re-read
//!   the store (another instance may have finished meanwhile), order, write each
//!   challenge answer to the store *before* telling the CA it is ready, finalize with
//!   our own CSR, store chain, key and metadata, delete the challenge entries, release
//!   the lock. A lock that cannot be had is never treated as held.
//! * **Answers**: the listener asks [`StoreChallenges`], which looks in this
//!   instance's memory and then in the store, so any instance can answer the CA.
//! * **Renewal and publishing** ([`Manager`]): every instance watches the store's
//!   certificates and publishes them to its TLS resolver; renewal happens when a third
//!   of the lifetime remains or inside the CA's ARI window ([`schedule`]); failures back
//!   off exponentially per domain set.
//!
//! [`Store`]: crate::store::Store

pub mod account;
pub mod client;
pub mod counters;
mod evaluate;
pub mod issue;
pub mod keys;
pub mod manager;
pub mod publish;
pub mod schedule;
pub mod solver;
pub mod status;

use std::time::Duration;

pub use counters::{AcmeCounters, AcmeCounts};
pub use issue::{Issuer, Outcome};
pub use keys::KeyType;
pub use manager::{DesiredCertificates, Manager, StatusBoard, Wanted};
pub use schedule::Backoff;
pub use solver::StoreChallenges;
pub use status::CertificateStatus;

use crate::model::ModelError;
use crate::store::{LockError, StoreError};

/// Which challenge the CA is asked to validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// HTTP-01: `GET /.well-known/acme-challenge/<token>` on port 80.
    Http01,
    /// TLS-ALPN-01: a handshake with ALPN `acme-tls/1` on port 443.
    TlsAlpn01,
}

impl ChallengeKind {
    /// The RFC 8555 name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Http01 => "http-01",
            ChallengeKind::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

/// External account binding credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalAccount {
    /// Key identifier.
    pub kid: String,
    /// The decoded HMAC key.
    pub hmac_key: Vec<u8>,
}

impl std::fmt::Debug for ExternalAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalAccount")
            .field("kid", &self.kid)
            .field("hmac_key", &"<redacted>")
            .finish()
    }
}

/// One certificate resolver (`certificatesResolvers.<name>.acme`), resolved into what
/// the issuer needs.
#[derive(Debug, Clone)]
pub struct ResolverSettings {
    /// The resolver's name: routers refer to it, and its certificates are stored under it.
    pub name: String,
    /// Account contact email ("" for none).
    pub email: String,
    /// The CA's directory URL.
    pub directory_url: String,
    /// The challenge to answer.
    pub challenge: ChallengeKind,
    /// External account binding, when the CA requires it.
    pub eab: Option<ExternalAccount>,
    /// Key type of certificate keys.
    pub key_type: KeyType,
    /// Extra trusted roots (PEM) for the connection to the CA.
    pub ca_certificates: Vec<Vec<u8>>,
    /// Also trust the system's roots for the connection to the CA.
    pub system_roots: bool,
    /// ACME profile to request, if any.
    pub profile: Option<String>,
    /// Retry policy after failed issuance.
    pub backoff: Backoff,
}

/// Lease of a certificate's issuance lock; renewed in the background while held.
pub const ISSUE_LOCK_TTL: Duration = Duration::from_secs(60);

/// How long one ACME request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why issuance, registration or renewal failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record could not be read or written.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The lock could not be acquired.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The lock was lost while working; the work was abandoned.
    #[error("lost the lock {0} while working; another instance may take over")]
    LockLost(String),
    /// The CA or the connection to it failed.
    #[error("{context}: {source}")]
    Acme {
        /// What was being done.
        context: &'static str,
        /// instant-acme's error, with the CA's problem detail.
        #[source]
        source: instant_acme::Error,
    },
    /// The CA refused to validate or issue.
    #[error("the CA rejected the order: {0}")]
    Rejected(String),
    /// The CA offers none of the configured challenge types.
    #[error("the CA offers no {wanted} challenge for {domain}")]
    NoChallenge {
        /// The domain.
        domain: String,
        /// The configured challenge.
        wanted: &'static str,
    },
    /// A key or certificate could not be generated.
    #[error("cannot generate a key or certificate")]
    Key(#[source] rcgen::Error),
    /// An RSA key could not be generated.
    #[error("cannot generate an RSA key: {0}")]
    RsaKey(String),
    /// The issued certificate is unusable.
    #[error("unusable certificate: {0}")]
    Certificate(String),
    /// The TLS client for the CA could not be set up.
    #[error("TLS client setup: {0}")]
    Tls(String),
    /// The stored account credentials do not decode.
    #[error("stored account credentials do not decode")]
    Credentials(#[source] serde_json::Error),
    /// The settings are invalid.
    #[error("{0}")]
    Config(String),
}

impl AcmeError {
    /// Wraps an instant-acme error with what was being done.
    pub fn acme(context: &'static str) -> impl FnOnce(instant_acme::Error) -> AcmeError {
        move |source| AcmeError::Acme { context, source }
    }

    /// The full message, causes included, for logs, the store's `last_error` and the API.
    pub fn detail(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            let next = s.to_string();
            if !text.contains(&next) {
                text.push_str(": ");
                text.push_str(&next);
            }
            source = s.source();
        }
        text
    }
}
