//! The wharf deployment the swarm tests share: `deploy/wharf.yml` (plus
//! `tests/swarm/wharf-admin.yml`, which publishes the admin entrypoint) deployed as a
//! stack with the `wharf-test/wharf` image, on free host-mode ports.
//!
//! One stack serves every swarm test of a run. The tests take turns ([`enter`] hands
//! out one [`Suite`] at a time): they measure latencies, and one of them restarts the
//! Docker daemon. The stack is removed a few seconds after the last test is done (a
//! later test deploys a new one), and `tests/swarm/cleanup.sh` removes what a killed
//! run left behind: every name ends in the owning process's id.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::Command;

use super::docker::{docker, docker_env, docker_quiet_blocking};
use crate::client::{self, Reply};

/// How long a new stack gets until wharf's `/ping` answers.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the stack stays after the last test left, in case another one comes.
const LINGER: Duration = Duration::from_secs(3);

/// The environment variable that makes a missing Docker a failure: `1` (set by
/// `tests/run`) fails the swarm tests when Docker is unavailable, `0` skips them, and
/// without it they run when a swarm manager is reachable and are skipped otherwise.
pub const EXPECT_DOCKER: &str = "WHARF_E2E_DOCKER";

/// One test at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Tests that entered or wait to, and the deployment they share.
static SHARED: Mutex<Shared> = Mutex::new(Shared {
    leases: 0,
    stack: None,
    prepared: false,
});

/// Deployments made by this process (numbers their names).
static GENERATION: AtomicUsize = AtomicUsize::new(0);

struct Shared {
    leases: usize,
    stack: Option<Arc<Stack>>,
    prepared: bool,
}

