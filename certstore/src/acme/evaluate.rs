//! Deciding, for one domain set, whether to order now, and when to look again.

use std::sync::Arc;
use std::time::Duration;

use super::counters::AcmeCounters;
use super::issue::{Issuer, Outcome};
use super::schedule::{ari_recheck, renewal_time, AriWindow, Validity};
use super::AcmeError;
use crate::model::{self, CertificateEntry, Domains, IssuedCertificate, UnixTime};
use crate::store::LockError;

/// When to look again after another instance held the lock.
const BUSY_RECHECK: i64 = 10;

/// When to look again after the store could not be read.
const STORE_RECHECK: i64 = 30;

/// When to fetch ARI again after it failed.
const ARI_ERROR_RECHECK: i64 = 3600;

/// The fewest seconds between two issuances of one set by this instance.
const MIN_REISSUE: i64 = 60;

/// The CA's renewal window for one certificate, and when to ask again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AriState {
    /// The suggested window, or `None` when the CA has none for it.
    pub window: Option<AriWindow>,
    /// When to fetch it again.
    pub refetch_at: UnixTime,
    /// The certificate (its `not_after`) it was fetched for.
    pub for_not_after: UnixTime,
}

/// The scheduler's memory of one domain set.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Resolver name.
    pub resolver: String,
    /// The names.
    pub domains: Domains,
    /// Routers that need it.
    pub routers: Vec<String>,
    /// Consecutive failures of this instance.
    pub failures: u32,
    /// When to evaluate next.
    pub next_check: UnixTime,
    /// An evaluation is in flight.
    pub running: bool,
    /// When the current certificate is due for renewal.
    pub renew_at: Option<UnixTime>,
    /// The last ARI answer.
    pub ari: Option<AriState>,
    /// Fixed random sample: where in the renewal window this instance renews.
    pub random: f64,
    /// Why the set can never be issued (no such resolver, wildcard).
    pub blocked: Option<String>,
}

impl Slot {
    /// A slot due for evaluation now.
    pub fn new(resolver: &str, domains: Domains) -> Self {
        Self {
            resolver: resolver.to_string(),
            domains,
            routers: Vec::new(),
            failures: 0,
            next_check: 0,
            running: false,
            renew_at: None,
            ari: None,
            random: rand::random::<f64>(),
            blocked: None,
        }
    }

    /// Takes an evaluation's result.
    pub fn apply(&mut self, report: SlotReport) {
        self.running = false;
        self.failures = report.failures;
        self.next_check = report.next_check;
        self.renew_at = report.renew_at;
        self.ari = report.ari;
    }
}

/// What an evaluation found.
#[derive(Debug, Clone)]
pub struct SlotReport {
    /// The slot's store key.
    pub key: String,
    /// Consecutive failures now.
    pub failures: u32,
    /// When to evaluate next.
    pub next_check: UnixTime,
    /// When the current certificate is due.
    pub renew_at: Option<UnixTime>,
    /// ARI state.
    pub ari: Option<AriState>,
}

/// Looks at the stored certificate of `key` and orders one if it is missing or due.
pub async fn evaluate(
    issuer: Arc<Issuer>,
    key: String,
    slot: Slot,
    counters: &AcmeCounters,
) -> SlotReport {
    let now = model::unix_now();
    let mut report = SlotReport {
        key: key.clone(),
        failures: slot.failures,
        next_check: now + STORE_RECHECK,
        renew_at: slot.renew_at,
        ari: slot.ari,
    };
    let entry = match model::load::<CertificateEntry>(issuer.store().as_ref(), &key).await {
        Ok(e) => e.map(|(e, _)| e),
        Err(e) => {
            counters.store_error();
            tracing::warn!(key = %key, error = %e, "cannot read the certificate entry");
            return report;
        }
    };
    let backoff = issuer.settings().backoff;
    if let Some(e) = entry.as_ref().filter(|e| e.last_error.is_some()) {
        // Someone's last attempt failed (maybe another instance's): wait out the backoff.
        let earliest = e.last_attempt.unwrap_or(0) + secs(backoff.delay(slot.failures.max(1)));
        if now < earliest {
            report.next_check = earliest;
            return report;
        }
    }
    // A certificate from another CA (the resolver's caServer changed, e.g. from
    // staging to production) is replaced now.
    let other_ca = entry.as_ref().is_some_and(|e| {
        !e.directory_url.is_empty() && e.directory_url != issuer.settings().directory_url
    });
    let current = entry.and_then(|e| e.certificate);
    if let (Some(cert), false) = (&current, other_ca) {
        let validity = Validity {
            not_before: cert.not_before,
            not_after: cert.not_after,
        };
        let ari = ari_state(&issuer, cert, slot.ari, now).await;
        let renew_at = renewal_time(validity, ari.window, now, slot.random);
        report.ari = Some(ari);
        report.renew_at = Some(renew_at);
        if now < renew_at {
            report.next_check = renew_at.min(ari.refetch_at);
            return report;
        }
        tracing::info!(key = %key, not_after = cert.not_after, "certificate due for renewal");
    } else if other_ca && current.is_some() {
        tracing::info!(key = %key, "stored certificate comes from another CA; replacing it");
    }
    let started = std::time::Instant::now();
    counters.order(current.is_some());
    match issuer
        .obtain(&slot.domains, current.as_ref(), Duration::ZERO)
        .await
    {
        Ok(outcome) => {
            let (Outcome::Issued(entry) | Outcome::Current(entry)) = &outcome;
            if matches!(outcome, Outcome::Issued(_)) {
                counters.issued();
                tracing::info!(key = %key, seconds = started.elapsed().as_secs_f64(), "issuance finished");
            }
            report.failures = 0;
            report.ari = None;
            report.renew_at = entry.certificate.as_ref().map(|c| {
                let validity = Validity {
                    not_before: c.not_before,
                    not_after: c.not_after,
                };
                renewal_time(validity, None, now, slot.random)
            });
            report.next_check = report.renew_at.unwrap_or(now).max(now + MIN_REISSUE);
        }
        Err(AcmeError::Lock(LockError::Busy { .. })) => {
            tracing::debug!(key = %key, "another instance is issuing this certificate");
            report.next_check = now + BUSY_RECHECK;
        }
        Err(e) => {
            counters.failure();
            report.failures = slot.failures.saturating_add(1);
            let delay = backoff.delay(report.failures);
            report.next_check = now + secs(delay);
            tracing::error!(
                key = %key,
                failures = report.failures,
                retry_in_s = delay.as_secs(),
                error = %e.detail(),
                "certificate issuance failed"
            );
        }
    }
    report
}

