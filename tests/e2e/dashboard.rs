//! The dashboard at `/dashboard/`, rendered by a real headless Chromium: what the
//! page shows, a screenshot (`target/dashboard/dashboard.png`), and live updates
//! driven over the DevTools protocol. Chromium is required: `tests/run` installs it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::backends::Backend;
use crate::client;
use crate::harness::{closed_url, eventually, router, service, Wharf};

/// The Chromium binary (Debian's `chromium` package).
const CHROMIUM: &str = "chromium";

/// How long one headless Chromium run may take on a loaded machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the live page gets to show a change.
const LIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// The disabled router's rule: `Nope` is not a matcher.
const BAD_RULE: &str = "Host(`oops.test`) && Nope(`x`)";

/// Fails the test (never skips it) when Chromium is missing.
async fn require_chromium() {
    let version = Command::new(CHROMIUM).arg("--version").output().await;
    match version {
        Ok(out) if out.status.success() => {
            eprintln!("using {}", String::from_utf8_lossy(&out.stdout).trim())
        }
        other => panic!(
            "`{CHROMIUM}` is needed for the dashboard test and did not run ({other:?}); \
             tests/run installs it (apt-get install chromium)"
        ),
    }
}

/// A fresh Chromium profile directory, removed when dropped.
struct Profile(PathBuf);

impl Profile {
    fn new(tag: &str) -> Profile {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "wharf-chromium-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("creating the Chromium profile directory");
        Profile(dir)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Headless Chromium with the flags every run uses and its own fresh profile.
fn chromium(profile: &Profile) -> Command {
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.0.display()))
    .stdin(Stdio::null())
    .kill_on_drop(true);
    cmd
}

/// Runs Chromium to completion with `args` after the common flags; returns stdout.
async fn run_chromium(args: &[String]) -> String {
    let profile = Profile::new("run");
    let mut cmd = chromium(&profile);
    cmd.args(args);
    let started = Instant::now();
    let out = tokio::time::timeout(RUN_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("chromium {args:?} did not finish within {RUN_TIMEOUT:?}"))
        .expect("running chromium");
    eprintln!("chromium {args:?} took {:?}", started.elapsed());
    assert!(
        out.status.success(),
        "chromium {args:?} failed with {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `text` as it appears in serialised HTML text content.
fn html_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\u{a0}', "&nbsp;")
}

/// The first error of the router called `name` in `/api/http/routers`.
fn router_error(routers: &Value, name: &str) -> String {
    routers
        .as_array()
        .and_then(|list| list.iter().find(|r| r["name"] == name))
        .and_then(|r| r["error"][0].as_str())
        .unwrap_or_else(|| panic!("{name} has no error in {routers}"))
        .to_owned()
}

/// Where the screenshot goes: `target/dashboard/dashboard.png` (in `CARGO_TARGET_DIR`).
fn screenshot_path() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("dashboard/dashboard.png")
}

