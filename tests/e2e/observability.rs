//! Metrics on `/metrics`, the access log in both formats (and its reopening on
//! SIGUSR1), and `wharf healthcheck`, against a running wharf.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::backends::Backend;
use crate::client;
use crate::harness::{closed_url, eventually, free_port, router, service, Options, Wharf};

/// How long counts get to show up after the responses were read.
const SETTLE: Duration = Duration::from_secs(15);

/// A fresh directory for log files.
fn log_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wharf-e2e-obs-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("creating the log directory");
    dir
}

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Polls `/metrics` until every `(series, value)` holds; returns the last scrape.
async fn metrics_until(wharf: &Wharf, want: &[(&str, f64)]) -> String {
    eventually("the expected metric values", SETTLE, || async {
        let reply = client::get(wharf.admin(), "localhost", "/metrics")
            .await
            .map_err(|e| e.to_string())?;
        if reply.status != 200 {
            return Err(format!("/metrics answered {}", reply.status));
        }
        let text = reply.text();
        for (series, value) in want {
            if sample(&text, series) != Some(*value) {
                return Err(format!(
                    "{series} is {:?}, want {value}\n{text}",
                    sample(&text, series)
                ));
            }
        }
        Ok(text)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_known_traffic_with_traefik_names() {
    let a = Backend::echo("a").await;
    let dead = closed_url();
    let wharf = Wharf::start(json!({ "http": {
        "routers": { "app": router("Host(`app.test`)", "app") },
        "services": { "app": service(&[&dead, &a.url()]) },
    }}))
    .await;
    // 404s through a router: a service whose server is wharf's own admin entrypoint.
    let admin_url = format!("http://{}", wharf.admin());
    wharf
        .set_dynamic(&json!({ "http": {
            "routers": {
                "app": router("Host(`app.test`)", "app"),
                "missing": router("Host(`missing.test`)", "adm"),
            },
            "services": {
                "app": service(&[&dead, &a.url()]),
                "adm": service(&[&admin_url]),
            },
        }}))
        .await;

    for _ in 0..3 {
        assert_eq!(wharf.get("app.test", "/").await.status, 200);
    }
    for _ in 0..2 {
        assert_eq!(wharf.get("missing.test", "/nope").await.status, 404);
    }

    let text = metrics_until(
        &wharf,
        &[
            (r#"traefik_entrypoint_requests_total{code="200",method="GET",protocol="http",entrypoint="web"}"#, 3.0),
            (r#"traefik_entrypoint_requests_total{code="404",method="GET",protocol="http",entrypoint="web"}"#, 2.0),
            (r#"traefik_service_requests_total{code="200",method="GET",protocol="http",service="app@file"}"#, 3.0),
            (r#"traefik_service_requests_total{code="404",method="GET",protocol="http",service="adm@file"}"#, 2.0),
            (r#"traefik_service_retries_total{service="app@file"}"#, 1.0),
            (r#"traefik_entrypoint_request_duration_seconds_count{code="200",method="GET",protocol="http",entrypoint="web"}"#, 3.0),
            (&format!(r#"traefik_service_server_up{{service="app@file",url="{}"}}"#, a.url()), 1.0),
        ],
    )
    .await;
    eprintln!("{text}");
    let reloads = sample(&text, "traefik_config_reloads_total").unwrap_or(0.0);
    assert!(reloads >= 2.0, "the initial load and the change: {reloads}");
    let last = sample(&text, "traefik_config_last_reload_success").unwrap_or(0.0);
    assert!(last > 1.6e9, "a Unix time: {last}");
    let bytes = sample(
        &text,
        r#"traefik_entrypoint_responses_bytes_total{code="200",method="GET",protocol="http",entrypoint="web"}"#,
    )
    .unwrap_or(0.0);
    assert!(bytes > 0.0, "response bytes are counted");
    assert!(
        sample(
            &text,
            r#"traefik_open_connections{entrypoint="web",protocol="TCP"}"#
        )
        .is_some(),
        "open connections are exported"
    );
    assert!(
        text.contains("wharf_provider_sync_seconds_count"),
        "the sync latency is exported"
    );
    assert!(
        !text.contains("traefik_router_requests_total"),
        "router labels are off by default"
    );
}

/// Starts wharf with `accessLog` settings and one router to an echo backend.
async fn with_access_log(access_log: Value, backend: &Backend) -> Wharf {
    let options = Options {
        static_extra: json!({ "accessLog": access_log }),
        ..Options::default()
    };
    Wharf::start_with(
        options,
        json!({ "http": {
            "routers": { "app": router("Host(`app.test`)", "app") },
            "services": { "app": service(&[&backend.url()]) },
        }}),
    )
    .await
}

/// Waits until `path` has at least `n` lines; returns them.
async fn lines(path: &Path, n: usize) -> Vec<String> {
    eventually(
        &format!("{n} lines in {}", path.display()),
        SETTLE,
        || async {
            let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.len() >= n {
                Ok(lines)
            } else {
                Err(format!("{} lines so far: {text}", lines.len()))
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_access_log_is_reopened_after_sigusr1() {
    let a = Backend::echo("a").await;
    let dir = log_dir("json");
    let path = dir.join("access.log");
    let wharf = with_access_log(
        json!({
            "filePath": path.to_string_lossy(),
            "format": "json",
            "fields": { "headers": { "names": { "User-Agent": "keep" } } },
        }),
        &a,
    )
    .await;
    assert_eq!(wharf.get("app.test", "/hello?x=1").await.status, 200);
    let first = lines(&path, 1).await;
    let entry: Value = serde_json::from_str(&first[0]).expect("a JSON line");
    assert_eq!(entry["RouterName"], "app@file", "{entry}");
    assert_eq!(entry["ServiceName"], "app@file", "{entry}");
    assert_eq!(entry["ServiceURL"], format!("{}/", a.url()), "{entry}");
    assert_eq!(entry["DownstreamStatus"], 200, "{entry}");
    assert_eq!(entry["RequestMethod"], "GET", "{entry}");
    assert_eq!(entry["RequestPath"], "/hello?x=1", "{entry}");
    assert_eq!(entry["RequestHost"], "app.test", "{entry}");
    assert_eq!(entry["ClientHost"], "127.0.0.1", "{entry}");
    assert_eq!(entry["RetryAttempts"], 0, "{entry}");
    assert_eq!(entry["entryPointName"], "web", "{entry}");
    assert!(entry["Duration"].as_u64().is_some_and(|d| d > 0), "{entry}");
    assert!(
        entry["DownstreamContentSize"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{entry}"
    );
    assert!(
        entry["StartUTC"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{entry}"
    );
    assert!(
        entry.get("request_Host").is_none(),
        "other headers are dropped: {entry}"
    );

    // logrotate: rename, then SIGUSR1; new lines go to a new file at the old path.
    let rotated = dir.join("access.log.1");
    std::fs::rename(&path, &rotated).expect("renaming the log");
    let status = Command::new("kill")
        .args(["-USR1", &wharf.pid().to_string()])
        .status()
        .expect("running kill");
    assert!(status.success());
    eventually("a line in the reopened log", SETTLE, || async {
        assert_eq!(wharf.get("app.test", "/after").await.status, 200);
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        if text.contains("\"/after\"") {
            Ok(())
        } else {
            Err(format!("not yet: {text:?}"))
        }
    })
    .await;
    let old = std::fs::read_to_string(&rotated).expect("reading the rotated log");
    assert!(old.contains("/hello?x=1"), "{old}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn common_access_log_with_a_status_filter() {
    let a = Backend::echo("a").await;
    let dir = log_dir("common");
    let path = dir.join("access.log");
    let wharf = with_access_log(
        json!({
            "filePath": path.to_string_lossy(),
            "filters": { "statusCodes": ["404"] },
        }),
        &a,
    )
    .await;
    assert_eq!(wharf.get("app.test", "/kept-out").await.status, 200);
    assert_eq!(wharf.get("nothing.test", "/missing").await.status, 404);
    let got = lines(&path, 1).await;
    assert_eq!(got.len(), 1, "only the 404 passes the filter: {got:?}");
    let line = &got[0];
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains("] \"GET /missing HTTP/1.1\" 404 19 \"-\" \"-\" "),
        "{line}"
    );
    assert!(line.ends_with("ms"), "{line}");
    assert!(
        line.contains(" \"-\" \"-\" "),
        "no router, no server: {line}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `wharf healthcheck` with `args`; returns its exit code and output.
fn healthcheck(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .arg("healthcheck")
        .args(args)
        .env_remove("WHARF_CONFIGFILE")
        .env_remove("TRAEFIK_CONFIGFILE")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("running wharf healthcheck");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_reports_a_running_and_a_dead_wharf() {
    let wharf = Wharf::start(json!({})).await;
    let admin = format!("--entrypoints.traefik.address={}", wharf.admin());
    let (code, text) = healthcheck(&[&admin]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("/ping"), "{text}");

    let dead = format!("--entrypoints.traefik.address=127.0.0.1:{}", free_port());
    let (code, text) = healthcheck(&["--timeout=3s", &dead]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    assert!(text.starts_with("unhealthy: "), "{text}");
}
