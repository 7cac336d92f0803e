//! The ACME loop of one wharf instance: publishes what the store holds, and keeps
//! every certificate the routers need issued and renewed.
//!
//! One task owns the state. It wakes on store changes (it republishes), on new router
//! configurations (it adds or drops domain sets), when a domain set's next check is
//! due (it spawns an evaluation), and when an evaluation reports back. Nothing here is
//! on the request path: the listener only reads the resolver's snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use tokio::sync::{mpsc, watch};

use super::counters::AcmeCounters;
use super::evaluate::{evaluate, Slot, SlotReport};
use super::publish::Publisher;
use super::status::{rfc3339, CertificateStatus};
use super::Issuer;
use crate::model::{self, Domains};
use crate::store::Store;
use crate::CertResolver;

/// The longest the loop sleeps without re-checking anything.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// A certificate the routers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Its names.
    pub domains: Domains,
    /// The routers that need it (`name@provider`).
    pub routers: Vec<String>,
}

/// The certificates the routers need, by resolver name.
pub type DesiredCertificates = BTreeMap<String, Vec<Wanted>>;

/// Shared snapshot of every managed certificate's status.
pub type StatusBoard = Arc<ArcSwap<Vec<CertificateStatus>>>;

/// Issues, renews and publishes certificates for one wharf instance.
pub struct Manager {
    store: Arc<dyn Store>,
    issuers: BTreeMap<String, Arc<Issuer>>,
    publisher: Publisher,
    status: StatusBoard,
    counters: Arc<AcmeCounters>,
}

impl Manager {
    /// A manager publishing to `resolver` and issuing through `issuers` (by resolver
    /// name).
    pub fn new(
        store: Arc<dyn Store>,
        issuers: Vec<Issuer>,
        resolver: Arc<CertResolver>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        Self {
            publisher: Publisher::new(store.clone(), resolver, provider),
            store,
            issuers: issuers
                .into_iter()
                .map(|i| (i.settings().name.clone(), Arc::new(i)))
                .collect(),
            status: Arc::new(ArcSwap::from_pointee(Vec::new())),
            counters: Arc::new(AcmeCounters::default()),
        }
    }

    /// The status snapshot, updated as the manager works.
    pub fn status(&self) -> StatusBoard {
        self.status.clone()
    }

    /// Totals of orders, renewals, failures and store errors, updated as the manager works.
    pub fn counters(&self) -> Arc<AcmeCounters> {
        self.counters.clone()
    }

    /// Publishes what the store holds now; call before serving so a restart serves
    /// stored certificates at once.
    pub async fn publish_stored(&mut self) {
        if let Err(e) = self.publisher.refresh().await {
            self.counters.store_error();
            tracing::warn!(error = %e, "cannot read certificates from the store");
        }
    }

