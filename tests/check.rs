//! `wharf check` run as a binary on the stack files under `tests/fixtures/check/`.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/check")
        .join(name)
}

/// Runs `wharf check ARGS` with an empty environment plus `env`.
fn check(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.arg("check").args(args).env_clear();
    cmd.env("RUST_BACKTRACE", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run wharf");
    (
        status.code().expect("exit code"),
        String::from_utf8(stdout).expect("utf-8 stdout"),
        String::from_utf8(stderr).expect("utf-8 stderr"),
    )
}

fn path(name: &str) -> String {
    fixture(name).display().to_string()
}

fn json(args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = check(&all, env);
    let value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, value)
}

/// Asserts that `text` contains each of `parts`, in this order.
fn assert_in_order(text: &str, parts: &[&str]) {
    let mut rest = text;
    for part in parts {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => panic!("missing (or out of order) {part:?} in:\n{text}"),
        }
    }
}

#[test]
fn v1_labels() {
    let (code, out, _) = check(&[&path("v1")], &[]);
    assert_eq!(code, 0, "{out}");
    assert_in_order(
        &out,
        &[
            "v1/stack.yml",
            "stack `v1` (the directory's name",
            "service blog -> v1_blog  (network public)",
            "http router v1-blog",
            "rule         Host:blog.example.org;PathPrefix:/   (syntax v1)",
            "priority     34 (rule length)",
            "entrypoints  http, https",
            "tls          no",
            "service      v1-blog (port 2368)",
            "1 file (1 stack file); 2 services, 1 exposed, 1 router; 0 errors, 0 warnings",
        ],
    );
    // `db` has no labels: listed only with --verbose.
    assert!(!out.contains("service db"), "{out}");
    let (_, verbose, _) = check(&["--verbose", &path("v1")], &[]);
    assert!(verbose
        .contains("service db -> v1_db: not exposed (no traefik labels under `deploy.labels`)"));
}

#[test]
fn v2_labels_in_list_form() {
    let (code, out, _) = check(&[&path("v2")], &[]);
    assert_eq!(code, 0, "{out}");
    assert_in_order(
        &out,
        &[
            "service app -> v2_app  (network traefik-public)",
            "http router app\n",
            "rule         Host(`app.example.org`) && PathPrefix(`/api`)",
            "priority     45 (rule length)",
            "entrypoints  websecure",
            "tls          yes, certresolver le",
            "middlewares  app-auth",
            "service      app (port 8000)",
            "http router app-http",
            "middlewares  app-https",
            "middlewares  app-auth (basicauth), app-https (redirectscheme)",
        ],
    );
}

#[test]
fn v3_labels_in_map_form() {
    let (code, out, _) = check(&[&path("v3")], &[]);
    assert_eq!(code, 0, "{out}");
    assert_in_order(
        &out,
        &[
            "service api -> v3_api  (network edge)",
            // `$$` is a literal `$`.
            "rule         HostRegexp(`^api[0-9]+\\.example\\.org$`)",
            "priority     100 (explicit)",
            "service      api (port 9000)",
            "service postgres -> v3_postgres",
            "tcp router pg",
            "rule         HostSNI(`db.example.org`)",
            "entrypoints  postgres",
            "tls          yes, passthrough",
            "service      pg (port 5432)",
        ],
    );
}

#[test]
fn errors_name_service_label_and_line_and_fail() {
    let (code, out, _) = check(&[&path("errors")], &[]);
    assert_eq!(code, 1, "{out}");
    assert_in_order(
        &out,
        &[
            "service web -> errors_web",
            "warning line 6   traefik.enable: container label ignored in Swarm mode",
            "error   line 9   traefik.http.routers.web.rule: router `web` dropped: invalid rule",
            "unmatched `)`",
            "error   line 12  traefik.http.services.web.loadbalancer.server.port: \
             `traefik.http.services.web.loadbalancer.server.port=80` is listed twice",
            "service admin -> errors_admin: INVALID",
            "has no port",
            "traefik.http.services.errors-admin.loadbalancer.server.port",
            "service api -> errors_api",
            "error   line 22  traefik.enable: the value is the boolean true: \
             `docker stack deploy` accepts only strings, numbers or null here; quote it ('true')",
            "4 errors, 1 warning",
        ],
    );
}

