//! What the admin API and `wharf certs` show about managed certificates.

use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::keys;
use crate::model::{CertificateEntry, UnixTime};

/// One managed certificate as operators see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    /// The certificate resolver that manages it.
    pub resolver: String,
    /// Its key in the store.
    pub key: String,
    /// The main domain.
    pub main: String,
    /// Every name it covers, main first.
    pub domains: Vec<String>,
    /// `valid`, `pending` (not issued yet), `expired` or `error` (not issued, last
    /// attempt failed).
    pub status: &'static str,
    /// The issuer's distinguished name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Start of validity (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// End of validity (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// When this instance plans to renew it (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renew_at: Option<String>,
    /// When issuance was last attempted (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<String>,
    /// The last attempt's error, with the CA's detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Routers that need it (`name@provider`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routers: Vec<String>,
}

/// A Unix time as RFC 3339 (UTC, seconds).
pub fn rfc3339(t: UnixTime) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

impl CertificateStatus {
    /// The status of a stored entry at `now`.
    pub fn from_entry(resolver: &str, key: &str, entry: &CertificateEntry, now: UnixTime) -> Self {
        let cert = entry.certificate.as_ref();
        let status = match cert {
            Some(c) if c.not_after > now => "valid",
            Some(_) => "expired",
            None if entry.last_error.is_some() => "error",
            None => "pending",
        };
        Self {
            resolver: resolver.to_string(),
            key: key.to_string(),
            main: entry.domains.main.clone(),
            domains: entry.domains.all().map(str::to_string).collect(),
            status,
            issuer: cert.and_then(|c| keys::chain_info(&c.chain_pem).ok().map(|i| i.issuer)),
            not_before: cert.map(|c| rfc3339(c.not_before)),
            not_after: cert.map(|c| rfc3339(c.not_after)),
            renew_at: None,
            last_attempt: entry.last_attempt.map(rfc3339),
            last_error: entry.last_error.clone(),
            routers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Domains;

    #[test]
    fn times_are_rfc3339_and_states_follow_the_entry() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        let mut entry = CertificateEntry {
            domains: Domains::new("a.test", &["b.test"]),
            directory_url: "https://ca/dir".into(),
            certificate: None,
            last_attempt: Some(86_400),
            last_error: None,
        };
        let s = CertificateStatus::from_entry("le", "certificates/le/a", &entry, 100);
        assert_eq!(s.status, "pending");
        assert_eq!(s.domains, vec!["a.test", "b.test"]);
        assert_eq!(s.last_attempt.as_deref(), Some("1970-01-02T00:00:00Z"));
        entry.last_error = Some("boom".into());
        let s = CertificateStatus::from_entry("le", "k", &entry, 100);
        assert_eq!(s.status, "error");
    }
}
