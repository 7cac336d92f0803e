//! The engine's API as the provider uses it: which mode to run in, one full listing,
//! and the event stream.

use std::collections::HashMap;
use std::pin::Pin;

use bollard::models::{EventMessage, LocalNodeState};
use bollard::query_parameters::{
    EventsOptions, ListContainersOptions, ListNetworksOptions, ListServicesOptions,
};
use bollard::Docker;
use futures_util::{Stream, StreamExt};

use super::config::{auto_mode, DockerProviderConfig, Mode};
use super::containers;
use super::error::DockerError;
use super::swarm::{SwarmState, SwarmTask};
use super::transport::Transport;
use crate::provider::labels::Workload;

/// The event stream.
pub type Events = Pin<Box<dyn Stream<Item = Result<EventMessage, DockerError>> + Send>>;

/// What one listing found.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// The mode the listing was made in.
    pub mode: Mode,
    /// The workloads, with the endpoints that may receive traffic.
    pub workloads: Vec<Workload>,
    /// Swarm services still converging (tasks starting, update in progress).
    pub converging: Vec<String>,
}

/// A connected engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    transport: Transport,
}

impl Engine {
    /// Sets up the client; nothing is sent yet.
    pub fn new(cfg: &DockerProviderConfig) -> Result<Self, DockerError> {
        let transport = Transport::new(cfg)?;
        let docker = transport.client(cfg)?;
        Ok(Self { docker, transport })
    }

    /// Swarm when the engine is an active swarm manager, containers otherwise.
    pub async fn detect_mode(&self) -> Result<Mode, DockerError> {
        let info = self.docker.info().await.map_err(DockerError::api("info"))?;
        let swarm = info.swarm.unwrap_or_default();
        Ok(auto_mode(
            swarm.local_node_state == Some(LocalNodeState::ACTIVE),
            swarm.control_available == Some(true),
        ))
    }

    /// Lists everything the mode needs.
    pub async fn list(&self, mode: Mode) -> Result<Listing, DockerError> {
        match mode {
            Mode::Swarm => {
                let state = self.swarm_state().await?;
                Ok(Listing {
                    mode,
                    workloads: state.workloads(),
                    converging: state.converging(),
                })
            }
            Mode::Containers => {
                let list = self
                    .docker
                    .list_containers(Some(ListContainersOptions::default()))
                    .await
                    .map_err(DockerError::api("list containers"))?;
                Ok(Listing {
                    mode,
                    workloads: containers::workloads(&list),
                    converging: Vec::new(),
                })
            }
        }
    }

    /// Services, networks and running tasks, fetched concurrently.
    pub async fn swarm_state(&self) -> Result<SwarmState, DockerError> {
        let services = async {
            self.docker
                .list_services(Some(ListServicesOptions::default()))
                .await
                .map_err(DockerError::api("list services"))
        };
        let networks = async {
            self.docker
                .list_networks(Some(ListNetworksOptions::default()))
                .await
                .map_err(DockerError::api("list networks"))
        };
        let (services, networks, tasks) =
            futures_util::try_join!(services, networks, self.running_tasks())?;
        Ok(SwarmState {
            services,
            tasks,
            networks,
        })
    }

    /// Tasks whose desired state is `running`, with their network attachments.
    async fn running_tasks(&self) -> Result<Vec<SwarmTask>, DockerError> {
        const CALL: &str = "list tasks";
        // filters={"desired-state":["running"]}, percent-encoded.
        let path = "/tasks?filters=%7B%22desired-state%22%3A%5B%22running%22%5D%7D";
        let body = self.transport.get(CALL, path).await?;
        serde_json::from_slice(&body).map_err(|source| DockerError::Decode { call: CALL, source })
    }

    /// The events that can change the mode's workloads. The stream connects when
    /// first polled, after the listing has started; it asks the engine to replay
    /// from a second before now, so an event between the listing and the
    /// subscription is not lost (a replayed event costs one more listing).
    pub fn events(&self, mode: Mode) -> Events {
        let mut types = vec!["container".to_string(), "network".to_string()];
        if mode == Mode::Swarm {
            types.push("service".into());
        }
        let filters = HashMap::from([("type".to_string(), types)]);
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs().saturating_sub(1).to_string())
            .ok();
        let stream = self.docker.events(Some(EventsOptions {
            since,
            filters: Some(filters),
            ..Default::default()
        }));
        Box::pin(stream.map(|r| r.map_err(DockerError::api("events"))))
    }
}

/// Lists the swarm workloads once with the default settings (used by tools and tests).
pub async fn list_swarm_workloads(
    cfg: &DockerProviderConfig,
) -> Result<Vec<Workload>, DockerError> {
    Ok(Engine::new(cfg)?.list(Mode::Swarm).await?.workloads)
}
