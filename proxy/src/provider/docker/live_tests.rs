//! Against a real engine, when one is here: a swarm manager reachable at
//! `/var/run/docker.sock`, the `docker` command, and either the image
//! `wharf-dock-test-busybox:latest` or Debian's `/bin/busybox` to build it from.
//! Without them each test says why on stderr and passes without checking anything.
//! Everything created is named `wharf-dock-test-<pid>-…` and removed at the end.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::*;
use crate::config::dynamic::RuleSyntax;
use crate::provider::docker::engine::Engine;

const IMAGE: &str = "wharf-dock-test-busybox:latest";

fn docker(args: &[&str]) -> Option<String> {
    let out = Command::new("docker").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Why the live tests cannot run here, if they cannot.
fn unavailable() -> Option<&'static str> {
    if !std::path::Path::new("/var/run/docker.sock").exists() {
        return Some("no /var/run/docker.sock");
    }
    let state = docker(&[
        "info",
        "--format",
        "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
    ]);
    match state.as_deref() {
        None => return Some("docker CLI missing or engine not answering"),
        Some("active true") => {}
        Some(_) => return Some("engine is not an active swarm manager"),
    }
    if docker(&["image", "inspect", IMAGE]).is_some() {
        return None;
    }
    if !std::path::Path::new("/bin/busybox").exists() {
        return Some("no test image and no /bin/busybox to build it");
    }
    let dir = std::env::temp_dir().join(format!("wharf-dock-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    std::fs::copy("/bin/busybox", dir.join("busybox")).ok()?;
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\",\"--install\",\"-s\",\"/bin\"]\n",
    )
    .ok()?;
    let built = docker(&["build", "-q", "-t", IMAGE, &dir.display().to_string()]);
    let _ = std::fs::remove_dir_all(&dir);
    built.is_none().then_some("cannot build the test image")
}

/// Removes the service and network when dropped.
struct Cleanup(Vec<(&'static str, String)>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for (kind, name) in self.0.iter().rev() {
            // A network stays in use until the removed service's tasks are gone.
            for _ in 0..80 {
                if docker(&[kind, "rm", name]).is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovers_a_new_swarm_service_and_its_task_ip() {
    if let Some(why) = unavailable() {
        eprintln!("skipping the live Docker test: {why}");
        return;
    }
    let prefix = format!("wharf-dock-test-{}", std::process::id());
    let net = format!("{prefix}-net");
    let svc = format!("{prefix}-web");
    let mut cleanup = Cleanup(Vec::new());
    docker(&["network", "create", "-d", "overlay", "--attachable", &net]).unwrap();
    cleanup.0.push(("network", net.clone()));

    let cfg = DockerProviderConfig::default();
    let (tx, mut rx) = mpsc::channel(16);
    let mut provider = DockerProvider::spawn(cfg.clone(), ProviderKind::Swarm, RuleSyntax::V3, tx);
    provider.initial(Duration::from_secs(5)).await.unwrap();

    let rule = format!("traefik.http.routers.{prefix}.rule=Host(`dock.test`)");
    let port = format!("traefik.http.services.{prefix}.loadbalancer.server.port=8000");
    docker(&[
        "service",
        "create",
        "-q",
        "--detach",
        "--name",
        &svc,
        "--network",
        &net,
        "--label",
        &rule,
        "--label",
        &port,
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "8000",
    ])
    .unwrap();
    let created = Instant::now();
    cleanup.0.push(("service", svc.clone()));

    let url = loop {
        let update = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("the service appears within 30 s")
            .unwrap();
        let lb = update
            .config
            .http
            .services
            .get(&prefix)
            .and_then(|s| s.load_balancer.clone());
        if let Some(server) = lb.and_then(|lb| lb.servers.first().cloned()) {
            break server.url;
        }
    };
    let latency = created.elapsed();
    let routed_at = std::time::SystemTime::now();
    eprintln!("service create -> routed: {latency:?} ({url})");

    // The address is the task's own on the overlay network.
    let engine = Engine::new(&cfg).unwrap();
    let started = Instant::now();
    let listing = engine.list(Mode::Swarm).await.unwrap();
    eprintln!("full swarm listing: {:?}", started.elapsed());
    let w = listing.workloads.iter().find(|w| w.name == svc).unwrap();
    assert_eq!(w.networks, [net.as_str()]);
    let ip = w.endpoints[0].addresses[&net];
    let task = docker(&[
        "service",
        "ps",
        "-q",
        "--filter",
        "desired-state=running",
        &svc,
    ])
    .unwrap();
    let addrs = docker(&[
        "inspect",
        &task,
        "--format",
        "{{range .NetworksAttachments}}{{.Addresses}}{{end}}",
    ])
    .unwrap();
    assert!(addrs.contains(&format!("{ip}/")), "{addrs} vs {ip}");
    let running = docker(&[
        "inspect",
        &task,
        "--format",
        "{{.Status.Timestamp.Unix}} {{.Status.Timestamp.Nanosecond}}",
    ]);
    if let Some((secs, nanos)) = running.as_deref().and_then(|t| t.split_once(' ')) {
        let running =
            std::time::UNIX_EPOCH + Duration::new(secs.parse().unwrap(), nanos.parse().unwrap());
        let lag = routed_at.duration_since(running).unwrap_or_default();
        eprintln!("task running -> routed: {lag:?}");
    }
    assert_eq!(url, format!("http://{ip}:8000"));
    // The engine may be shared: only this test's service is checked.
    let errors = provider.errors();
    assert!(!errors.iter().any(|i| i.workload == svc), "{errors:?}");

    // Removing the service removes its routes.
    drop(cleanup);
    let gone = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let update = rx.recv().await.unwrap();
            if !update.config.http.services.contains_key(&prefix) {
                break;
            }
        }
    })
    .await;
    assert!(gone.is_ok(), "the service's routes go away");
}
