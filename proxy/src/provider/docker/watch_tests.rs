#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bollard::models::{EventActor, EventMessageTypeEnum as Type};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::*;
use crate::config::dynamic::{LoadBalancer, Server, Service};
use crate::provider::labels::Endpoint;

/// A scripted engine: the listing is whatever the test last set.
struct Fake {
    listing: Arc<Mutex<Result<Listing, ()>>>,
    lists: Arc<Mutex<Vec<Instant>>>,
    events: UnboundedReceiver<Result<EventMessage, DockerError>>,
}

impl Source for Fake {
    async fn list(&mut self) -> Result<Listing, DockerError> {
        self.lists.lock().unwrap().push(Instant::now());
        self.listing
            .lock()
            .unwrap()
            .clone()
            .map_err(|()| DockerError::EventsClosed)
    }

    async fn next_event(&mut self) -> Option<Result<EventMessage, DockerError>> {
        self.events.recv().await
    }
}

struct Harness {
    listing: Arc<Mutex<Result<Listing, ()>>>,
    lists: Arc<Mutex<Vec<Instant>>>,
    events: UnboundedSender<Result<EventMessage, DockerError>>,
    updates: mpsc::Receiver<ProviderUpdate>,
    done: tokio::task::JoinHandle<Result<DockerError, Closed>>,
    start: Instant,
}

fn workload(name: &str, endpoints: &[&str]) -> Workload {
    Workload {
        name: name.into(),
        endpoints: endpoints
            .iter()
            .map(|id| Endpoint {
                id: id.to_string(),
                addresses: Default::default(),
            })
            .collect(),
        ..Default::default()
    }
}

fn listing(workloads: Vec<Workload>, converging: &[&str]) -> Listing {
    Listing {
        mode: Mode::Swarm,
        workloads,
        converging: converging.iter().map(|s| s.to_string()).collect(),
    }
}

