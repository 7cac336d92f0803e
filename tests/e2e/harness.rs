//! The [`Wharf`] fixture: one `wharf` process with its own configuration directory,
//! free ports and log file, plus polling helpers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::fs;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::client::{self, Reply};

/// How long wharf gets to answer `/ping` after being spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a new dynamic configuration gets to show up in the admin API.
const LIVE_TIMEOUT: Duration = Duration::from_secs(15);

/// Attempts to start wharf; another attempt (with new ports) follows an early exit,
/// in case a port picked as free was taken in between.
const START_ATTEMPTS: usize = 3;

/// Polls `check` every 20 ms until it returns `Ok`, and returns that value; the last
/// `Err` after `timeout`.
pub async fn poll_until<T, E, F, Fut>(timeout: Duration, mut check: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return Ok(value),
            Err(last) if Instant::now() >= deadline => return Err(last),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Like [`poll_until`], but panics with `what` and the last `Err` on timeout.
pub async fn eventually<T, E, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    E: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    poll_until(timeout, check).await.unwrap_or_else(|last| {
        panic!("timed out after {timeout:?} waiting for {what}; last: {last:?}")
    })
}

/// Returns a loopback port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// A `http://127.0.0.1:PORT` URL where nothing listens (the port was just released).
pub fn closed_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// Creates a fresh, unique directory under the system temp directory.
pub fn unique_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "wharf-e2e-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).expect("creating the test directory");
    dir
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory,
/// then a rename over the target.
pub fn write_atomically(path: &Path, contents: &str) {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let tmp = path.with_extension(format!("tmp{}", COUNTER.fetch_add(1, Ordering::Relaxed)));
    fs::write(&tmp, contents).expect("writing the temporary file");
    fs::rename(&tmp, path).expect("renaming the temporary file into place");
}

/// Renders a JSON value as YAML (the format Traefik users write).
pub fn to_yaml(value: &Value) -> String {
    serde_yaml_ng::to_string(value).expect("serialising YAML")
}

/// A router on the `web` entrypoint: `{rule, service, entryPoints: [web]}`.
pub fn router(rule: &str, service: &str) -> Value {
    json!({ "rule": rule, "service": service, "entryPoints": ["web"] })
}

/// A load-balancer service over the given server URLs.
pub fn service(urls: &[&str]) -> Value {
    let servers: Vec<Value> = urls.iter().map(|u| json!({ "url": u })).collect();
    json!({ "loadBalancer": { "servers": servers } })
}

/// Static settings a test may change; the rest of the static configuration is fixed.
#[derive(Debug, Clone)]
pub struct Options {
    /// `serversTransport.forwardingTimeouts.responseHeaderTimeout`.
    pub response_header_timeout: String,
    /// `serversTransport.forwardingTimeouts.dialTimeout`.
    pub dial_timeout: String,
    /// `entryPoints.web.transport.lifeCycle.graceTimeOut`.
    pub grace_timeout: String,
    /// `entryPoints.web.forwardedHeaders.trustedIPs`.
    pub trusted_ips: Vec<String>,
    /// `log.level`.
    pub log_level: String,
    /// Start as `wharf proxy --config FILE` instead of `wharf --config FILE`.
    pub proxy_subcommand: bool,
    /// Configure the file provider on the dynamic file (default true).
    pub file_provider: bool,
    /// Merged over the static configuration (objects key by key), e.g. a `cluster`
    /// or `certStore` section.
    pub static_extra: Value,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            response_header_timeout: "5s".into(),
            dial_timeout: "2s".into(),
            grace_timeout: "10s".into(),
            trusted_ips: vec!["127.0.0.1/32".into()],
            log_level: "DEBUG".into(),
            proxy_subcommand: false,
            file_provider: true,
            static_extra: Value::Null,
        }
    }
}

/// A running `wharf` process. Killed (SIGKILL) when dropped; when the test is failing
/// at that point, its log is printed.
pub struct Wharf {
    child: Option<Child>,
    dir: PathBuf,
    dynamic_path: PathBuf,
    log_path: PathBuf,
    web: SocketAddr,
    admin: SocketAddr,
}

impl Wharf {
    /// Starts wharf with default [`Options`] and the given dynamic configuration, and
    /// waits until `/ping` answers and the configuration is live.
    pub async fn start(dynamic: Value) -> Wharf {
        Self::start_with(Options::default(), dynamic).await
    }