/// Width and height from a PNG's IHDR chunk; panics unless `png` is a PNG.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "not a PNG ({} bytes)",
        png.len()
    );
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_the_configuration_and_follows_changes() {
    require_chromium().await;
    let up = Backend::echo("up").await;
    let down = closed_url();
    let mut app = service(&[&up.url(), &down]);
    app["loadBalancer"]["healthCheck"] =
        json!({ "path": "/", "interval": "300ms", "timeout": "1s" });
    let first = json!({ "http": {
        "routers": {
            "good": router("Host(`good.test`)", "app"),
            "broken": router(BAD_RULE, "app"),
        },
        "services": { "app": app },
    }});
    let wharf = Wharf::start(first.clone()).await;
    let admin = wharf.admin();

    // The plain redirects, as in Traefik.
    for path in ["/", "/dashboard"] {
        let reply = client::get(admin, "localhost", path)
            .await
            .expect("admin request");
        assert_eq!(reply.status, 302, "{path}: {}", reply.text());
    }

    let error = router_error(&wharf.api("/api/http/routers").await, "broken@file");
    eventually(
        "the health check to mark the closed server DOWN",
        LIVE_TIMEOUT,
        || async {
            let services = wharf.api("/api/http/services").await;
            let status = services
                .as_array()
                .and_then(|l| l.iter().find(|s| s["name"] == "app@file"))
                .map(|s| s["serverStatus"].clone())
                .unwrap_or_default();
            if status[up.url()] == "UP" && status[down.as_str()] == "DOWN" {
                Ok(())
            } else {
                Err(status)
            }
        },
    )
    .await;

    // 1. The rendered DOM.
    let url = format!("http://{admin}/dashboard/");
    let dom = run_chromium(&[
        "--virtual-time-budget=5000".into(),
        "--dump-dom".into(),
        url.clone(),
    ])
    .await;
    let shown = |what: &str, needle: &str| {
        assert!(
            dom.contains(needle),
            "the dashboard shows {what} ({needle:?}); DOM:\n{dom}"
        );
    };
    shown("the working router", ">good@file<");
    shown("the disabled router", ">broken@file<");
    shown("the router's error", &html_text(&error));
    shown("the service", ">app@file<");
    shown(
        "the healthy server",
        &format!(">UP</span> <code>{}</code>", up.url()),
    );
    shown(
        "the unreachable server",
        &format!(">DOWN</span> <code>{down}</code>"),
    );
    shown(
        "the web entrypoint",
        &format!("<code>{}</code>", wharf.web()),
    );
    shown("the file provider", ">file<");
    shown("the live indicator", "live · updated");
    assert!(
        !dom.contains("API unreachable"),
        "the API is reachable; DOM:\n{dom}"
    );

    // 2. A screenshot.
    let png_path = screenshot_path();
    std::fs::create_dir_all(png_path.parent().expect("a parent directory"))
        .expect("creating target/dashboard");
    let _ = std::fs::remove_file(&png_path);
    run_chromium(&[
        "--virtual-time-budget=5000".into(),
        format!("--screenshot={}", png_path.display()),
        "--window-size=1280,900".into(),
        url.clone(),
    ])
    .await;
    let png = std::fs::read(&png_path).expect("reading the screenshot");
    assert_eq!(png_size(&png), (1280, 900), "screenshot size");
    // A blank page of that size compresses to a few KiB; text and tables do not.
    assert!(
        png.len() > 20_000,
        "the screenshot looks empty ({} bytes)",
        png.len()
    );
    eprintln!("screenshot: {} ({} bytes)", png_path.display(), png.len());

    // 3. Live: one page, never reloaded, follows a configuration change and then
    // says when the API is gone.
    let mut browser = Devtools::launch().await;
    let page = browser.open(&url).await;
    browser.wait_for_text(&page, "good@file").await;
    browser.eval(&page, "window.wharfTestMarker = 42").await;

    let mut second = first.clone();
    second["http"]["routers"]["fresh"] = router("Host(`fresh.test`)", "app");
    let changed = Instant::now();
    wharf.set_dynamic(&second).await;
    browser.wait_for_text(&page, "fresh@file").await;
    eprintln!(
        "the page showed the new router {:?} after the change",
        changed.elapsed()
    );
    assert_eq!(
        browser.eval(&page, "window.wharfTestMarker").await,
        json!(42),
        "the page picked up the change without reloading"
    );

    // The filter box narrows the routers, and keeps doing so across refreshes.
    browser
        .eval(
            &page,
            "(() => { const f = document.getElementById('router-filter'); \
             f.value = 'FRESH'; f.dispatchEvent(new Event('input')); })()",
        )
        .await;
    for _ in 0..2 {
        let routers = browser
            .eval(&page, "document.getElementById('routers').innerText")
            .await;
        let routers = routers.as_str().unwrap_or_default();
        assert!(
            routers.contains("fresh@file")
                && !routers.contains("good@file")
                && !routers.contains("broken@file"),
            "the filter leaves only the matching router:\n{routers}"
        );
        let count = browser
            .eval(&page, "document.getElementById('router-count').innerText")
            .await;
        assert_eq!(count, json!("1 of 3"));
        // Past at least one refresh (every 2 s).
        tokio::time::sleep(Duration::from_secs(3)).await;
    }

    drop(wharf);
    browser.wait_for_text(&page, "API unreachable").await;
    let text = browser.text(&page).await;
    assert!(
        text.contains("fresh@file"),
        "the last data stays on screen while the API is down:\n{text}"
    );
}

