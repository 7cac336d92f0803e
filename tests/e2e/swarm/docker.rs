//! The `docker` command line, and app services for wharf to route to: swarm services of
//! the `wharf-test/backend` image (busybox httpd answering with its task's name).

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::process::Command;

use super::stack::Stack;

/// The app image, built by `tests/swarm/build-images.sh`.
pub const BACKEND_IMAGE: &str = "wharf-test/backend:latest";

/// Runs `docker ARGS` with the extra environment `env`; its stdout, or an error with
/// the command and its stderr.
pub async fn docker_env(args: &[&str], env: &[(&str, String)]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run docker {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "docker {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `docker ARGS`; its stdout, or an error with the command and its stderr.
pub async fn docker(args: &[&str]) -> Result<String, String> {
    docker_env(args, &[]).await
}

/// Runs `docker ARGS` and panics with the error when it fails.
pub async fn docker_ok(args: &[&str]) -> String {
    docker(args).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `docker ARGS` without an async runtime (for `Drop`), ignoring failures.
pub fn docker_quiet_blocking(args: &[&str]) {
    let _ = std::process::Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// How a test's app service is created.
#[derive(Debug, Clone)]
pub struct AppSpec {
    /// Service labels (`deploy.labels`), where wharf reads Traefik's labels.
    pub labels: Vec<(String, String)>,
    /// Number of replicas.
    pub replicas: u32,
    /// Wait until the tasks run (`--detach=false`, with a 100 ms update monitor so
    /// the command returns as soon as they do) instead of returning at once.
    pub wait: bool,
}

impl AppSpec {
    /// `replicas` tasks with `labels`, created without waiting.
    pub fn with_labels(labels: impl IntoIterator<Item = (String, String)>, replicas: u32) -> Self {
        Self {
            labels: labels.into_iter().collect(),
            replicas,
            wait: false,
        }
    }

    /// `replicas` tasks of a service routed with v3 labels: router and service named
    /// `name`, ``Host(`host`)``, port 80.
    pub fn routed(name: &str, host: &str, replicas: u32) -> Self {
        Self::with_labels(
            [
                ("traefik.enable".to_owned(), "true".to_owned()),
                (
                    format!("traefik.http.routers.{name}.rule"),
                    format!("Host(`{host}`)"),
                ),
                (
                    format!("traefik.http.services.{name}.loadbalancer.server.port"),
                    "80".to_owned(),
                ),
            ],
            replicas,
        )
    }
}

/// A swarm service of the backend image on the stack's network, removed when dropped
/// (also when the test fails).
pub struct App {
    name: String,
}

impl App {
    /// Creates the service `name` (see [`Stack::name`]) from `spec`.
    pub async fn create(stack: &Stack, name: &str, spec: &AppSpec) -> App {
        let replicas = spec.replicas.to_string();
        let mut args: Vec<String> = [
            "service",
            "create",
            "--quiet",
            "--no-resolve-image",
            "--name",
            name,
            "--network",
            stack.network(),
            "--replicas",
            &replicas,
            // Unique per task, also across updates: `NAME.SLOT.TASKID`.
            "--env",
            "TASK_NAME={{.Task.Name}}",
            "--stop-grace-period",
            "10s",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if spec.wait {
            args.extend(["--detach=false", "--update-monitor", "100ms"].map(String::from));
        } else {
            args.push("--detach".into());
        }
        for (key, value) in &spec.labels {
            args.push("--label".into());
            args.push(format!("{key}={value}"));
        }
        args.push(BACKEND_IMAGE.into());
        let app = App {
            name: name.to_owned(),
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker_ok(&args).await;
        app
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Names of the tasks whose state is `running` (what the backend answers with).
    pub async fn running_tasks(&self) -> BTreeSet<String> {
        let out = docker_ok(&[
            "service",
            "ps",
            &self.name,
            "--no-trunc",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Name}}.{{.ID}} {{.CurrentState}}",
        ])
        .await;
        out.lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("Running"))
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    }

    /// When Docker saw the task `task` (a name from [`App::running_tasks`]) reach its
    /// current state, as a time since the Unix epoch.
    pub async fn task_state_time(&self, task: &str) -> Duration {
        let id = task.rsplit('.').next().unwrap_or(task);
        let nanos = docker_ok(&["inspect", "--format", "{{.Status.Timestamp.UnixNano}}", id]).await;
        let nanos: u64 = nanos
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("task {task}: timestamp {nanos:?}: {e}"));
        Duration::from_nanos(nanos)
    }

    /// `docker service scale NAME=replicas`, without waiting for the tasks.
    pub async fn scale(&self, replicas: u32) {
        docker_ok(&[
            "service",
            "scale",
            "--detach",
            &format!("{}={replicas}", self.name),
        ])
        .await;
    }

    /// `docker service rm`; dropping the value afterwards does nothing more.
    pub async fn remove(mut self) {
        docker_ok(&["service", "rm", &self.name]).await;
        self.name.clear();
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            docker_quiet_blocking(&["service", "rm", &self.name]);
        }
    }
}

/// The current time as a duration since the Unix epoch (comparable with
/// [`App::task_state_time`]: both come from this machine's clock).
pub fn now_since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
