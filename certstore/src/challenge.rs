//! Where the listener finds ACME challenge answers: HTTP-01 key authorizations and
//! TLS-ALPN-01 certificates. The issuer writes them to the store before telling the
//! CA the challenge is ready, so any instance sharing the store can answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rustls::sign::CertifiedKey;

/// A boxed future, as the listener awaits it.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Answers to pending ACME challenges.
pub trait ChallengeSource: Send + Sync + 'static {
    /// The key authorization to serve at `/.well-known/acme-challenge/<token>`.
    fn http01<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<String>>;
    /// The certificate to present for `domain` on an `acme-tls/1` handshake.
    fn tls_alpn01<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Option<Arc<CertifiedKey>>>;
}
