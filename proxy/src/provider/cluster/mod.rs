//! Worker-node mode: one publisher writes the routing table to the shared store,
//! every other node follows it, so nodes without access to the swarm manager API
//! (workers, or instances without the Docker socket) still route every service.
//!
//! - **On only when configured**: the `cluster` section turns it on (`mode: off` or
//!   no section: a single instance behaves exactly as before). The table lives in
//!   the certificate store (`certStore`), which every node must share.
//! - **Shared provider**: `cluster.provider` (`swarm` by default) names the provider
//!   whose output is shared. On every node its local output goes to this module
//!   instead of the aggregator, and this module feeds the aggregator under the same
//!   name, so `name@swarm` references resolve on every node.
//! - **Election**: eligible nodes (see [`settings::Eligibility`]: with `auto`, an
//!   active swarm manager) contend for the store lock `<prefix>/publisher` (lease
//!   `lockTTL`, 10 s, renewed every third). The holder writes its provider's
//!   configuration to `<prefix>/table` whenever it changes, with compare-and-swap and
//!   its fencing token; when the lock is lost it stops writing at once. A crashed
//!   publisher is replaced after at most one TTL.
//! - **Following**: every node that does not hold the lock (followers and the other
//!   candidates) watches the table and serves it. A malformed table is logged with
//!   its key and ignored; when the store is unreachable the last good table stays.
//!   See [`election`] for the rules and [`entry`] for the format.

pub mod election;
pub mod entry;
pub mod error;
mod run;
pub mod settings;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wharf_certstore::store::Store;

use crate::config::DynamicConfig;
use crate::provider::ProviderUpdate;

pub use election::Role;
pub use error::ClusterError;
pub use settings::Settings;
pub use status::ClusterStatus;

/// How long [`ClusterProvider::stop`] waits for the lock to be released.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// A running cluster provider, as the runtime holds it.
#[derive(Debug)]
pub struct ClusterProvider {
    provider: &'static str,
    first: Option<oneshot::Receiver<DynamicConfig>>,
    status: watch::Receiver<ClusterStatus>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl ClusterProvider {
    /// Starts the provider on the current Tokio runtime.
    ///
    /// `local` carries the shared provider's own updates on this node (none on a
    /// follower), `initial_local` its first configuration if start-up already got
    /// one. Configurations go to `tx` under the shared provider's name, except the
    /// first, which [`initial`](Self::initial) hands over when awaited in time.
    pub fn spawn(
        settings: Settings,
        store: Arc<dyn Store>,
        local: Option<mpsc::Receiver<ProviderUpdate>>,
        initial_local: Option<DynamicConfig>,
        tx: mpsc::Sender<ProviderUpdate>,
    ) -> Self {
        let settings = Arc::new(settings);
        let node = election::Node::new(settings.eligibility.possible());
        let (status_tx, status_rx) = watch::channel(ClusterStatus::new(&settings, node.role()));
        let (first_tx, first_rx) = oneshot::channel();
        let stop = CancellationToken::new();
        let provider = settings.provider;
        tracing::info!(
            mode = settings.mode.as_str(),
            provider,
            key = %settings.key,
            node = %settings.node,
            eligible = settings.eligibility.possible(),
            "cluster: sharing the routing table through the store"
        );
        let driver = run::Driver::new(store, settings, node, tx, first_tx, status_tx, stop.clone());
        let task = tokio::spawn(driver.run(local, initial_local));
        Self {
            provider,
            first: Some(first_rx),
            status: status_rx,
            stop,
            task,
        }
    }

    /// The shared provider's name, under which the table is served.
    pub fn name(&self) -> &'static str {
        self.provider
    }

    /// Waits up to `wait` for the first configuration to serve (the stored table,
    /// or a candidate's own view when the store has none). `None` when there is
    /// nothing yet; later configurations go through the channel. Only the first call
    /// waits.
    pub async fn initial(&mut self, wait: Duration) -> Option<DynamicConfig> {
        let mut rx = self.first.take()?;
        if let Ok(Ok(config)) = tokio::time::timeout(wait, &mut rx).await {
            return Some(config);
        }
        rx.close();
        rx.try_recv().ok()
    }

    /// A receiver of the provider's state, for the admin API.
    pub fn status(&self) -> watch::Receiver<ClusterStatus> {
        self.status.clone()
    }

    /// Stops the provider and releases the publisher lock, so another candidate
    /// takes over without waiting for the lease to run out.
    pub async fn stop(self) {
        self.stop.cancel();
        let mut task = self.task;
        if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests;