    /// Starts wharf with `options` and the given dynamic configuration, and waits
    /// until `/ping` answers and the configuration is live.
    pub async fn start_with(options: Options, dynamic: Value) -> Wharf {
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let mut wharf = Self::spawn(&options, &to_yaml(&dynamic));
            match wharf.wait_ready().await {
                Ok(()) => {
                    wharf.wait_live(&dynamic).await;
                    return wharf;
                }
                Err(log) => last_log = log,
            }
        }
        panic!("wharf did not start in {START_ATTEMPTS} attempts; last log:\n{last_log}");
    }

    /// Writes the configuration files and spawns the process.
    fn spawn(options: &Options, dynamic_yaml: &str) -> Wharf {
        let dir = unique_dir();
        let dynamic_path = dir.join("dynamic.yml");
        let static_path = dir.join("static.yml");
        let log_path = dir.join("wharf.log");
        let web = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut static_config = json!({
            "entryPoints": {
                "web": {
                    "address": web.to_string(),
                    "transport": { "lifeCycle": { "graceTimeOut": options.grace_timeout } },
                    "forwardedHeaders": { "trustedIPs": options.trusted_ips },
                },
                "traefik": { "address": admin.to_string() },
            },
            "serversTransport": {
                "forwardingTimeouts": {
                    "responseHeaderTimeout": options.response_header_timeout,
                    "dialTimeout": options.dial_timeout,
                },
            },
            "providers": {
                "file": { "filename": dynamic_path.to_string_lossy(), "watch": true },
            },
            "api": { "insecure": true },
            "ping": {},
            "log": { "level": options.log_level },
        });
        if !options.file_provider {
            static_config["providers"] = json!({});
        }
        merge(&mut static_config, &options.static_extra);
        write_atomically(&dynamic_path, dynamic_yaml);
        fs::write(&static_path, to_yaml(&static_config)).expect("writing static.yml");
        let log = fs::File::create(&log_path).expect("creating the log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_wharf"));
        if options.proxy_subcommand {
            command.arg("proxy");
        }
        let child = command
            .arg("--config")
            .arg(&static_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log)
            .spawn()
            .expect("spawning wharf");
        Wharf {
            child: Some(child),
            dir,
            dynamic_path,
            log_path,
            web,
            admin,
        }
    }

    /// Polls `/ping` until it answers 200; `Err(log)` if the process exits first or
    /// the timeout passes.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.try_wait() {
                return Err(format!("wharf exited early with {status}\n{}", self.log()));
            }
            if let Ok(reply) = client::get(self.admin, "localhost", "/ping").await {
                if reply.status == 200 {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "/ping did not answer 200 within {READY_TIMEOUT:?}\n{}",
                    self.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Address of the `web` entrypoint.
    pub fn web(&self) -> SocketAddr {
        self.web
    }

    /// Address of the admin (`traefik`) entrypoint.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// Process id of wharf.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("wharf is running")
    }

    /// Everything wharf printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `GET path` on the web entrypoint with `Host: host`, over a new connection.
    pub async fn get(&self, host: &str, path: &str) -> Reply {
        client::get(self.web, host, path)
            .await
            .unwrap_or_else(|e| panic!("GET {host}{path} through wharf failed: {e:#}"))
    }

    /// `GET path` on the admin entrypoint, parsed as JSON; panics unless it is 200.
    pub async fn api(&self, path: &str) -> Value {
        let reply = client::get(self.admin, "localhost", path)
            .await
            .unwrap_or_else(|e| panic!("GET {path} on the admin entrypoint failed: {e:#}"));
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.text());
        reply.json()
    }

    /// Replaces the dynamic configuration (atomically) and waits until the admin API
    /// shows it.
    pub async fn set_dynamic(&self, dynamic: &Value) {
        write_atomically(&self.dynamic_path, &to_yaml(dynamic));
        self.wait_live(dynamic).await;
    }

    /// Replaces the dynamic file with arbitrary text (atomically), without waiting.
    pub fn write_dynamic_raw(&self, text: &str) {
        write_atomically(&self.dynamic_path, text);
    }

    /// Waits until the admin API lists exactly the routers of `dynamic` (names and
    /// rules, from the file provider) and, for each of its load-balancer services, the
    /// same server URLs.
    pub async fn wait_live(&self, dynamic: &Value) {
        let want_routers = expected_routers(dynamic);
        let want_services = expected_services(dynamic);
        eventually("the dynamic configuration to be live", LIVE_TIMEOUT, || {
            let want_routers = &want_routers;
            let want_services = &want_services;
            async move {
                let routers = self.api_state("/api/http/routers").await?;
                let have_routers = file_routers(&routers);
                if &have_routers != want_routers {
                    return Err(format!("routers {have_routers:?}, want {want_routers:?}"));
                }
                let services = self.api_state("/api/http/services").await?;
                let have_services = file_services(&services);
                for (name, urls) in want_services {
                    match have_services.get(name) {
                        None => return Err(format!("service {name} missing: {services}")),
                        Some(Some(have)) if have != urls => {
                            return Err(format!("service {name} has {have:?}, want {urls:?}"))
                        }
                        Some(_) => {}
                    }
                }
                Ok(())
            }
        })
        .await;
    }

    /// One admin API read for polling: `Err` describes what went wrong.
    async fn api_state(&self, path: &str) -> Result<Value, String> {
        let reply = client::get(self.admin, "localhost", path)
            .await
            .map_err(|e| format!("GET {path}: {e:#}"))?;
        if reply.status != 200 {
            return Err(format!("GET {path}: {} {}", reply.status, reply.text()));
        }
        serde_json::from_slice(&reply.body).map_err(|e| format!("GET {path}: {e}"))
    }

    /// Polls the log until `pred` holds for it.
    pub async fn wait_for_log(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) {
        eventually(what, timeout, || async {
            let log = self.log();
            if pred(&log) {
                Ok(())
            } else {
                Err("not in the log yet")
            }
        })
        .await
    }

    /// Sends SIGTERM to wharf (with `kill -TERM`).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// The exit status, if wharf has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("checking the child"))
    }

    /// Waits up to `timeout` for wharf to exit; `None` if it is still running.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET path` with `Host: host` on the web entrypoint; asserts a 200 answer from an
    /// echo backend and returns its JSON.
    pub async fn echo(&self, host: &str, path: &str) -> Value {
        let reply = self.get(host, path).await;
        assert_eq!(
            reply.status,
            200,
            "GET {path} with Host {host}: {}",
            reply.text()
        );
        reply.json()
    }

    /// wharf's resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }
}