#[test]
fn env_file_variables_in_keys_and_values() {
    let (code, out, _) = check(&[&path("env/stack.yml")], &[]);
    assert_eq!(code, 1, "{out}");
    assert_in_order(
        &out,
        &[
            "service site -> env_site",
            "error   line 7  traefik.http.routers.STACK_NAME-site.rule: required variable STACK_NAME is missing a value: set STACK_NAME",
            "required variable DOMAIN is missing a value: Variable DOMAIN not set",
        ],
    );

    let env_file = path("env/site.env");
    let (code, out, _) = check(&["--env-file", &env_file, &path("env/stack.yml")], &[]);
    assert_eq!(code, 0, "{out}");
    assert_in_order(
        &out,
        &[
            "http router prod-site",
            "rule         Host(`www.example.net`)",
            "entrypoints  websecure",
            "service      prod-site (port 8081)",
        ],
    );

    // The env file wins over the environment; the environment fills the rest.
    let (code, out, _) = check(
        &["--env-file", &env_file, &path("env/stack.yml")],
        &[("DOMAIN", "from.env"), ("ENTRYPOINT", "web")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Host(`www.example.net`)"), "{out}");
    assert!(out.contains("entrypoints  web\n"), "{out}");
}

#[test]
fn missing_env_file_is_an_error() {
    let (code, out, err) = check(&["--env-file", "/nonexistent/x.env", &path("v2")], &[]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains("cannot read env file /nonexistent/x.env"),
        "{err}"
    );
}

#[test]
fn invalid_yaml_has_file_and_line_and_the_rest_is_checked() {
    let (code, out, _) = check(&[&path("invalid")], &[]);
    assert_eq!(code, 1, "{out}");
    assert_in_order(
        &out,
        &[
            "invalid/broken.yml\n  error   line 4  invalid YAML: ",
            "invalid/good.yml",
            "rule         Host(`good.example.org`)",
            "2 files (1 stack file, 1 invalid)",
        ],
    );
}

#[test]
fn directories_skip_files_that_are_not_stacks() {
    let (code, out, _) = check(&[&path("mixed")], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("prometheus.yml"), "{out}");
    assert!(out.contains("2 files (1 stack file, 1 skipped)"), "{out}");
    let (_, out, _) = check(&["-v", &path("mixed")], &[]);
    assert!(
        out.contains("prometheus.yml\n  skipped: not a stack file"),
        "{out}"
    );
}

#[test]
fn stack_option_names_swarm_services() {
    let (code, out, _) = check(&["--stack", "shop", &path("v1")], &[]);
    assert_eq!(code, 0, "{out}");
    assert_in_order(
        &out,
        &[
            "stack `shop` (set with --stack)",
            "service blog -> shop_blog",
            "http router shop-blog",
        ],
    );
}

#[test]
fn provider_options() {
    let (code, out, _) = check(&["--exposed-by-default=false", &path("v2")], &[]);
    assert_eq!(code, 0, "{out}");
    // `app` sets traefik.enable=true.
    assert!(out.contains("http router app"), "{out}");

    let (_, out, _) = check(
        &[
            "--constraints",
            "Label(`traefik.enable`, `false`)",
            &path("v2"),
        ],
        &[],
    );
    assert!(
        out.contains(
            "service app -> v2_app: not exposed (its labels do not match the constraints)"
        ),
        "{out}"
    );

    let (code, _, err) = check(&["--constraints", "Label(`a`", &path("v2")], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid constraints expression"), "{err}");

    let (_, out, _) = check(&["--provider-network", "edge", &path("errors")], &[]);
    assert!(
        out.contains("service web -> errors_web  (network edge)"),
        "{out}"
    );
}

#[test]
fn json_output() {
    let (code, report) = json(&[&path("v2"), &path("errors")], &[]);
    assert_eq!(code, 1);
    assert_eq!(report["schema"], 1);
    let summary = &report["summary"];
    assert_eq!(summary["files"], 2);
    assert_eq!(summary["stack_files"], 2);
    assert_eq!(summary["errors"], 4);
    assert_eq!(summary["warnings"], 1);
    assert_eq!(summary["routers"], 3);

    let v2 = &report["files"][0];
    assert!(v2["path"]
        .as_str()
        .is_some_and(|p| p.ends_with("v2/stack.yml")));
    assert_eq!(v2["kind"], "stack");
    assert_eq!(v2["stack"], "v2");
    assert_eq!(v2["stack_source"], "directory");
    let app = &v2["services"][0];
    assert_eq!(app["name"], "app");
    assert_eq!(app["swarm_name"], "v2_app");
    assert_eq!(app["status"], "exposed");
    assert_eq!(app["network"], "traefik-public");
    let router = &app["routers"][0];
    assert_eq!(router["protocol"], "http");
    assert_eq!(router["name"], "app");
    assert_eq!(
        router["rule"],
        "Host(`app.example.org`) && PathPrefix(`/api`)"
    );
    assert_eq!(router["priority"], 45);
    assert_eq!(router["priority_source"], "rule length");
    assert_eq!(router["default_rule"], false);
    assert_eq!(router["entrypoints"], serde_json::json!(["websecure"]));
    assert_eq!(router["tls"]["cert_resolver"], "le");
    assert_eq!(router["middlewares"], serde_json::json!(["app-auth"]));
    assert_eq!(router["service"], "app");
    assert_eq!(router["port"], "8000");
    assert_eq!(app["routers"][1]["tls"], Value::Null);
    assert_eq!(app["middlewares"][1]["type"], "redirectscheme");
    // Services without labels are in the JSON output, not exposed.
    assert_eq!(v2["services"][1]["status"], "not_exposed");

    let errors = &report["files"][1]["services"];
    let web = &errors[0]["issues"];
    assert_eq!(web[0]["severity"], "warning");
    assert_eq!(web[0]["label"], "traefik.enable");
    assert_eq!(web[0]["line"], 6);
    assert_eq!(web[1]["severity"], "error");
    assert_eq!(web[1]["label"], "traefik.http.routers.web.rule");
    assert_eq!(web[1]["line"], 9);
    assert_eq!(errors[1]["status"], "invalid");
}

#[test]
fn json_for_invalid_and_skipped_files() {
    let (code, report) = json(&[&path("invalid"), &path("mixed")], &[]);
    assert_eq!(code, 1);
    let kinds: Vec<&str> = report["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, vec!["invalid", "stack", "skipped", "stack"]);
    let broken = &report["files"][0];
    assert_eq!(broken["issues"][0]["line"], 4);
    assert_eq!(broken["stack"], Value::Null);
}

#[test]
fn help_documents_the_json_schema() {
    let (code, out, _) = check(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("JSON OUTPUT (--json), schema version 1"),
        "{out}"
    );
    assert!(out.contains("\"priority_source\""), "{out}");
}

#[test]
fn missing_path_fails() {
    let (code, out, err) = check(&["/nonexistent/stack.yml"], &[]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("cannot read /nonexistent/stack.yml"), "{err}");
}

#[test]
fn networks_the_proxy_reaches_services_on() {
    let (code, out, _) = check(&[&path("networks")], &[]);
    assert_eq!(code, 1, "{out}");
    assert_in_order(
        &out,
        &[
            "service shop -> networks_shop  (network public)",
            "error   line 8  traefik.docker.network: the workload is not attached to network `public`",
            "service blog -> networks_blog",
            "warning the service is on several networks (public, networks_backend)",
            "service wiki -> networks_wiki  (network public)",
            "error   line 16  network `wikinet` is not declared in the top-level `networks:`",
            "2 errors, 1 warning",
        ],
    );
    // The provider's network settles the choice for `blog`.
    let (_, out, _) = check(&["--provider-network", "public", &path("networks")], &[]);
    assert!(
        out.contains("service blog -> networks_blog  (network public)\n    http router"),
        "{out}"
    );
}
