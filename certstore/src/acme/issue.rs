//! Ordering one certificate under its cluster-wide lock.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, Order, OrderStatus,
    RetryPolicy,
};
use tokio::sync::Mutex;

use super::keys::{self, parse_ari_cert_id};
use super::schedule::AriWindow;
use super::solver::StoreChallenges;
use super::ISSUE_LOCK_TTL;
use super::{account, client::AcmeHttp, AcmeError, ChallengeKind, ResolverSettings};
use crate::model::{self, CertificateEntry, ChallengeEntry, Domains, IssuedCertificate};
use crate::store::{Expect, Lock, Store};

/// How long a challenge entry stays answerable.
const CHALLENGE_TTL: i64 = 3600;

/// How long to wait for the CA to validate, then to issue.
fn retry_policy() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(Duration::from_secs(120))
}

/// What [`Issuer::obtain`] ended with.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A new certificate was issued and stored.
    Issued(Box<CertificateEntry>),
    /// Another instance replaced the certificate meanwhile; nothing was ordered.
    Current(Box<CertificateEntry>),
}

/// Issues certificates of one resolver.
pub struct Issuer {
    store: Arc<dyn Store>,
    settings: Arc<ResolverSettings>,
    http: AcmeHttp,
    /// The account, once restored or registered.
    account: Mutex<Option<Account>>,
    challenges: Arc<StoreChallenges>,
}

impl Issuer {
    /// An issuer for `settings`, presenting challenges through `challenges`.
    pub fn new(
        store: Arc<dyn Store>,
        settings: ResolverSettings,
        challenges: Arc<StoreChallenges>,
    ) -> Result<Self, AcmeError> {
        let http = AcmeHttp::new(&settings.ca_certificates, settings.system_roots)?;
        Ok(Self {
            store,
            settings: Arc::new(settings),
            http,
            account: Mutex::new(None),
            challenges,
        })
    }

    /// The resolver's settings.
    pub fn settings(&self) -> &ResolverSettings {
        &self.settings
    }