fn shared() -> std::sync::MutexGuard<'static, Shared> {
    SHARED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$CARGO_TARGET_DIR/swarm` (or `target/swarm`): the figures file, dockerd's log.
pub fn state_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("swarm")
}

/// Prints a measured figure and appends it to `target/swarm/figures.txt`, which
/// `tests/run` prints after the tests (libtest hides the output of passing tests).
pub fn report(test: &str, line: &str) {
    eprintln!("[{test}] {line}");
    let dir = state_dir();
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut file) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("figures.txt"))
    {
        let _ = writeln!(file, "[{test}] {line}");
    }
}

/// A test's turn with the shared stack; the next test starts when it is dropped.
pub struct Suite {
    stack: Arc<Stack>,
    test: &'static str,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl std::ops::Deref for Suite {
    type Target = Stack;

    fn deref(&self) -> &Stack {
        &self.stack
    }
}

impl Suite {
    /// Prints and records a figure of this test; see [`report`].
    pub fn report(&self, line: &str) {
        report(self.test, line);
    }

    /// A name for this test's swarm resources: `wst-STEM-PID`.
    pub fn name(&self, stem: &str) -> String {
        format!("wst-{stem}-{}", std::process::id())
    }

    /// A host name for this test's routers: `STEM-PID.wst.test`.
    pub fn host(&self, stem: &str) -> String {
        format!("{stem}-{}.wst.test", std::process::id())
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::process::Command::new("docker")
                .args(["service", "logs", "--raw", "--tail", "60", &self.service()])
                .output()
                .map(|o| {
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                })
                .unwrap_or_else(|e| format!("(cannot run docker service logs: {e})"));
            eprintln!(
                "---- [{}] last lines of wharf's log ({}) ----\n{log}---- end ----",
                self.test,
                self.service()
            );
        }
        let mut shared = shared();
        shared.leases -= 1;
        if shared.leases == 0 {
            std::thread::spawn(linger_then_remove);
        }
    }
}

/// Removes the stack unless another test entered within [`LINGER`].
fn linger_then_remove() {
    std::thread::sleep(LINGER);
    let stack = {
        let mut shared = shared();
        if shared.leases > 0 {
            return;
        }
        shared.stack.take()
    };
    if let Some(stack) = stack {
        stack.remove_blocking();
    }
}

/// Waits for this test's turn and returns it with the shared stack, deploying it
/// first if needed. `None` (after printing why) when Docker is not available and
/// [`EXPECT_DOCKER`] does not demand it; a panic when it does.
pub async fn enter(test: &'static str) -> Option<Suite> {
    let expected = std::env::var(EXPECT_DOCKER).ok();
    if expected.as_deref() == Some("0") {
        eprintln!("SKIPPED {test}: {EXPECT_DOCKER}=0");
        return None;
    }
    if let Err(why) = swarm_manager().await {
        if expected.as_deref() == Some("1") {
            panic!("{EXPECT_DOCKER}=1 but Docker is not usable: {why}");
        }
        eprintln!(
            "SKIPPED {test}: Docker is not usable ({why}); \
             set {EXPECT_DOCKER}=1 (as tests/run does) to make this a failure"
        );
        return None;
    }
    shared().leases += 1;
    // Releases the lease if this future is dropped or panics before the turn is set up.
    struct Lease(bool);
    impl Drop for Lease {
        fn drop(&mut self) {
            if self.0 {
                shared().leases -= 1;
            }
        }
    }
    let mut lease = Lease(true);
    let turn = TURN.lock().await;
    let existing = shared().stack.clone();
    let stack = match existing {
        Some(stack) => stack,
        None => {
            prepare().await;
            let stack = Arc::new(
                Stack::deploy()
                    .await
                    .unwrap_or_else(|e| panic!("deploying wharf: {e}")),
            );
            shared().stack = Some(stack.clone());
            stack
        }
    };
    lease.0 = false;
    Some(Suite {
        stack,
        test,
        _turn: turn,
    })
}

/// `Ok` when the Docker CLI reaches an engine that is an active swarm manager.
async fn swarm_manager() -> Result<(), String> {
    let info = docker(&[
        "info",
        "--format",
        "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
    ])
    .await?;
    match info.trim() {
        "active true" => Ok(()),
        other => Err(format!(
            "the engine is not an active swarm manager (state and manager: {other})"
        )),
    }
}

/// Once per process: removes what killed runs left, builds the images from the wharf
/// binary under test and starts a new figures file.
async fn prepare() {
    if shared().prepared {
        return;
    }
    let _ = std::fs::remove_file(state_dir().join("figures.txt"));
    run_script("tests/swarm/cleanup.sh", &[]).await;
    run_script(
        "tests/swarm/build-images.sh",
        &[env!("CARGO_BIN_EXE_wharf")],
    )
    .await;
    shared().prepared = true;
}

/// Runs a script of the repository; panics with its output when it fails.
async fn run_script(script: &str, args: &[&str]) {
    let out = Command::new(repo().join(script))
        .args(args)
        .current_dir(repo())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port nothing listens on at any address a moment ago (host-mode ports bind all
/// interfaces).
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .expect("binding 0.0.0.0:0")
        .port()
}

/// What [`Stack::wait_status`] saw.
#[derive(Debug)]
pub struct Waited {
    /// Time until the awaited answer.
    pub elapsed: Duration,
    /// Its body, trimmed (a task's name for a 200 from the backend).
    pub body: String,
    /// Other answers before it, with their counts.
    pub before: BTreeMap<String, usize>,
}

impl Waited {
    /// The answers before the awaited one, for a report: `none` or `2x 502 ...; ...`.
    pub fn before_text(&self) -> String {
        if self.before.is_empty() {
            return "none".into();
        }
        self.before
            .iter()
            .map(|(answer, n)| format!("{n}x {answer}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The deployed wharf stack.
pub struct Stack {
    name: String,
    network: String,
    web: SocketAddr,
    admin: SocketAddr,
}

impl Stack {
    /// Deploys a new stack and waits until wharf answers `/ping`.
    async fn deploy() -> Result<Stack, String> {
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let stack = Stack {
            name: format!("wst-wharf{generation}-{pid}"),
            network: format!("wst-net{generation}-{pid}"),
            web: SocketAddr::from(([127, 0, 0, 1], free_port())),
            admin: SocketAddr::from(([127, 0, 0, 1], free_port())),
        };
        let env = [
            ("WHARF_IMAGE", "wharf-test/wharf:latest".to_owned()),
            ("WHARF_HTTP_PORT", stack.web.port().to_string()),
            ("WHARF_HTTPS_PORT", free_port().to_string()),
            ("WHARF_ADMIN_PORT", stack.admin.port().to_string()),
            ("WHARF_ADMIN_ADDRESS", ":8080".to_owned()),
            ("WHARF_NETWORK", stack.network.clone()),
            ("WHARF_LOG_LEVEL", "DEBUG".to_owned()),
        ];
        let repo = repo();
        let compose = repo.join("deploy/wharf.yml");
        let admin = repo.join("tests/swarm/wharf-admin.yml");
        let started = Instant::now();
        docker_env(
            &[
                "stack",
                "deploy",
                "--resolve-image",
                "never",
                "--compose-file",
                &compose.to_string_lossy(),
                "--compose-file",
                &admin.to_string_lossy(),
                &stack.name,
            ],
            &env,
        )
        .await?;
        let deadline = Instant::now() + DEPLOY_TIMEOUT;
        loop {
            if let Ok(reply) = client::get(stack.admin, "localhost", "/ping").await {
                if reply.status == 200 {
                    break;
                }
            }
            if Instant::now() >= deadline {
                let tasks = docker(&["service", "ps", "--no-trunc", &stack.service()])
                    .await
                    .unwrap_or_else(|e| e);
                return Err(format!(
                    "wharf's /ping did not answer within {DEPLOY_TIMEOUT:?}\ntasks:\n{tasks}\nlog:\n{}",
                    stack.logs().await
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        report(
            "stack",
            &format!(
                "deployed {} in {:.1}s: web {}, admin {}",
                stack.name,
                started.elapsed().as_secs_f64(),
                stack.web,
                stack.admin
            ),
        );
        Ok(stack)
    }

    /// Removes the stack and its network (blocking; used when no test is left).
    fn remove_blocking(&self) {
        docker_quiet_blocking(&["stack", "rm", &self.name]);
        // The network goes once wharf's containers have stopped.
        for _ in 0..150 {
            let gone = std::process::Command::new("docker")
                .args(["network", "inspect", &self.network])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .map(|s| !s.success())
                .unwrap_or(true);
            if gone {
                return;
            }
            docker_quiet_blocking(&["network", "rm", &self.network]);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The overlay network apps join (`WHARF_NETWORK`).
    pub fn network(&self) -> &str {
        &self.network
    }

    /// wharf's `web` entrypoint, published on the host.
    pub fn web(&self) -> SocketAddr {
        self.web
    }

    /// wharf's `web` entrypoint at this machine's first non-loopback IPv4 address, the
    /// way clients from elsewhere reach it: the kernel forwards such connections to
    /// the container (iptables), while connections to 127.0.0.1 go through
    /// `docker-proxy`, a process of the Docker daemon that dies with it. Falls back to
    /// [`Stack::web`] when there is no such address.
    pub fn web_external(&self) -> SocketAddr {
        let addresses = std::process::Command::new("hostname")
            .arg("-I")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        addresses
            .split_whitespace()
            .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
            .find(|ip| !ip.is_loopback())
            .map(|ip| SocketAddr::from((ip, self.web.port())))
            .unwrap_or(self.web)
    }

    /// The swarm service running wharf: `STACK_wharf`.
    pub fn service(&self) -> String {
        format!("{}_wharf", self.name)
    }

    /// `GET path` through wharf with `Host: host`, over a new connection.
    pub async fn get(&self, host: &str, path: &str) -> anyhow::Result<Reply> {
        client::get(self.web, host, path).await
    }

    /// Polls `GET /` with `Host: host` every 20 ms until it answers 200 (see
    /// [`Stack::wait_status`]).
    pub async fn wait_routed(&self, host: &str, timeout: Duration) -> Result<Waited, String> {
        self.wait_status(host, 200, timeout).await
    }

    /// Polls `GET /` with `Host: host` every 20 ms until it answers `status`: how long
    /// that took, the body, and the other answers seen meanwhile; the last answer
    /// after `timeout`.
    pub async fn wait_status(
        &self,
        host: &str,
        status: u16,
        timeout: Duration,
    ) -> Result<Waited, String> {
        let started = Instant::now();
        let mut before = BTreeMap::new();
        loop {
            let other = match self.get(host, "/").await {
                Ok(reply) if reply.status == status => {
                    return Ok(Waited {
                        elapsed: started.elapsed(),
                        body: reply.text().trim().to_owned(),
                        before,
                    });
                }
                Ok(reply) => format!("{} {}", reply.status, reply.text().trim()),
                Err(e) => format!("{e:#}"),
            };
            if started.elapsed() >= timeout {
                return Err(format!(
                    "Host {host} did not answer {status} within {timeout:?}; last: {other}"
                ));
            }
            *before.entry(other).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET path` on the admin entrypoint, as JSON.
    pub async fn api(&self, path: &str) -> Result<Value, String> {
        let reply = client::get(self.admin, "localhost", path)
            .await
            .map_err(|e| format!("GET {path}: {e:#}"))?;
        if reply.status != 200 {
            return Err(format!("GET {path}: {} {}", reply.status, reply.text()));
        }
        serde_json::from_slice(&reply.body).map_err(|e| format!("GET {path}: {e}"))
    }

    /// wharf's log so far (`docker service logs`, stdout and stderr).
    pub async fn logs(&self) -> String {
        let out = Command::new("docker")
            .args(["service", "logs", "--raw", &self.service()])
            .kill_on_drop(true)
            .output()
            .await;
        match out {
            Ok(out) => format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => format!("(cannot run docker service logs: {e})"),
        }
    }

    /// The id of wharf's running container on this node.
    pub async fn wharf_container(&self) -> String {
        docker(&[
            "ps",
            "--quiet",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.swarm.service.name={}", self.service()),
        ])
        .await
        .unwrap_or_default()
        .trim()
        .to_owned()
    }
}