/// One service per workload, one server per endpoint (`http://<id>`).
fn render(_mode: Mode, workloads: &[Workload]) -> Rendered {
    let mut config = DynamicConfig::default();
    for w in workloads {
        let servers = w
            .endpoints
            .iter()
            .map(|e| Server {
                url: format!("http://{}", e.id),
                ..Default::default()
            })
            .collect();
        config.http.services.insert(
            w.name.clone(),
            Service {
                load_balancer: Some(LoadBalancer {
                    servers,
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
    }
    Rendered {
        config,
        issues: Vec::new(),
    }
}

fn servers(update: &ProviderUpdate, service: &str) -> Vec<String> {
    let lb = update.config.http.services[service].load_balancer.as_ref();
    lb.unwrap().servers.iter().map(|s| s.url.clone()).collect()
}

fn start(initial: Listing) -> Harness {
    let listing = Arc::new(Mutex::new(Ok(initial)));
    let lists = Arc::new(Mutex::new(Vec::new()));
    let (events_tx, events) = unbounded_channel();
    let (tx, updates) = mpsc::channel(16);
    let mut fake = Fake {
        listing: listing.clone(),
        lists: lists.clone(),
        events,
    };
    let (issues, _) = watch::channel(Vec::new());
    let mut publisher = Publisher {
        provider: "swarm",
        render,
        tx,
        first: None,
        issues,
        last: None,
        listing: None,
        withdrawn: HashMap::new(),
    };
    let timing = Timing::new(Duration::from_secs(30));
    let done =
        tokio::spawn(async move { session(&mut fake, &mut publisher, timing, &mut || {}).await });
    Harness {
        listing,
        lists,
        events: events_tx,
        updates,
        done,
        start: Instant::now(),
    }
}

impl Harness {
    fn set(&self, l: Listing) {
        *self.listing.lock().unwrap() = Ok(l);
    }

    /// Times of the listings so far, relative to the start, in milliseconds.
    fn list_times(&self) -> Vec<u128> {
        let lists = self.lists.lock().unwrap();
        lists
            .iter()
            .map(|t| (*t - self.start).as_millis())
            .collect()
    }

    fn event(&self, typ: Type, action: &str, id: &str) {
        let e = EventMessage {
            typ: Some(typ),
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some(id.into()),
                attributes: None,
            }),
            ..Default::default()
        };
        self.events.send(Ok(e)).unwrap();
    }
}

async fn settle(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(start_paused = true)]
async fn sends_the_first_listing_and_only_changes() {
    let mut h = start(listing(vec![workload("web", &["a"])], &[]));
    let first = h.updates.recv().await.unwrap();
    assert_eq!(first.provider, "swarm");
    assert_eq!(servers(&first, "web"), ["http://a"]);
    // A refresh that finds the same thing sends nothing.
    h.event(Type::SERVICE, "update", "s1");
    settle(1000).await;
    assert_eq!(h.list_times(), [0, 100]);
    assert!(h.updates.try_recv().is_err());
    // A change is sent.
    h.set(listing(vec![workload("web", &["a", "b"])], &[]));
    h.event(Type::NETWORK, "connect", "n1");
    let next = h.updates.recv().await.unwrap();
    assert_eq!(servers(&next, "web"), ["http://a", "http://b"]);
}

#[tokio::test(start_paused = true)]
async fn bursts_are_coalesced_and_irrelevant_events_ignored() {
    let mut h = start(listing(vec![], &[]));
    h.updates.recv().await.unwrap();
    for _ in 0..5 {
        h.event(Type::CONTAINER, "exec_start: true", "c");
    }
    settle(1000).await;
    assert_eq!(h.list_times(), [0], "exec events do not list");
    for _ in 0..4 {
        h.event(Type::CONTAINER, "start", "c");
        settle(50).await;
    }
    settle(1000).await;
    // Four events 50 ms apart: one listing, 100 ms after the last.
    assert_eq!(h.list_times(), [0, 1000 + 150 + 100]);
    // A continuous burst (from 2200 ms) is cut at 500 ms, and again 500 ms later.
    for _ in 0..20 {
        h.event(Type::NETWORK, "disconnect", "n");
        settle(80).await;
    }
    let times = h.list_times();
    assert_eq!(times[2..4], [2700, 3260], "{times:?}");
}

#[tokio::test(start_paused = true)]
async fn a_stopping_task_is_withdrawn_before_the_next_listing() {
    let mut h = start(listing(vec![workload("web", &["t1", "t2"])], &[]));
    h.updates.recv().await.unwrap();
    // The kill event names the container and its task.
    let kill = EventMessage {
        typ: Some(Type::CONTAINER),
        action: Some("kill".into()),
        actor: Some(EventActor {
            id: Some("c1".into()),
            attributes: Some(HashMap::from([
                ("com.docker.swarm.task.id".to_string(), "t1".to_string()),
                ("signal".to_string(), "15".to_string()),
            ])),
        }),
        ..Default::default()
    };
    h.events.send(Ok(kill)).unwrap();
    let withdrawn = h.updates.recv().await.unwrap();
    assert_eq!(servers(&withdrawn, "web"), ["http://t2"]);
    assert_eq!(h.list_times(), [0], "sent before listing again");
    // The engine still lists the task as running for a while: it stays out.
    settle(1000).await;
    assert_eq!(h.list_times().len(), 2);
    assert!(h.updates.try_recv().is_err());
    // Once the task is gone from the listing, the withdrawal is forgotten.
    h.set(listing(vec![workload("web", &["t2", "t3"])], &[]));
    h.event(Type::SERVICE, "update", "s");
    let next = h.updates.recv().await.unwrap();
    assert_eq!(servers(&next, "web"), ["http://t2", "http://t3"]);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_container_is_readmitted() {
    let mut h = start(listing(vec![workload("app", &["c1"])], &[]));
    h.updates.recv().await.unwrap();
    h.event(Type::CONTAINER, "die", "c1");
    assert!(servers(&h.updates.recv().await.unwrap(), "app").is_empty());
    h.event(Type::CONTAINER, "start", "c1");
    let back = h.updates.recv().await.unwrap();
    assert_eq!(servers(&back, "app"), ["http://c1"]);
}

#[tokio::test(start_paused = true)]
async fn converging_services_are_polled_until_stable() {
    let mut h = start(listing(vec![], &[]));
    h.updates.recv().await.unwrap();
    h.set(listing(vec![], &["web"]));
    h.event(Type::SERVICE, "create", "s");
    settle(1000).await;
    // Listed at 100 ms (debounce), then every 250 ms.
    assert_eq!(h.list_times(), [0, 100, 350, 600, 850]);
    h.set(listing(vec![workload("web", &["t1"])], &[]));
    let ready = h.updates.recv().await.unwrap();
    assert_eq!(servers(&ready, "web"), ["http://t1"]);
    assert_eq!(*h.list_times().last().unwrap(), 1100);
    settle(5000).await;
    assert_eq!(h.list_times().len(), 6, "no polling once stable");
}

#[tokio::test(start_paused = true)]
async fn polling_stops_after_the_follow_window() {
    let mut h = start(listing(vec![], &[]));
    h.updates.recv().await.unwrap();
    h.set(listing(vec![], &["stuck"]));
    h.event(Type::SERVICE, "update", "s");
    settle(200_000).await;
    let times = h.list_times();
    // 120 s of polling at 4 Hz, then the 30 s resync only.
    let last_poll = times.iter().rev().find(|t| **t < 121_000).unwrap();
    assert!(*last_poll > 119_000, "{last_poll}");
    let after: Vec<_> = times.iter().filter(|t| **t > 121_000).collect();
    assert!(after.len() <= 3, "{after:?}");
}

#[tokio::test(start_paused = true)]
async fn resyncs_periodically() {
    let mut h = start(listing(vec![], &[]));
    h.updates.recv().await.unwrap();
    settle(65_000).await;
    assert_eq!(h.list_times(), [0, 30_000, 60_000]);
}

#[tokio::test(start_paused = true)]
async fn engine_failures_end_the_session_without_sending() {
    let mut h = start(listing(vec![workload("web", &["a"])], &[]));
    h.updates.recv().await.unwrap();
    *h.listing.lock().unwrap() = Err(());
    h.event(Type::SERVICE, "remove", "s");
    let err = h.done.await.unwrap().unwrap();
    assert!(matches!(err, DockerError::EventsClosed));
    assert!(h.updates.try_recv().is_err(), "last good config kept");

    let h = start(listing(vec![], &[]));
    drop(h.events);
    let err = h.done.await.unwrap().unwrap();
    assert!(matches!(err, DockerError::EventsClosed));
}
