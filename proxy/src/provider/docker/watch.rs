//! The provider's session loop: list, follow events, withdraw stopping endpoints at
//! once, coalesce bursts, poll converging services, resync periodically, and send
//! the configuration only when it changed.
//!
//! The loop is written against [`Source`], so its timing and event handling are
//! tested without an engine.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use bollard::models::EventMessage;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::config::Mode;
use super::engine::Listing;
use super::error::DockerError;
use super::events::{classify, Action};
use crate::config::DynamicConfig;
use crate::provider::labels::{LabelIssue, Severity, Workload};
use crate::provider::ProviderUpdate;

/// Where workloads and events come from.
pub(crate) trait Source: Send {
    /// One full listing.
    fn list(&mut self) -> impl Future<Output = Result<Listing, DockerError>> + Send;
    /// The next event; `None` when the stream ended.
    fn next_event(
        &mut self,
    ) -> impl Future<Output = Option<Result<EventMessage, DockerError>>> + Send;
}

/// The configuration built from the workloads, and the problems found in their labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    /// The provider's whole configuration.
    pub config: DynamicConfig,
    /// Problems with workloads' labels (the workloads or routers concerned are absent).
    pub issues: Vec<LabelIssue>,
}

/// The loop's timings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Quiet time that ends a burst of events.
    pub(crate) debounce: Duration,
    /// Longest a continuous burst may delay the listing.
    pub(crate) max_delay: Duration,
    /// Polling period while services converge.
    pub(crate) poll: Duration,
    /// How long convergence is followed after it was last seen to change.
    pub(crate) follow: Duration,
    /// Full resync period.
    pub(crate) resync: Duration,
    /// How long a withdrawn endpoint stays out when nothing readmits it.
    pub(crate) withdraw_ttl: Duration,
}

impl Timing {
    /// The defaults, with the configured resync period.
    pub(crate) fn new(resync: Duration) -> Self {
        Self {
            debounce: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            poll: Duration::from_millis(250),
            follow: Duration::from_secs(120),
            resync,
            withdraw_ttl: Duration::from_secs(120),
        }
    }
}

/// State that outlives one connection: what was sent, what is withdrawn.
pub(crate) struct Publisher<R> {
    /// The provider name (`docker` or `swarm`).
    pub(crate) provider: &'static str,
    /// Builds the configuration.
    pub(crate) render: R,
    /// The aggregator.
    pub(crate) tx: mpsc::Sender<ProviderUpdate>,
    /// The start-up handshake: the first configuration goes here if still awaited.
    pub(crate) first: Option<oneshot::Sender<DynamicConfig>>,
    /// Current label problems, for the admin API.
    pub(crate) issues: watch::Sender<Vec<LabelIssue>>,
    /// The last configuration handed over.
    pub(crate) last: Option<DynamicConfig>,
    /// The last listing.
    pub(crate) listing: Option<Listing>,
    /// Withdrawn endpoint IDs, with when they were withdrawn.
    pub(crate) withdrawn: HashMap<String, Instant>,
}

/// What ended a wait in the session loop.
enum Wake {
    Event(Option<Result<EventMessage, DockerError>>),
    Timer,
    Closed,
}

/// The receiver is gone: the provider stops.
#[derive(Debug)]
pub(crate) struct Closed;

