//! The provider against a fake engine on a Unix socket: it starts without the
//! engine, connects when the engine appears, keeps its configuration while the
//! engine is gone, and reconnects.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::*;
use crate::config::dynamic::RuleSyntax;

/// The answers of the fake engine: the task's address is what tests change.
#[derive(Clone)]
struct Fake {
    task_ip: Arc<Mutex<String>>,
}

const SERVICES: &str = r#"[{"ID":"s1","Spec":{"Name":"web",
    "Labels":{"traefik.http.services.web.loadbalancer.server.port":"80"},
    "Mode":{"Replicated":{"Replicas":1}},
    "TaskTemplate":{"Networks":[{"Target":"n1"}]}}}]"#;
const NETWORKS: &str = r#"[{"Id":"n1","Name":"net"}]"#;

impl Fake {
    fn tasks(&self) -> String {
        let ip = self.task_ip.lock().unwrap().clone();
        format!(
            r#"[{{"ID":"t1","ServiceID":"s1","DesiredState":"running","Status":{{"State":"running"}},
            "NetworksAttachments":[{{"Network":{{"ID":"n1"}},"Addresses":["{ip}/24"]}}]}}]"#
        )
    }

    async fn answer(
        self,
        req: Request<Incoming>,
    ) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
        let path = req.uri().path().to_string();
        let full = |s: String| Full::new(Bytes::from(s)).boxed();
        let body = match path
            .trim_start_matches(|c: char| c == '/' || c == 'v' || c == '.' || c.is_ascii_digit())
        {
            p if p.starts_with("services") => full(SERVICES.into()),
            p if p.starts_with("networks") => full(NETWORKS.into()),
            p if p.starts_with("tasks") => full(self.tasks()),
            // The event stream stays open and quiet.
            p if p.starts_with("events") => StreamBody::new(futures_util::stream::pending::<
                Result<Frame<Bytes>, Infallible>,
            >())
            .boxed(),
            _ => {
                let mut r = Response::new(full(r#"{"message":"not found"}"#.into()));
                *r.status_mut() = http::StatusCode::NOT_FOUND;
                return Ok(r);
            }
        };
        Ok(Response::new(body))
    }
}

/// Serves the fake engine at `path` until the returned set is dropped.
async fn serve(path: &Path, fake: Fake) -> JoinSet<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).unwrap();
    let mut set = JoinSet::new();
    set.spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let fake = fake.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req| fake.clone().answer(req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    set
}

fn servers(update: &ProviderUpdate) -> Vec<String> {
    let lb = update.config.http.services["web"]
        .load_balancer
        .as_ref()
        .unwrap();
    lb.servers.iter().map(|s| s.url.clone()).collect()
}

#[tokio::test]
async fn starts_without_the_engine_and_survives_its_restart() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("wharf-fake-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("docker.sock");
    let cfg = DockerProviderConfig {
        endpoint: format!("unix://{}", sock.display()),
        ..Default::default()
    };
    let (tx, mut rx) = mpsc::channel(16);
    let mut provider = DockerProvider::spawn(cfg, ProviderKind::Swarm, RuleSyntax::V3, tx);
    assert_eq!(provider.initial(Duration::from_millis(300)).await, None);

    // The engine appears: the configuration follows within the backoff.
    let fake = Fake {
        task_ip: Arc::new(Mutex::new("10.9.0.5".into())),
    };
    let engine = serve(&sock, fake.clone()).await;
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.provider, "swarm");
    assert_eq!(servers(&first), ["http://10.9.0.5:80"]);

    // The engine goes away: nothing is sent, the last configuration stays.
    drop(engine);
    std::fs::remove_file(&sock).unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .is_err());

    // It comes back with a new task: the provider reconnects and sends it.
    *fake.task_ip.lock().unwrap() = "10.9.0.6".into();
    let _engine = serve(&sock, fake).await;
    let next = tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(servers(&next), ["http://10.9.0.6:80"]);
    let _ = std::fs::remove_dir_all(&dir);
}