    /// Runs until `desired`'s sender is dropped.
    pub async fn run(mut self, mut desired: watch::Receiver<DesiredCertificates>) {
        let mut slots: BTreeMap<String, Slot> = BTreeMap::new();
        let (report_tx, mut reports) = mpsc::channel::<SlotReport>(64);
        let mut watch = None;
        let mut watch_retry = tokio::time::Instant::now();
        self.publish_stored().await;
        let snapshot = desired.borrow_and_update().clone();
        self.sync(&mut slots, &snapshot);
        loop {
            if watch.is_none() && tokio::time::Instant::now() >= watch_retry {
                match self.store.watch(model::CERTIFICATES).await {
                    Ok(w) => {
                        watch = Some(w);
                        self.publish_stored().await;
                    }
                    Err(e) => {
                        self.counters.store_error();
                        tracing::warn!(error = %e, "cannot watch the store; retrying");
                        watch_retry = tokio::time::Instant::now() + Duration::from_secs(5);
                    }
                }
            }
            let now = model::unix_now();
            for (key, slot) in slots.iter_mut() {
                if slot.running || slot.next_check > now || slot.blocked.is_some() {
                    continue;
                }
                let Some(issuer) = self.issuers.get(&slot.resolver).cloned() else {
                    continue;
                };
                slot.running = true;
                let tx = report_tx.clone();
                let (key, snapshot) = (key.clone(), slot.clone());
                let counters = self.counters.clone();
                tokio::spawn(async move {
                    let report = evaluate(issuer, key, snapshot, &counters).await;
                    let _ = tx.send(report).await;
                });
            }
            self.update_status(&slots);
            let next = slots
                .values()
                .filter(|s| !s.running && s.blocked.is_none())
                .map(|s| s.next_check)
                .min();
            let sleep = match next {
                Some(t) => {
                    Duration::from_secs((t - now).clamp(0, MAX_SLEEP.as_secs() as i64) as u64)
                }
                None => MAX_SLEEP,
            };
            let sleep = if watch.is_none() {
                sleep.min(Duration::from_secs(5))
            } else {
                sleep
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                changed = desired.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let snapshot = desired.borrow_and_update().clone();
                    self.sync(&mut slots, &snapshot);
                }
                Some(report) = reports.recv() => {
                    if let Some(slot) = slots.get_mut(&report.key) {
                        slot.apply(report);
                    }
                    self.publish_stored().await;
                }
                event = async { match watch.as_mut() { Some(w) => w.recv().await, None => std::future::pending().await } } => {
                    match event {
                        Some(first) => {
                            // A certificate changed (renewed elsewhere, imported): look
                            // at its slot again so its renewal time follows.
                            let mut changed = vec![first];
                            while let Some(more) = watch.as_mut().and_then(|w| w.try_recv()) {
                                changed.push(more);
                            }
                            for event in changed {
                                if let Some(slot) = slots.get_mut(event.key()).filter(|s| !s.running) {
                                    slot.next_check = slot.next_check.min(model::unix_now() + 1);
                                }
                            }
                            self.publish_stored().await;
                        }
                        None => {
                            tracing::warn!("store watch ended; re-creating it");
                            watch = None;
                        }
                    }
                }
            }
        }
    }

    /// Adds slots for newly wanted certificates and drops those no longer wanted.
    fn sync(&self, slots: &mut BTreeMap<String, Slot>, desired: &DesiredCertificates) {
        let mut keep = BTreeMap::new();
        for (resolver, wanted) in desired {
            for w in wanted {
                let key = match model::certificate_key(resolver, &w.domains) {
                    Ok(k) => k,
                    Err(e) => {
                        tracing::warn!(resolver = %resolver, error = %e, "cannot manage this domain set");
                        continue;
                    }
                };
                let blocked = self.blocked_reason(resolver, &w.domains);
                let mut slot = slots
                    .remove(&key)
                    .unwrap_or_else(|| Slot::new(resolver, w.domains.clone()));
                if let (Some(reason), None) = (&blocked, &slot.blocked) {
                    tracing::error!(resolver = %resolver, domains = %w.domains.all().collect::<Vec<_>>().join(","), "{reason}");
                }
                slot.blocked = blocked;
                slot.routers = w.routers.clone();
                keep.insert(key, slot);
            }
        }
        *slots = keep;
    }

    /// Why a domain set cannot be issued at all, if it cannot.
    fn blocked_reason(&self, resolver: &str, domains: &Domains) -> Option<String> {
        if !self.issuers.contains_key(resolver) {
            return Some(format!(
                "certificate resolver {resolver:?} is not configured"
            ));
        }
        if let Some(w) = domains.all().find(|d| d.starts_with("*.")) {
            return Some(format!(
                "{w}: wildcard names need the DNS-01 challenge, which wharf does not support"
            ));
        }
        None
    }

    /// Rebuilds the status snapshot from the published entries and the slots.
    fn update_status(&self, slots: &BTreeMap<String, Slot>) {
        let now = model::unix_now();
        let mut out: BTreeMap<String, CertificateStatus> = self
            .publisher
            .current()
            .iter()
            .map(|(key, p)| {
                (
                    key.clone(),
                    CertificateStatus::from_entry(&p.resolver, key, &p.entry, now),
                )
            })
            .collect();
        for (key, slot) in slots {
            let s = out.entry(key.clone()).or_insert_with(|| CertificateStatus {
                resolver: slot.resolver.clone(),
                key: key.clone(),
                main: slot.domains.main.clone(),
                domains: slot.domains.all().map(str::to_string).collect(),
                status: "pending",
                ..CertificateStatus::default()
            });
            s.routers = slot.routers.clone();
            s.renew_at = slot.renew_at.map(rfc3339);
            if let Some(reason) = &slot.blocked {
                s.status = if s.status == "valid" {
                    "valid"
                } else {
                    "error"
                };
                s.last_error = Some(reason.clone());
            }
        }
        self.status.store(Arc::new(out.into_values().collect()));
    }
}