/// The ARI state for `cert`: the remembered one while fresh, else fetched.
async fn ari_state(
    issuer: &Issuer,
    cert: &IssuedCertificate,
    known: Option<AriState>,
    now: UnixTime,
) -> AriState {
    if let Some(known) = known.filter(|a| a.for_not_after == cert.not_after && a.refetch_at > now) {
        return known;
    }
    let (window, refetch_in) = match issuer.renewal_window(cert).await {
        Ok(Some((window, retry_after))) => (Some(window), secs(ari_recheck(retry_after))),
        Ok(None) => (None, i64::MAX / 4),
        Err(e) => {
            tracing::warn!(error = %e.detail(), "cannot fetch renewal information; using the default window");
            (None, ARI_ERROR_RECHECK)
        }
    };
    AriState {
        window,
        refetch_at: now.saturating_add(refetch_in),
        for_not_after: cert.not_after,
    }
}

fn secs(d: Duration) -> i64 {
    d.as_secs().min(i64::MAX as u64 / 4) as i64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::acme::{Backoff, ChallengeKind, KeyType, ResolverSettings, StoreChallenges};
    use crate::store::{Expect, FileStore, FileStoreOptions, Store};
    use crate::testutil::TempDir;

    const DAY: i64 = 86_400;

    /// An issuer whose CA is never reached by these tests (nothing is due).
    fn issuer(dir: &TempDir) -> Arc<Issuer> {
        let store: Arc<dyn Store> =
            Arc::new(FileStore::open(dir.path(), FileStoreOptions::default()).unwrap());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let challenges = Arc::new(StoreChallenges::new(store.clone(), provider));
        let settings = ResolverSettings {
            name: "le".into(),
            email: String::new(),
            directory_url: "https://127.0.0.1:9/dir".into(),
            challenge: ChallengeKind::Http01,
            eab: None,
            key_type: KeyType::Ec256,
            ca_certificates: Vec::new(),
            system_roots: false,
            profile: None,
            backoff: Backoff {
                initial: Duration::from_secs(60),
                max: Duration::from_secs(600),
            },
        };
        Arc::new(Issuer::new(store, settings, challenges).unwrap())
    }

    async fn put(issuer: &Issuer, entry: &CertificateEntry) -> String {
        let key = model::certificate_key("le", &entry.domains).unwrap();
        model::save(issuer.store().as_ref(), &key, entry, Expect::Any)
            .await
            .unwrap();
        key
    }

    fn entry(
        cert: Option<(i64, i64)>,
        last_error: Option<&str>,
        last_attempt: Option<i64>,
    ) -> CertificateEntry {
        CertificateEntry {
            domains: Domains::new("a.test", &[]),
            directory_url: "https://127.0.0.1:9/dir".into(),
            certificate: cert.map(|(not_before, not_after)| IssuedCertificate {
                chain_pem: "unused".into(),
                key_pem: "unused".into(),
                not_before,
                not_after,
                ari_cert_id: None,
            }),
            last_attempt,
            last_error: last_error.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn a_valid_certificate_is_left_alone_until_a_third_of_its_life_remains() {
        let dir = TempDir::new();
        let issuer = issuer(&dir);
        let now = model::unix_now();
        let key = put(
            &issuer,
            &entry(Some((now - DAY, now + 89 * DAY)), None, None),
        )
        .await;
        let mut slot = Slot::new("le", Domains::new("a.test", &[]));
        slot.random = 0.0;
        let report = evaluate(issuer, key, slot, &AcmeCounters::default()).await;
        assert_eq!(report.renew_at, Some(now + 89 * DAY - 30 * DAY));
        assert_eq!(report.next_check, now + 59 * DAY);
        assert_eq!(report.failures, 0);
        assert_eq!(report.ari.and_then(|a| a.window), None);
    }

    #[tokio::test]
    async fn a_recent_failure_recorded_by_any_instance_is_waited_out() {
        let dir = TempDir::new();
        let issuer = issuer(&dir);
        let now = model::unix_now();
        let key = put(&issuer, &entry(None, Some("CA said no"), Some(now - 10))).await;
        let mut slot = Slot::new("le", Domains::new("a.test", &[]));
        // This instance has not failed yet: the first backoff step applies.
        let report = evaluate(
            issuer.clone(),
            key.clone(),
            slot.clone(),
            &AcmeCounters::default(),
        )
        .await;
        assert_eq!(report.next_check, now - 10 + 60);
        // After three local failures: 60 s doubled twice.
        slot.failures = 3;
        let report = evaluate(issuer, key, slot, &AcmeCounters::default()).await;
        assert_eq!(report.next_check, now - 10 + 240);
        assert_eq!(report.failures, 3);
    }
}