/// Merges `extra` into `base`: objects key by key, anything else replaces.
fn merge(base: &mut Value, extra: &Value) {
    match (base, extra) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(extra)) => {
            for (key, value) in extra {
                merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, extra) => *base = extra.clone(),
    }
}

/// Resident set size of process `pid` in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status =
        fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

impl Drop for Wharf {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- wharf log ({}) ----\n{}---- end of wharf log ----",
                self.log_path.display(),
                self.log()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `name@file -> rule` for every router in a dynamic configuration.
fn expected_routers(dynamic: &Value) -> BTreeMap<String, String> {
    dynamic["http"]["routers"]
        .as_object()
        .map(|routers| {
            routers
                .iter()
                .map(|(name, r)| {
                    let rule = r["rule"].as_str().unwrap_or_default().to_owned();
                    (format!("{name}@file"), rule)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `name@file -> server URLs` for every load-balancer service in a dynamic configuration.
fn expected_services(dynamic: &Value) -> BTreeMap<String, BTreeSet<String>> {
    dynamic["http"]["services"]
        .as_object()
        .map(|services| {
            services
                .iter()
                .filter_map(|(name, s)| {
                    let servers = s["loadBalancer"]["servers"].as_array()?;
                    let urls = servers
                        .iter()
                        .filter_map(|s| s["url"].as_str().map(str::to_owned))
                        .collect();
                    Some((format!("{name}@file"), urls))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `name -> rule` for the file provider's routers in an `/api/http/routers` answer.
fn file_routers(api: &Value) -> BTreeMap<String, String> {
    api.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let name = r["name"].as_str()?;
            name.ends_with("@file").then(|| {
                let rule = r["rule"].as_str().unwrap_or_default().to_owned();
                (name.to_owned(), rule)
            })
        })
        .collect()
}

/// `name -> server URLs (when listed)` for the file provider's services in an
/// `/api/http/services` answer.
fn file_services(api: &Value) -> BTreeMap<String, Option<BTreeSet<String>>> {
    api.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let name = s["name"].as_str()?;
            if !name.ends_with("@file") {
                return None;
            }
            let urls = s["loadBalancer"]["servers"].as_array().map(|servers| {
                servers
                    .iter()
                    .filter_map(|s| s["url"].as_str().map(str::to_owned))
                    .collect()
            });
            Some((name.to_owned(), urls))
        })
        .collect()
}
