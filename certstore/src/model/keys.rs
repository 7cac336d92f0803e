//! Where each record lives in the store.

use super::Domains;
use crate::store::{is_key_char, validate_key, StoreError};

/// Prefix of certificate entries.
pub const CERTIFICATES: &str = "certificates";
/// Prefix of account entries.
pub const ACCOUNTS: &str = "accounts";
/// Prefix of HTTP-01 challenge entries.
pub const HTTP01_CHALLENGES: &str = "challenges/http-01";
/// Prefix of TLS-ALPN-01 challenge entries.
pub const TLS_ALPN01_CHALLENGES: &str = "challenges/tls-alpn-01";

/// The longest part of a segment taken from a name, leaving room for suffixes.
const MAX_NAME_PART: usize = 100;

fn invalid(key: &str, reason: &'static str) -> StoreError {
    StoreError::InvalidKey {
        key: key.to_string(),
        reason,
    }
}

/// `name` as one key segment: characters outside the key charset become `_`, a
/// leading `.` gets a `_` before it, and it is cut to a safe length. Distinct names
/// may map to one segment; callers that need uniqueness add a hash.
fn segment(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if is_key_char(c) { c } else { '_' })
        .take(MAX_NAME_PART)
        .collect();
    if s.starts_with('.') || s.is_empty() {
        s.insert(0, '_');
    }
    s
}

/// A resolver name must already be a single valid segment.
fn resolver_segment(resolver: &str) -> Result<&str, StoreError> {
    if resolver.contains('/') {
        return Err(invalid(resolver, "resolver name contains '/'"));
    }
    validate_key(resolver)?;
    Ok(resolver)
}

/// `certificates/<resolver>`: the prefix of every certificate of `resolver`.
pub fn certificate_prefix(resolver: &str) -> Result<String, StoreError> {
    Ok(format!("{CERTIFICATES}/{}", resolver_segment(resolver)?))
}

/// `certificates/<resolver>/<main>-<hash>`: where the certificate for `domains`
/// issued through `resolver` lives. The same set of names in any order gives the same
/// key.
pub fn certificate_key(resolver: &str, domains: &Domains) -> Result<String, StoreError> {
    let mut names: Vec<String> = domains
        .all()
        .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .collect();
    names.sort_unstable();
    names.dedup();
    let sorted = names.join(",");
    let digest = ring::digest::digest(&ring::digest::SHA256, sorted.as_bytes());
    let hash: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let main = domains.main.trim_end_matches('.').to_ascii_lowercase();
    let main = match main.strip_prefix("*.") {
        Some(rest) => format!("wildcard_.{rest}"),
        None => main,
    };
    let key = format!(
        "{}/{}-{hash}",
        certificate_prefix(resolver)?,
        segment(&main)
    );
    validate_key(&key)?;
    Ok(key)
}

/// The name of the lock held while issuing or renewing the certificate for
/// `domains` (the certificate's key).
pub fn certificate_lock(resolver: &str, domains: &Domains) -> Result<String, StoreError> {
    certificate_key(resolver, domains)
}

/// The host (and port) of a directory URL, as a key segment.
fn directory_host(directory_url: &str) -> Result<String, StoreError> {
    let rest = directory_url
        .split_once("://")
        .map_or(directory_url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() {
        return Err(invalid(directory_url, "directory URL without a host"));
    }
    Ok(segment(&host.to_ascii_lowercase().replace(':', "_")))
}

/// `accounts/<directory host>/<email>`: where the account for `email` at the CA
/// `directory_url` lives (`no-email` when the email is empty).
pub fn account_key(directory_url: &str, email: &str) -> Result<String, StoreError> {
    let email = email.trim().to_ascii_lowercase();
    let email = if email.is_empty() {
        "no-email".to_string()
    } else {
        segment(&email)
    };
    let key = format!("{ACCOUNTS}/{}/{email}", directory_host(directory_url)?);
    validate_key(&key)?;
    Ok(key)
}

/// The name of the lock held while registering the account (the account's key).
pub fn account_lock(directory_url: &str, email: &str) -> Result<String, StoreError> {
    account_key(directory_url, email)
}

/// `challenges/http-01/<token>`. The token comes from a request path, so anything
/// but a base64url token (RFC 8555 §8.3) is refused.
pub fn http01_challenge_key(token: &str) -> Result<String, StoreError> {
    let ok = !token.is_empty()
        && token.len() <= 128
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(invalid(token, "not a base64url ACME token"));
    }
    Ok(format!("{HTTP01_CHALLENGES}/{token}"))
}

/// `challenges/tls-alpn-01/<domain>` for a DNS name (lowercased, without trailing
/// dot). The name comes from a client's SNI, so anything but letters, digits, `-`
/// and `.` is refused.
pub fn tls_alpn01_challenge_key(domain: &str) -> Result<String, StoreError> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        return Err(invalid(&domain, "not a DNS name"));
    }
    let key = format!("{TLS_ALPN01_CHALLENGES}/{domain}");
    validate_key(&key)?;
    Ok(key)
}