impl<R> Publisher<R>
where
    R: FnMut(Mode, &[Workload]) -> Rendered + Send,
{
    /// Lists, then publishes. A failed listing keeps everything as it was.
    async fn refresh<S: Source>(
        &mut self,
        src: &mut S,
        timing: &Timing,
    ) -> Result<Result<Listing, DockerError>, Closed> {
        let listing = match src.list().await {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        let now = Instant::now();
        let listed: std::collections::HashSet<&str> = listing
            .workloads
            .iter()
            .flat_map(|w| w.endpoints.iter().map(|e| e.id.as_str()))
            .collect();
        self.withdrawn
            .retain(|id, at| listed.contains(id.as_str()) && now - *at < timing.withdraw_ttl);
        self.listing = Some(listing.clone());
        self.publish().await?;
        Ok(Ok(listing))
    }

    /// Takes endpoints out of service now.
    async fn withdraw(&mut self, ids: Vec<String>) -> Result<(), Closed> {
        let now = Instant::now();
        let mut changed = false;
        for id in ids {
            changed |= self.withdrawn.insert(id, now).is_none();
        }
        if changed {
            self.publish().await?;
        }
        Ok(())
    }

    /// Renders the last listing minus withdrawn endpoints; sends it if it changed.
    async fn publish(&mut self) -> Result<(), Closed> {
        let Some(listing) = &self.listing else {
            return Ok(());
        };
        let mut workloads = listing.workloads.clone();
        for w in &mut workloads {
            w.endpoints.retain(|e| !self.withdrawn.contains_key(&e.id));
        }
        let rendered = (self.render)(listing.mode, &workloads);
        self.issues.send_if_modified(|current| {
            if *current == rendered.issues {
                return false;
            }
            for issue in rendered.issues.iter().filter(|i| !current.contains(i)) {
                log_issue(self.provider, issue);
            }
            *current = rendered.issues.clone();
            true
        });
        if self.last.as_ref() == Some(&rendered.config) {
            return Ok(());
        }
        self.last = Some(rendered.config.clone());
        if let Some(first) = self.first.take() {
            match first.send(rendered.config) {
                Ok(()) => return Ok(()),
                Err(config) => return self.send(config).await,
            }
        }
        self.send(rendered.config).await
    }

    async fn send(&self, config: DynamicConfig) -> Result<(), Closed> {
        let routers = config.http.routers.len();
        let update = ProviderUpdate {
            provider: self.provider,
            config,
        };
        self.tx.send(update).await.map_err(|_| Closed)?;
        tracing::debug!(provider = self.provider, routers, "configuration sent");
        Ok(())
    }
}

/// Runs one connected session until the engine fails (`Ok(Err)`) or the receiver
/// is gone (`Err(Closed)`). `on_listed` is called after the first good listing
/// (the caller resets its backoff).
pub(crate) async fn session<S, R>(
    src: &mut S,
    p: &mut Publisher<R>,
    timing: Timing,
    on_listed: &mut (dyn FnMut() + Send),
) -> Result<DockerError, Closed>
where
    S: Source,
    R: FnMut(Mode, &[Workload]) -> Rendered + Send,
{
    let first = match p.refresh(src, &timing).await? {
        Ok(listing) => listing,
        Err(e) => return Ok(e),
    };
    on_listed();
    let mut converging = first.converging;
    let now = Instant::now();
    let mut follow_until = (!converging.is_empty()).then(|| now + timing.follow);
    let mut next_poll = follow_until.map(|_| now + timing.poll);
    let mut dirty: Option<(Instant, Instant)> = None; // (first event, last event)
    let mut resync_at = now + timing.resync;
    loop {
        let mut wake = resync_at;
        if let Some((first, last)) = dirty {
            wake = wake.min((last + timing.debounce).min(first + timing.max_delay));
        }
        if let Some(at) = next_poll {
            wake = wake.min(at);
        }
        let woke = tokio::select! {
            event = src.next_event() => Wake::Event(event),
            () = tokio::time::sleep_until(wake) => Wake::Timer,
            () = p.tx.closed() => Wake::Closed,
        };
        match woke {
            Wake::Closed => return Err(Closed),
            Wake::Timer => {}
            Wake::Event(None) => return Ok(DockerError::EventsClosed),
            Wake::Event(Some(Err(e))) => return Ok(e),
            Wake::Event(Some(Ok(event))) => {
                match classify(&event) {
                    Action::Ignore => continue,
                    Action::Withdraw(ids) => p.withdraw(ids).await?,
                    Action::Readmit(ids) => {
                        for id in &ids {
                            p.withdrawn.remove(id);
                        }
                    }
                    Action::Refresh => {}
                }
                let now = Instant::now();
                dirty = Some((dirty.map_or(now, |(first, _)| first), now));
                continue;
            }
        }
        let now = Instant::now();
        let burst_over = dirty.is_some_and(|(first, last)| {
            now >= last + timing.debounce || now >= first + timing.max_delay
        });
        let poll_due = next_poll.is_some_and(|at| now >= at);
        if !(burst_over || poll_due || now >= resync_at) {
            continue;
        }
        let listing = match p.refresh(src, &timing).await? {
            Ok(l) => l,
            Err(e) => return Ok(e),
        };
        let now = Instant::now();
        resync_at = now + timing.resync;
        if burst_over || listing.converging != converging {
            follow_until = Some(now + timing.follow);
        }
        dirty = None;
        converging = listing.converging;
        next_poll = match follow_until {
            Some(until) if !converging.is_empty() && now < until => Some(now + timing.poll),
            _ => None,
        };
    }
}

/// Logs a label problem once, when it appears: an error names the service (workload)
/// and the label; the workload or router concerned is left out of the configuration.
fn log_issue(provider: &str, issue: &LabelIssue) {
    let label = issue.label.as_deref();
    match issue.severity {
        Severity::Error => tracing::error!(
            provider,
            service = %issue.workload,
            label,
            error = %issue.message,
            "invalid labels; left out"
        ),
        Severity::Warning => tracing::warn!(
            provider,
            service = %issue.workload,
            label,
            warning = %issue.message,
            "labels"
        ),
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
