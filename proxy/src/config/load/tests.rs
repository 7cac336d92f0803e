//! Tests of loading: real Traefik files, precedence, notations, errors and defaults.
#![allow(clippy::unwrap_used)]

use std::error::Error as _;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;

use super::*;

const TRAEFIK_YML: &str = include_str!("testdata/traefik.yml");

const TRAEFIK_TOML: &str = include_str!("testdata/traefik.toml");

/// A scratch directory, removed when dropped.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("wharf-load-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(super) fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, content).unwrap();
        path
    }

    pub(super) fn loader(&self) -> Loader {
        Loader::new().working_dir(&self.0)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(super) fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub(super) fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The error and its sources, joined as `a: b: c`.
pub(super) fn chain(err: &ConfigError) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

pub(super) fn invalid(err: ConfigError) -> (Origin, TreeError) {
    match err {
        ConfigError::Invalid { origin, error } => (origin, error),
        other => panic!("expected an invalid setting, got {other:?}"),
    }
}

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn loads_a_traefik_yml() {
    let dir = TempDir::new("yml");
    let path = dir.write("traefik.yml", TRAEFIK_YML);
    let loaded = dir
        .loader()
        .args(strings(&["--configFile=traefik.yml"]))
        .load()
        .unwrap();
    let c = &loaded.config;
    assert_eq!(loaded.config_file.as_deref(), Some(path.as_path()));
    assert_eq!(c.global.as_ref().unwrap()["checkNewVersion"], json!(false));
    assert_eq!(
        (c.log.level.as_str(), c.log.format.as_str()),
        ("DEBUG", "json")
    );
    assert_eq!(
        c.log.file_path.as_deref(),
        Some("/var/log/traefik/traefik.log")
    );
    let access = c.access_log.as_ref().unwrap();
    assert_eq!(access.buffering_size, Some(100));
    let filters = access.filters.as_ref().unwrap();
    assert_eq!(filters.status_codes, vec!["400-499", "500-599"]);
    assert!(filters.retry_attempts);
    let fields = access.fields.as_ref().unwrap();
    let headers = fields.headers.as_ref().unwrap();
    assert_eq!(headers.names["User-Agent"], "keep");
    let api = c.api.as_ref().unwrap();
    assert!(api.dashboard && !api.insecure);
    assert_eq!(c.ping.as_ref().unwrap().entry_point, "traefik");
    let prometheus = c.metrics.as_ref().unwrap().prometheus.as_ref().unwrap();
    assert!(prometheus.add_services_labels && prometheus.add_entry_points_labels);

    assert_eq!(c.entry_points.len(), 3, "no default entrypoints added");
    let redirect = c.entry_points["web"].http.redirections.as_ref().unwrap();
    let to = redirect.entry_point.as_ref().unwrap();
    assert_eq!(
        (to.to.as_str(), to.scheme.as_str(), to.permanent),
        ("websecure", "https", true)
    );
    let websecure = &c.entry_points["websecure"];
    assert!(websecure.as_default);
    assert_eq!(websecure.http.middlewares, vec!["secure-headers@file"]);
    let tls = websecure.http.tls.as_ref().unwrap();
    assert_eq!(tls.cert_resolver.as_deref(), Some("le"));
    assert_eq!(tls.domains[0].main, "example.com");
    assert_eq!(tls.domains[0].sans, vec!["*.example.com"]);
    assert_eq!(
        websecure.forwarded_headers.trusted_ips,
        vec!["10.0.0.0/8", "172.16.0.0/12"]
    );
    let transport = &websecure.transport;
    assert_eq!(
        transport.responding_timeouts.read_timeout.0,
        Duration::from_secs(30)
    );
    assert_eq!(
        transport.life_cycle.grace_time_out.0,
        Duration::from_secs(15)
    );

    let acme = c.certificates_resolvers["le"].acme.as_ref().unwrap();
    assert_eq!(acme.email, "admin@example.com");
    assert_eq!(acme.http_challenge.as_ref().unwrap().entry_point, "web");
    assert_eq!(
        acme.ca_server,
        crate::config::static_config::LETS_ENCRYPT_STAGING
    );
    let providers = &c.providers;
    assert_eq!(
        providers.providers_throttle_duration.unwrap().0,
        Duration::from_secs(2)
    );
    let docker = providers.docker.as_ref().unwrap();
    assert!(!docker.exposed_by_default);
    assert_eq!(docker.network.as_deref(), Some("proxy"));
    assert_eq!(
        providers.swarm.as_ref().unwrap().refresh_seconds.0,
        Duration::from_secs(15)
    );
    let file = providers.file.as_ref().unwrap();
    assert_eq!(file.directory.as_deref(), Some("/etc/traefik/dynamic"));
    assert!(c.servers_transport.insecure_skip_verify);
    assert_eq!(c.servers_transport.max_idle_conns_per_host, Some(50));
    assert_eq!(
        c.servers_transport.forwarding_timeouts.dial_timeout.0,
        Duration::from_secs(10)
    );

    assert_eq!(loaded.addresses["web"], addr("0.0.0.0:80"));
    assert_eq!(loaded.addresses["websecure"], addr("0.0.0.0:443"));
    assert_eq!(loaded.addresses["traefik"], addr("127.0.0.1:9000"));
}

#[test]
fn loads_a_traefik_toml() {
    let dir = TempDir::new("toml");
    let path = dir.write("traefik.toml", TRAEFIK_TOML);
    let args = [format!("--config={}", path.display())];
    let loaded = load(&args, std::iter::empty()).unwrap();
    let c = &loaded.config;
    assert_eq!(c.log.level, "WARN");
    assert_eq!(c.log.format, "common");
    assert!(
        c.access_log.is_some(),
        "an empty table turns the access log on"
    );
    assert!(c.api.as_ref().unwrap().dashboard);
    assert_eq!(c.ping.as_ref().unwrap().terminating_status_code, 503);
    let to = c.entry_points["web"].http.redirections.as_ref().unwrap();
    assert_eq!(to.entry_point.as_ref().unwrap().to, "websecure");
    let tls = c.entry_points["websecure"].http.tls.as_ref().unwrap();
    assert_eq!(tls.domains[0].sans, vec!["www.example.org"]);
    let acme = c.certificates_resolvers["le"].acme.as_ref().unwrap();
    assert_eq!(acme.http_challenge.as_ref().unwrap().entry_point, "web");
    let docker = c.providers.docker.as_ref().unwrap();
    assert_eq!(docker.swarm_mode, Some(true));
    assert_eq!(docker.endpoint, "tcp://127.0.0.1:2375");
    assert!(!c.providers.file.as_ref().unwrap().watch);
    let prometheus = c.metrics.as_ref().unwrap().prometheus.as_ref().unwrap();
    assert_eq!(prometheus.buckets, vec![0.1, 0.3, 1.2, 5.0]);
    assert_eq!(prometheus.entry_point, "metrics");
    assert_eq!(loaded.addresses["web"], addr("0.0.0.0:8080"));
    assert_eq!(loaded.addresses["metrics"], addr("127.0.0.1:8082"));
    assert_eq!(loaded.addresses[ADMIN_ENTRYPOINT], addr("127.0.0.1:8080"));
    assert_eq!(loaded.addresses.len(), 4);
}

#[test]
fn environment_overrides_the_file_and_flags_override_both() {
    let dir = TempDir::new("precedence");
    dir.write(DEFAULT_CONFIG_FILE, TRAEFIK_TOML);
    let loaded = dir
        .loader()
        .env(vars(&[
            ("TRAEFIK_LOG_LEVEL", "INFO"),
            ("WHARF_LOG_LEVEL", "ERROR"),
            ("TRAEFIK_ENTRYPOINTS_WEB_ADDRESS", ":81"),
            ("TRAEFIK_ENTRYPOINTS_WEBSECURE_ADDRESS", ":444"),
            ("TRAEFIK_ACCESSLOG_FORMAT", "json"),
            ("WHARF_PROVIDERS_FILE_WATCH", "true"),
        ]))
        .args(strings(&[
            "--entrypoints.web.address=:82",
            "--api.dashboard=false",
            "--providers.file.filename",
            "other.yml",
        ]))
        .load()
        .unwrap();
    let c = &loaded.config;
    assert_eq!(c.log.level, "ERROR", "WHARF_ wins over TRAEFIK_");
    assert_eq!(loaded.addresses["web"], addr("0.0.0.0:82"), "flag wins");
    assert_eq!(
        loaded.addresses["websecure"],
        addr("0.0.0.0:444"),
        "env wins over file"
    );
    assert_eq!(
        c.access_log.as_ref().unwrap().format.as_deref(),
        Some("json")
    );
    let file = c.providers.file.as_ref().unwrap();
    assert_eq!(file.filename.as_deref(), Some("other.yml"));
    assert!(file.watch);
    assert!(!c.api.as_ref().unwrap().dashboard);
    // What no higher source touched stays as the file says.
    let tls = c.entry_points["websecure"].http.tls.as_ref().unwrap();
    assert_eq!(tls.cert_resolver.as_deref(), Some("le"));
    assert_eq!(loaded.config_file, Some(dir.0.join(DEFAULT_CONFIG_FILE)));
}

#[test]
fn keys_are_case_insensitive_in_every_source() {
    let dir = TempDir::new("case");
    dir.write(
        "traefik.yaml",
        "ENTRYPOINTS:\n  Web:\n    Address: ':80'\nLog:\n  LEVEL: debug\n",
    );
    let loaded = dir
        .loader()
        .args(strings(&[
            "--CONFIGFILE=traefik.yaml",
            "--entryPoints.Web.asDefault",
            "--ENTRYPOINTS.admin.ADDRESS=127.0.0.1:9999",
            "--accesslog.FilePath=/tmp/access.log",
        ]))
        .env(vars(&[("WHARF_Log_Format", "json")]))
        .load()
        .unwrap();
    let c = &loaded.config;
    assert_eq!(c.entry_points["Web"].address, ":80");
    assert!(c.entry_points["Web"].as_default);
    assert_eq!(loaded.addresses["admin"], addr("127.0.0.1:9999"));
    assert_eq!(
        (c.log.level.as_str(), c.log.format.as_str()),
        ("debug", "json")
    );
    let access = c.access_log.as_ref().unwrap();
    assert_eq!(access.file_path.as_deref(), Some("/tmp/access.log"));
}

#[test]
fn unknown_keys_name_their_source_and_the_nearest_key() {
    let dir = TempDir::new("unknown");
    let path = dir.write("traefik.yml", "entryPoints:\n  web:\n    adress: ':80'\n");
    let err = dir
        .loader()
        .args(strings(&["--configfile=traefik.yml"]))
        .load()
        .unwrap_err();
    assert_eq!(
        chain(&err),
        format!(
            "invalid setting in configuration file {}: `entryPoints.web.adress`: unknown key `adress` (did you mean `address`?)",
            path.display()
        )
    );

    let err = dir
        .loader()
        .args(strings(&["--api.dashbord=true"]))
        .load()
        .unwrap_err();
    let (origin, error) = invalid(err);
    assert_eq!(origin, Origin::Flag("--api.dashbord=true".into()));
    assert_eq!(error.path, "api.dashbord");
    assert_eq!(error.suggestion.as_deref(), Some("dashboard"));

    let err = dir
        .loader()
        .args(strings(&["--certificatesresolver.le.acme.email", "a@b.c"]))
        .load()
        .unwrap_err();
    let (origin, error) = invalid(err);
    assert_eq!(
        origin,
        Origin::Flag("--certificatesresolver.le.acme.email a@b.c".into())
    );
    assert_eq!(error.suggestion.as_deref(), Some("certificatesResolvers"));

    let err = dir
        .loader()
        .env(vars(&[("TRAEFIK_PING_ENTRYPIONT", "web")]))
        .load()
        .unwrap_err();
    let (origin, error) = invalid(err);
    assert_eq!(origin, Origin::Env("TRAEFIK_PING_ENTRYPIONT".into()));
    assert_eq!(error.path, "ping.entrypiont");
    assert_eq!(error.suggestion.as_deref(), Some("entryPoint"));

    // Variables that are not wharf settings are left alone.
    let loaded = dir
        .loader()
        .env(vars(&[
            ("TRAEFIK_PORT", "tcp://10.0.0.3:80"),
            ("HOME", "/root"),
        ]))
        .load()
        .unwrap();
    assert_eq!(loaded.addresses.len(), 3);
}

#[test]
fn defaults_with_nothing_given() {
    let dir = TempDir::new("defaults");
    let loaded = dir.loader().load().unwrap();
    assert_eq!(loaded.config_file, None);
    let c = &loaded.config;
    assert_eq!(c.api, Some(Api::default()));
    assert_eq!(c.ping, Some(Ping::default()));
    assert_eq!(
        c.metrics.as_ref().unwrap().prometheus,
        Some(Prometheus::default())
    );
    assert_eq!(
        (c.log.level.as_str(), c.log.format.as_str()),
        ("INFO", "common")
    );
    assert_eq!(
        c.entry_points["websecure"].http.tls,
        Some(EntryPointTls::default())
    );
    assert_eq!(c.entry_points["web"].http.tls, None);
    assert_eq!(
        loaded.addresses.into_iter().collect::<Vec<_>>(),
        vec![
            ("traefik".to_string(), addr("127.0.0.1:8080")),
            ("web".to_string(), addr("0.0.0.0:80")),
            ("websecure".to_string(), addr("0.0.0.0:443")),
        ]
    );

    // Configuring only the admin entrypoint still gets web and websecure.
    let loaded = dir
        .loader()
        .env(vars(&[("TRAEFIK_ENTRYPOINTS_TRAEFIK_ADDRESS", ":9090")]))
        .load()
        .unwrap();
    assert_eq!(loaded.addresses["traefik"], addr("0.0.0.0:9090"));
    assert_eq!(loaded.addresses.len(), 3);
}

#[test]
fn files_are_found_and_syntax_errors_give_the_line() {
    let dir = TempDir::new("files");
    let default = dir.write(DEFAULT_CONFIG_FILE, "[log]\nlevel = \"WARN\"\n");
    let loaded = dir.loader().load().unwrap();
    assert_eq!(loaded.config_file, Some(default));
    assert_eq!(loaded.config.log.level, "WARN");

    dir.write("wharf.conf", "log:\n  level: ERROR\n");
    let loaded = dir
        .loader()
        .env(vars(&[("WHARF_CONFIGFILE", "wharf.conf")]))
        .load()
        .unwrap();
    assert_eq!(
        loaded.config.log.level, "ERROR",
        "unknown extension: YAML tried after TOML"
    );

    let bad = dir.write("bad.toml", "[log]\nlevel = \"WARN\"\nformat = \n");
    let err = dir
        .loader()
        .args(strings(&["--config", "bad.toml"]))
        .load()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::Syntax {
                line: Some(3),
                format: "TOML",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3: invalid TOML", bad.display())),
        "{err}"
    );

    let bad = dir.write("bad.yml", "log:\n  level: DEBUG\n   format: json\n");
    let err = dir
        .loader()
        .args(strings(&["--config=bad.yml"]))
        .load()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::Syntax {
                line: Some(3),
                format: "YAML",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&bad.display().to_string()),
        "{err}"
    );

    dir.write("bad.conf", "log: [\n");
    let err = dir
        .loader()
        .args(strings(&["--config=bad.conf"]))
        .load()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::Syntax {
                format: "TOML or YAML",
                ..
            }
        ),
        "{err:?}"
    );

    let err = dir
        .loader()
        .args(strings(&["--config=missing.yml"]))
        .load()
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Read { path, .. } if path.ends_with("missing.yml")),
        "{err:?}"
    );
}
