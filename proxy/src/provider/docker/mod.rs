//! The Docker provider: routes from the labels of Swarm services (`providers.swarm`,
//! or `providers.docker` with `swarmMode`) or of containers (`providers.docker`).
//!
//! - **Mode**: `providers.swarm` and `swarmMode: true` watch swarm services,
//!   `swarmMode: false` watches containers; otherwise the engine decides (swarm when
//!   it is an active swarm manager).
//! - **Event-driven**: the provider follows the engine's events (services,
//!   containers, network connections). A burst of events is coalesced (100 ms of
//!   quiet, at most 500 ms) into one listing; while a service converges (tasks
//!   starting, rolling update) its tasks are listed every 250 ms, for up to two
//!   minutes after the last change; and a full resync runs every `refreshSeconds`
//!   (30 s) in case an event was missed. A container that is killed, stopped, dies
//!   or turns unhealthy is withdrawn at once, before the next listing, so a rolling
//!   update never sends traffic to a stopping task. See [`events`] for the table.
//! - **Output**: the label engine turns the workloads into one configuration, sent as
//!   a [`ProviderUpdate`](crate::provider::ProviderUpdate) from `swarm` or `docker`
//!   only when it changed.
//! - **Failures**: when the engine is unreachable the last good configuration stays
//!   in force and the provider reconnects with exponential backoff (250 ms to 10 s).
//!   A workload with invalid labels is left out (or only its broken router); the
//!   problem is logged once (`service`, `label`, `error`) and kept in
//!   [`DockerProvider::errors`] for the admin API.

pub mod backoff;
pub mod config;
pub mod containers;
pub mod engine;
pub mod error;
pub mod events;
mod render;
mod run;
pub mod swarm;
pub(crate) mod tls;
pub mod transport;
pub(crate) mod watch;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch as channel};

use crate::config::dynamic::RuleSyntax;
use crate::config::DynamicConfig;
use crate::provider::labels::LabelIssue;
use crate::provider::ProviderUpdate;

pub use config::{DockerProviderConfig, Mode, ProviderKind};
pub use error::{DockerError, TransportError};

/// A running Docker provider, as the runtime holds it.
#[derive(Debug)]
pub struct DockerProvider {
    kind: ProviderKind,
    first: Option<oneshot::Receiver<DynamicConfig>>,
    issues: channel::Receiver<Vec<LabelIssue>>,
}

impl DockerProvider {
    /// Starts the provider on the current Tokio runtime. Configurations go to `tx`,
    /// except the first one, which [`initial`](Self::initial) hands over when it is
    /// awaited in time.
    pub fn spawn(
        cfg: DockerProviderConfig,
        kind: ProviderKind,
        default_rule_syntax: RuleSyntax,
        tx: mpsc::Sender<ProviderUpdate>,
    ) -> Self {
        let (first_tx, first_rx) = oneshot::channel();
        let (issues_tx, issues_rx) = channel::channel(Vec::new());
        if kind == ProviderKind::Swarm && cfg.swarm_mode == Some(false) {
            tracing::warn!(
                provider = kind.name(),
                "swarmMode=false is ignored under providers.swarm, which always watches services"
            );
        }
        if cfg.use_bind_port_ip {
            tracing::warn!(
                provider = kind.name(),
                "useBindPortIP is accepted but not supported yet; task addresses are used"
            );
        }
        let render_cfg = cfg.clone();
        let render = move |mode: Mode, workloads: &[crate::provider::labels::Workload]| {
            let settings = render::settings(&render_cfg, kind, mode, default_rule_syntax);
            render::render(workloads, &settings)
        };
        tokio::spawn(run::run(run::RunArgs {
            cfg,
            kind,
            render,
            tx,
            first: Some(first_tx),
            issues: issues_tx,
            backoff: backoff::Backoff::DEFAULT,
        }));
        Self {
            kind,
            first: Some(first_rx),
            issues: issues_rx,
        }
    }

    /// The provider's name (`docker` or `swarm`).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Waits up to `wait` for the first configuration. After a timeout (engine slow
    /// or down) it returns `None` and the provider sends its first configuration
    /// through the channel instead, whenever it has one. Only the first call waits.
    pub async fn initial(&mut self, wait: Duration) -> Option<DynamicConfig> {
        let mut rx = self.first.take()?;
        if let Ok(Ok(config)) = tokio::time::timeout(wait, &mut rx).await {
            return Some(config);
        }
        // Closing first means a configuration is either here now or will go to
        // the channel: none is lost between the timeout and the drop.
        rx.close();
        rx.try_recv().ok()
    }

    /// The current problems with workloads' labels: the workload (service) and label
    /// concerned, and what is wrong. Those with [`Severity::Error`] left the
    /// workload, or one of its routers, out of the configuration.
    ///
    /// [`Severity::Error`]: crate::provider::labels::Severity::Error
    pub fn errors(&self) -> Vec<LabelIssue> {
        self.issues.borrow().clone()
    }

    /// A receiver that sees every change of [`errors`](Self::errors).
    pub fn subscribe_errors(&self) -> channel::Receiver<Vec<LabelIssue>> {
        self.issues.clone()
    }
}

#[cfg(test)]
mod fake_engine_tests;
#[cfg(test)]
mod live_tests;