/// Chromium driven over the DevTools protocol (one WebSocket to the browser, with
/// flattened sessions for its pages).
struct Devtools {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    child: Child,
    profile: Profile,
}

impl Devtools {
    /// Starts headless Chromium with a DevTools port and connects to it.
    async fn launch() -> Devtools {
        let profile = Profile::new("cdp");
        let log = std::fs::File::create(profile.0.join("chromium.log")).expect("creating the log");
        let child = chromium(&profile)
            .arg("--remote-debugging-port=0")
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning chromium");
        Devtools {
            ws: Self::connect(&profile).await,
            next_id: 0,
            child,
            profile,
        }
    }

    /// Waits for `DevToolsActivePort` (port, then browser path) in the profile and
    /// opens the browser's WebSocket.
    async fn connect(profile: &Profile) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        let file = profile.0.join("DevToolsActivePort");
        let log = profile.0.join("chromium.log");
        let endpoint = eventually("Chromium's DevTools port", RUN_TIMEOUT, || async {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                format!(
                    "{e}; log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })?;
            let mut lines = text.lines();
            match (lines.next(), lines.next()) {
                (Some(port), Some(path)) if !port.is_empty() && path.starts_with('/') => {
                    Ok(format!("ws://127.0.0.1:{}{}", port.trim(), path.trim()))
                }
                _ => Err(format!("incomplete: {text:?}")),
            }
        })
        .await;
        let (ws, _) = tokio::time::timeout(
            RUN_TIMEOUT,
            tokio_tungstenite::connect_async(endpoint.as_str()),
        )
        .await
        .expect("DevTools WebSocket timed out")
        .unwrap_or_else(|e| panic!("connecting to {endpoint}: {e}"));
        ws
    }

    /// Sends one command and waits for its answer (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .unwrap_or_else(|e| panic!("sending {method}: {e}"));
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => panic!("no answer to {method} within {RUN_TIMEOUT:?}"),
                Ok(None) => panic!("DevTools closed the connection during {method}"),
                Ok(Some(Err(e))) => panic!("reading the answer to {method}: {e}"),
                Ok(Some(Ok(message))) => message,
            };
            let Message::Text(text) = next else { continue };
            let answer: Value = serde_json::from_str(text.as_str()).expect("DevTools sends JSON");
            if answer["id"] != id {
                continue;
            }
            if !answer["error"].is_null() {
                panic!("{method} failed: {}", answer["error"]);
            }
            return answer["result"].clone();
        }
    }

    /// Opens `url` in a new page and returns the session that drives it.
    async fn open(&mut self, url: &str) -> String {
        let target = self
            .call("Target.createTarget", json!({ "url": url }), None)
            .await;
        let target_id = target["targetId"].clone();
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
                None,
            )
            .await;
        attached["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {attached}"))
            .to_owned()
    }

    /// Evaluates `expression` in the page and returns its value.
    async fn eval(&mut self, session: &str, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
                Some(session),
            )
            .await;
        if !result["exceptionDetails"].is_null() {
            panic!("{expression} threw: {}", result["exceptionDetails"]);
        }
        result["result"]["value"].clone()
    }

    /// The text the page shows.
    async fn text(&mut self, session: &str) -> String {
        let value = self
            .eval(session, "document.body ? document.body.innerText : ''")
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Polls the page until its text contains `needle`.
    async fn wait_for_text(&mut self, session: &str, needle: &str) {
        let deadline = Instant::now() + LIVE_TIMEOUT;
        loop {
            let text = self.text(session).await;
            if text.contains(needle) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the page did not show {needle:?} within {LIVE_TIMEOUT:?}; it shows:\n{text}\n\
                     chromium log:\n{}",
                    std::fs::read_to_string(self.profile.0.join("chromium.log"))
                        .unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Devtools {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