    /// The store it works on.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    async fn account(&self) -> Result<Account, AcmeError> {
        let mut cached = self.account.lock().await;
        if let Some(account) = cached.as_ref() {
            return Ok(account.clone());
        }
        let account = account::account(&self.store, &self.settings, &self.http).await?;
        *cached = Some(account.clone());
        Ok(account)
    }

    /// Forgets `account` when the CA no longer knows it (a CA that lost its data,
    /// a deactivated account): the next attempt registers a new one.
    async fn forget_account_if_unknown(&self, account: &Account, error: &AcmeError) {
        let AcmeError::Acme {
            source: instant_acme::Error::Api(problem),
            ..
        } = error
        else {
            return;
        };
        if problem.r#type.as_deref() != Some("urn:ietf:params:acme:error:accountDoesNotExist") {
            return;
        }
        tracing::warn!(resolver = %self.settings.name, account = account.id(), "the CA does not know the stored account; a new one will be registered");
        *self.account.lock().await = None;
        if let Err(e) = account::forget(self.store.as_ref(), &self.settings, account.id()).await {
            tracing::warn!(error = %e.detail(), "cannot remove the stale account from the store");
        }
    }

    /// Obtains a certificate for `domains`, replacing `seen` (the certificate the
    /// caller saw when it decided to act, `None` for a first issuance).
    ///
    /// Takes the set's lock (waiting at most `wait`), then re-reads the store: if the
    /// certificate there is no longer `seen` and is still valid, another instance
    /// did the work and nothing is ordered. Otherwise orders, stores the result
    /// (or the error, as `last_error`) and releases the lock.
    pub async fn obtain(
        &self,
        domains: &Domains,
        seen: Option<&IssuedCertificate>,
        wait: Duration,
    ) -> Result<Outcome, AcmeError> {
        let name = &self.settings.name;
        let key = model::certificate_key(name, domains)?;
        let lock = self.store.lock(&key, ISSUE_LOCK_TTL, wait).await?;
        let result = self.obtain_locked(&key, domains, seen, &lock).await;
        let lock_name = lock.name().to_string();
        if let Err(e) = lock.release().await {
            tracing::warn!(lock = %lock_name, error = %e, "cannot release lock; it expires after its TTL");
        }
        result
    }

    async fn obtain_locked(
        &self,
        key: &str,
        domains: &Domains,
        seen: Option<&IssuedCertificate>,
        lock: &Lock,
    ) -> Result<Outcome, AcmeError> {
        let now = model::unix_now();
        let stored = model::load::<CertificateEntry>(self.store.as_ref(), key).await?;
        if let Some((entry, _)) = &stored {
            if let Some(current) = &entry.certificate {
                let replaced = seen.is_none_or(|s| s.chain_pem != current.chain_pem);
                if replaced && current.not_after > now {
                    return Ok(Outcome::Current(Box::new(entry.clone())));
                }
            }
        }
        let expect = match &stored {
            Some((_, version)) => Expect::Version(*version),
            None => Expect::Absent,
        };
        let previous = stored
            .map(|(entry, _)| entry)
            .unwrap_or_else(|| CertificateEntry {
                domains: domains.clone(),
                directory_url: self.settings.directory_url.clone(),
                certificate: None,
                last_attempt: None,
                last_error: None,
            });
        let replaces = previous
            .certificate
            .as_ref()
            .and_then(|c| c.ari_cert_id.clone());

        let mut presented = Vec::new();
        let started = std::time::Instant::now();
        let result = tokio::select! {
            r = self.order(domains, replaces.as_deref(), &mut presented) => r,
            _ = lock.lost() => Err(AcmeError::LockLost(key.to_string())),
        };
        for entry in &presented {
            if let Err(e) = self.challenges.clean_up(entry).await {
                tracing::warn!(error = %e, "cannot delete a challenge entry; it expires by itself");
            }
        }
        let mut entry = previous;
        entry.last_attempt = Some(now);
        match result {
            Ok(issued) => {
                entry.certificate = Some(issued);
                entry.last_error = None;
                entry.directory_url = self.settings.directory_url.clone();
                if lock.is_lost() {
                    return Err(AcmeError::LockLost(key.to_string()));
                }
                model::save(self.store.as_ref(), key, &entry, expect).await?;
                tracing::info!(
                    resolver = %self.settings.name,
                    domains = %domains.all().collect::<Vec<_>>().join(","),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "certificate issued and stored"
                );
                Ok(Outcome::Issued(Box::new(entry)))
            }
            Err(e) => {
                entry.last_error = Some(e.detail());
                if !matches!(e, AcmeError::LockLost(_)) {
                    if let Err(save) = model::save(self.store.as_ref(), key, &entry, expect).await {
                        tracing::warn!(error = %save, "cannot record the failed attempt in the store");
                    }
                }
                Err(e)
            }
        }
    }

    /// The ACME exchange itself: order, challenges, finalize, download.
    async fn order(
        &self,
        domains: &Domains,
        replaces: Option<&str>,
        presented: &mut Vec<ChallengeEntry>,
    ) -> Result<IssuedCertificate, AcmeError> {
        let account = self.account().await?;
        let result = self
            .order_with(&account, domains, replaces, presented)
            .await;
        if let Err(e) = &result {
            self.forget_account_if_unknown(&account, e).await;
        }
        result
    }

    async fn order_with(
        &self,
        account: &Account,
        domains: &Domains,
        replaces: Option<&str>,
        presented: &mut Vec<ChallengeEntry>,
    ) -> Result<IssuedCertificate, AcmeError> {
        let names: Vec<String> = domains.all().map(str::to_string).collect();
        let identifiers: Vec<Identifier> =
            names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let mut order = self.new_order(account, &identifiers, replaces).await?;

        let kind = self.settings.challenge;
        let wanted = match kind {
            ChallengeKind::Http01 => ChallengeType::Http01,
            ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
        };
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(AcmeError::acme("fetching an authorization"))?;
            let domain = authz.identifier().to_string();
            match authz.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                other => {
                    return Err(AcmeError::Rejected(format!(
                        "authorization for {domain} is {other:?}"
                    )))
                }
            }
            let mut challenge =
                authz
                    .challenge(wanted.clone())
                    .ok_or_else(|| AcmeError::NoChallenge {
                        domain: domain.clone(),
                        wanted: kind.as_str(),
                    })?;
            let key_authorization = challenge.key_authorization();
            let expires = model::unix_now() + CHALLENGE_TTL;
            let entry = match kind {
                ChallengeKind::Http01 => ChallengeEntry::Http01 {
                    token: challenge.token.clone(),
                    key_authorization: key_authorization.as_str().to_string(),
                    expires,
                },
                ChallengeKind::TlsAlpn01 => {
                    let (cert_pem, key_pem) =
                        keys::tls_alpn01_certificate(&domain, key_authorization.digest().as_ref())?;
                    ChallengeEntry::TlsAlpn01 {
                        domain: domain.clone(),
                        cert_pem,
                        key_pem,
                        expires,
                    }
                }
            };
            // Stored first, so whichever instance the CA reaches can answer.
            self.challenges.present(&entry).await?;
            presented.push(entry);
            challenge
                .set_ready()
                .await
                .map_err(AcmeError::acme("marking the challenge ready"))?;
        }

        let status = order
            .poll_ready(&retry_policy())
            .await
            .map_err(AcmeError::acme("waiting for validation"))?;
        if status != OrderStatus::Ready {
            return Err(AcmeError::Rejected(invalid_detail(&mut order).await));
        }
        let (key, csr) = keys::key_and_csr(self.settings.key_type, &names).await?;
        order
            .finalize_csr(&csr)
            .await
            .map_err(AcmeError::acme("finalizing the order"))?;
        let chain_pem = order
            .poll_certificate(&retry_policy())
            .await
            .map_err(AcmeError::acme("downloading the certificate"))?;
        let info = keys::chain_info(&chain_pem)?;
        Ok(IssuedCertificate {
            chain_pem,
            key_pem: key.serialize_pem(),
            not_before: info.validity.not_before,
            not_after: info.validity.not_after,
            ari_cert_id: info.ari_cert_id,
        })
    }

    /// A new order, replacing `replaces` (an ARI certificate id) when the CA
    /// supports ARI; without ARI the order is placed without it.
    async fn new_order(
        &self,
        account: &Account,
        identifiers: &[Identifier],
        replaces: Option<&str>,
    ) -> Result<Order, AcmeError> {
        let base = || {
            let order = NewOrder::new(identifiers);
            match &self.settings.profile {
                Some(p) => order.profile(p),
                None => order,
            }
        };
        if let Some(id) = replaces.and_then(parse_ari_cert_id) {
            match account.new_order(&base().replaces(id)).await {
                Err(instant_acme::Error::Unsupported(_)) => {}
                other => return other.map_err(AcmeError::acme("creating the order")),
            }
        }
        account
            .new_order(&base())
            .await
            .map_err(AcmeError::acme("creating the order"))
    }

    /// The CA's suggested renewal window for `cert` and when to ask again, or
    /// `None` when the CA has no ARI.
    pub async fn renewal_window(
        &self,
        cert: &IssuedCertificate,
    ) -> Result<Option<(AriWindow, Duration)>, AcmeError> {
        let Some(id) = cert.ari_cert_id.as_deref().and_then(parse_ari_cert_id) else {
            return Ok(None);
        };
        let account = self.account().await?;
        match account.renewal_info(&id).await {
            Ok((info, retry_after)) => Ok(Some((
                AriWindow {
                    start: info.suggested_window.start.unix_timestamp(),
                    end: info.suggested_window.end.unix_timestamp(),
                },
                retry_after,
            ))),
            Err(instant_acme::Error::Unsupported(_)) => Ok(None),
            Err(e) => Err(AcmeError::acme("fetching renewal information")(e)),
        }
    }
}

/// The CA's reasons for an invalid order: the order's error, else each failed
/// challenge's.
async fn invalid_detail(order: &mut Order) -> String {
    if let Some(problem) = &order.state().error {
        return problem.to_string();
    }
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        if authz.refresh().await.is_err() {
            continue;
        }
        let domain = authz.identifier().to_string();
        for challenge in &authz.challenges {
            if let Some(problem) = &challenge.error {
                reasons.push(format!("{domain}: {problem}"));
            }
        }
    }
    if reasons.is_empty() {
        "the order became invalid".into()
    } else {
        reasons.join("; ")
    }
}
