//! The provider's outer loop: connect, choose the mode, run sessions, and reconnect
//! with exponential backoff when the engine fails. The last good configuration
//! stays in force meanwhile (nothing is sent until a listing succeeds again).

use std::collections::HashMap;

use bollard::models::EventMessage;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};

use super::backoff::Backoff;
use super::config::{DockerProviderConfig, Mode, ProviderKind};
use super::engine::{Engine, Events, Listing};
use super::error::DockerError;
use super::watch::{session, Publisher, Rendered, Source, Timing};
use crate::config::DynamicConfig;
use crate::provider::labels::{LabelIssue, Workload};
use crate::provider::ProviderUpdate;

/// A connected engine in one mode, with its event stream (none without `watch`).
struct EngineSource {
    engine: Engine,
    mode: Mode,
    events: Option<Events>,
}

impl Source for EngineSource {
    async fn list(&mut self) -> Result<Listing, DockerError> {
        self.engine.list(self.mode).await
    }

    async fn next_event(&mut self) -> Option<Result<EventMessage, DockerError>> {
        match &mut self.events {
            Some(events) => events.next().await,
            None => std::future::pending().await,
        }
    }
}

/// Everything [`run`] needs.
pub(crate) struct RunArgs<R> {
    /// The settings.
    pub(crate) cfg: DockerProviderConfig,
    /// Which section configured the provider.
    pub(crate) kind: ProviderKind,
    /// Builds the configuration from the workloads.
    pub(crate) render: R,
    /// The aggregator.
    pub(crate) tx: mpsc::Sender<ProviderUpdate>,
    /// Receives the first configuration when the runtime still waits for it.
    pub(crate) first: Option<oneshot::Sender<DynamicConfig>>,
    /// Current label problems.
    pub(crate) issues: watch::Sender<Vec<LabelIssue>>,
    /// Reconnection delays.
    pub(crate) backoff: Backoff,
}

/// Runs the provider until the aggregator goes away.
pub(crate) async fn run<R>(args: RunArgs<R>)
where
    R: FnMut(Mode, &[Workload]) -> Rendered + Send,
{
    let RunArgs {
        cfg,
        kind,
        render,
        tx,
        first,
        issues,
        mut backoff,
    } = args;
    let provider = kind.name();
    let engine = match Engine::new(&cfg) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(provider, error = %e, "Docker provider disabled");
            tx.closed().await;
            return;
        }
    };
    let timing = Timing::new(cfg.resync_period());
    let mut publisher = Publisher {
        provider,
        render,
        tx,
        first,
        issues,
        last: None,
        listing: None,
        withdrawn: HashMap::new(),
    };
    let mut announced = None;
    loop {
        let error = match connect(&engine, &cfg, kind).await {
            Ok(mut source) => {
                if announced != Some(source.mode) {
                    tracing::info!(provider, endpoint = %cfg.endpoint, mode = ?source.mode, "watching Docker");
                    announced = Some(source.mode);
                }
                let mut reset = || backoff.reset();
                match session(&mut source, &mut publisher, timing, &mut reset).await {
                    Ok(e) => e,
                    Err(_closed) => return,
                }
            }
            Err(e) => e,
        };
        let delay = backoff.next_delay();
        tracing::warn!(
            provider,
            endpoint = %cfg.endpoint,
            error = %error,
            retry_in = ?delay,
            "Docker unreachable; keeping the last configuration"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = publisher.tx.closed() => return,
        }
    }
}

/// Chooses the mode and prepares the event stream.
async fn connect(
    engine: &Engine,
    cfg: &DockerProviderConfig,
    kind: ProviderKind,
) -> Result<EngineSource, DockerError> {
    let mode = match cfg.forced_mode(kind) {
        Some(mode) => mode,
        None => engine.detect_mode().await?,
    };
    // The stream connects when the session first polls it, and replays from just
    // before now; an engine that refuses it ends the session with the error.
    let events = cfg.watch.then(|| engine.events(mode));
    Ok(EngineSource {
        engine: engine.clone(),
        mode,
        events,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;

    use crate::config::dynamic::RuleSyntax;
    use crate::provider::docker::{DockerProvider, DockerProviderConfig, ProviderKind};

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_engine_starts_empty_and_keeps_retrying() {
        let cfg = DockerProviderConfig {
            endpoint: "unix:///nonexistent/wharf-test/docker.sock".into(),
            ..Default::default()
        };
        let (tx, mut rx) = mpsc::channel(4);
        let mut p = DockerProvider::spawn(cfg, ProviderKind::Swarm, RuleSyntax::V3, tx);
        assert_eq!(p.name(), "swarm");
        assert_eq!(p.initial(Duration::from_secs(2)).await, None);
        assert_eq!(p.initial(Duration::from_secs(2)).await, None, "waits once");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(rx.try_recv().is_err(), "nothing sent while unreachable");
        assert!(p.errors().is_empty());
    }

    #[tokio::test]
    async fn an_invalid_endpoint_disables_the_provider() {
        let cfg = DockerProviderConfig {
            endpoint: "ssh://host".into(),
            ..Default::default()
        };
        let (tx, rx) = mpsc::channel(4);
        let mut p = DockerProvider::spawn(cfg, ProviderKind::Docker, RuleSyntax::V3, tx);
        assert_eq!(p.initial(Duration::from_millis(50)).await, None);
        drop(rx);
    }
}
