// Panicking on unexpected results is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A unique temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "wharf-fileprov-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// Writes `rel` in place (truncate and write).
    fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, content).unwrap();
        path
    }

    /// Writes `rel` the way editors do: a temporary file renamed over it.
    fn write_atomic(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.path(rel);
        let tmp = self.path(&format!(".{rel}.tmp"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn file_cfg(path: &Path) -> FileProvider {
    FileProvider {
        filename: Some(path.to_string_lossy().into_owned()),
        ..FileProvider::default()
    }
}

fn dir_cfg(path: &Path) -> FileProvider {
    FileProvider {
        directory: Some(path.to_string_lossy().into_owned()),
        ..FileProvider::default()
    }
}

/// A YAML file with one router `name` (rule `Host(`<host>`)`) and its service.
fn router_yaml(name: &str, host: &str) -> String {
    format!(
        "http:\n  routers:\n    {name}:\n      rule: Host(`{host}`)\n      service: {name}-svc\n  \
         services:\n    {name}-svc:\n      loadBalancer:\n        servers:\n          - url: http://{host}:8080\n"
    )
}

fn rule_of(config: &DynamicConfig, router: &str) -> String {
    config.http.routers[router].rule.clone()
}

const TRAEFIK_YAML: &str = r#"# From Traefik's file provider documentation.
http:
  # Add the router
  routers:
    router0:
      entryPoints:
      - web
      middlewares:
      - my-basic-auth
      service: service-foo
      rule: Path(`/foo`)

  # Add the middleware
  middlewares:
    my-basic-auth:
      basicAuth:
        users:
        - test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/
        - test2:$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0
        usersFile: etc/traefik/.htpasswd

  # Add the service
  services:
    service-foo:
      loadBalancer:
        servers:
        - url: http://foo/
        - url: http://bar/
        passHostHeader: false

tls:
  certificates:
    - certFile: /path/to/domain.cert
      keyFile: /path/to/domain.key
"#;

const TRAEFIK_TOML: &str = r#"# From Traefik's file provider documentation.
[http]
  # Add the router
  [http.routers]
    [http.routers.router0]
      entryPoints = ["web"]
      middlewares = ["my-basic-auth"]
      service = "service-foo"
      rule = "Path(`/foo`)"

  # Add the middleware
  [http.middlewares]
    [http.middlewares.my-basic-auth.basicAuth]
      users = ["test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/",
                "test2:$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0"]
      usersFile = "etc/traefik/.htpasswd"

  # Add the service
  [http.services]
    [http.services.service-foo]
      [http.services.service-foo.loadBalancer]
        passHostHeader = false
        [[http.services.service-foo.loadBalancer.servers]]
          url = "http://foo/"
        [[http.services.service-foo.loadBalancer.servers]]
          url = "http://bar/"

[[tls.certificates]]
  certFile = "/path/to/domain.cert"
  keyFile = "/path/to/domain.key"
"#;

fn assert_traefik_example(config: &DynamicConfig) {
    let router = &config.http.routers["router0"];
    assert_eq!(router.entry_points, ["web"]);
    assert_eq!(router.middlewares, ["my-basic-auth"]);
    assert_eq!(router.service, "service-foo");
    assert_eq!(router.rule, "Path(`/foo`)");

    let auth = &config.http.middlewares["my-basic-auth"].0["basicAuth"];
    assert_eq!(auth["users"].as_array().unwrap().len(), 2);
    assert_eq!(auth["usersFile"], "etc/traefik/.htpasswd");

    let lb = config.http.services["service-foo"]
        .load_balancer
        .as_ref()
        .unwrap();
    let urls: Vec<&str> = lb.servers.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(urls, ["http://foo/", "http://bar/"]);
    assert!(!lb.pass_host_header);

    assert_eq!(config.tls.certificates.len(), 1);
    assert_eq!(config.tls.certificates[0].cert_file, "/path/to/domain.cert");
    assert_eq!(config.tls.certificates[0].key_file, "/path/to/domain.key");
}

#[test]
fn loads_traefik_yaml_example() {
    let dir = TempDir::new();
    let path = dir.write("dynamic.yml", TRAEFIK_YAML);
    let config = load(&file_cfg(&path)).unwrap();
    assert_traefik_example(&config);
}

#[test]
fn loads_traefik_toml_example_same_as_yaml() {
    let dir = TempDir::new();
    let toml_path = dir.write("dynamic.toml", TRAEFIK_TOML);
    let yaml_path = dir.write("dynamic.yaml", TRAEFIK_YAML);
    let from_toml = load(&file_cfg(&toml_path)).unwrap();
    assert_traefik_example(&from_toml);
    assert_eq!(from_toml, load(&file_cfg(&yaml_path)).unwrap());
}

#[test]
fn lowercase_keys_are_accepted() {
    let dir = TempDir::new();
    let path = dir.write(
        "lower.YML",
        "http:\n  routers:\n    r:\n      entrypoints: [web]\n      rule: Host(`a`)\n      service: s\n  \
         services:\n    s:\n      loadbalancer:\n        passhostheader: false\n        servers: [{url: 'http://a'}]\n  \
         serverstransports:\n    t: {}\n",
    );
    let config = load(&file_cfg(&path)).unwrap();
    assert_eq!(config.http.routers["r"].entry_points, ["web"]);
    let lb = config.http.services["s"].load_balancer.as_ref().unwrap();
    assert!(!lb.pass_host_header);
    assert_eq!(lb.servers[0].url, "http://a");
    assert!(config.http.servers_transports.contains_key("t"));

    let path = dir.write("camel.toml", "[http.serversTransports.u]\n");
    let config = load(&file_cfg(&path)).unwrap();
    assert!(config.http.servers_transports.contains_key("u"));
}

#[test]
fn empty_files_are_empty_configs() {
    let dir = TempDir::new();
    for (name, content) in [
        ("empty.yml", ""),
        ("blank.yaml", "\n  \n"),
        ("comments.yml", "# nothing here yet\n"),
        ("doc.yml", "---\n"),
        ("empty.toml", ""),
        ("comments.toml", "# nothing\n"),
    ] {
        let path = dir.write(name, content);
        let config = load(&file_cfg(&path)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config, DynamicConfig::default(), "{name}");
    }
}

#[test]
fn yaml_anchors_and_merge_keys() {
    let dir = TempDir::new();
    let path = dir.write(
        "anchors.yml",
        "http:\n  routers:\n    a: &base\n      rule: Host(`a`)\n      service: s\n      entryPoints: [websecure]\n    \
         b:\n      <<: *base\n      rule: Host(`b`)\n",
    );
    let config = load(&file_cfg(&path)).unwrap();
    assert_eq!(rule_of(&config, "b"), "Host(`b`)");
    assert_eq!(config.http.routers["b"].service, "s");
    assert_eq!(config.http.routers["b"].entry_points, ["websecure"]);
}

#[test]
fn directory_merges_files_recursively_in_path_order() {
    let dir = TempDir::new();
    dir.write("10-a.yml", &router_yaml("a", "a.example"));
    dir.write(
        "sub/20-b.toml",
        "[http.routers.b]\nrule = \"Host(`b.example`)\"\nservice = \"a-svc\"\n",
    );
    dir.write("sub/deeper/c.yaml", &router_yaml("c", "c.example"));
    dir.write("notes.txt", "not: [valid");
    dir.write(".hidden.yml", "not: [valid");
    dir.write("..2024_01_01/a-copy.yml", &router_yaml("a", "other"));
    let loaded = load_detailed(&dir_cfg(&dir.0)).unwrap();
    assert!(loaded.conflicts.is_empty(), "{:?}", loaded.conflicts);
    let names: Vec<&str> = loaded
        .config
        .http
        .routers
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(rule_of(&loaded.config, "a"), "Host(`a.example`)");
    assert_eq!(
        loaded.files,
        [
            dir.path("10-a.yml"),
            dir.path("sub/20-b.toml"),
            dir.path("sub/deeper/c.yaml"),
        ]
    );
}

#[test]
fn duplicate_names_keep_the_first_and_name_both_files() {
    let dir = TempDir::new();
    let first = dir.write(
        "a.yml",
        &format!(
            "{}tcp:\n  routers:\n    db:\n      rule: HostSNI(`*`)\n",
            router_yaml("web", "first")
        ),
    );
    let second = dir.write(
        "b.yml",
        &format!(
            "{}tcp:\n  routers:\n    db:\n      rule: HostSNI(`x`)\n    other:\n      rule: HostSNI(`o`)\n",
            router_yaml("web", "second")
        ),
    );
    let loaded = load_detailed(&dir_cfg(&dir.0)).unwrap();
    assert_eq!(rule_of(&loaded.config, "web"), "Host(`first`)");
    let tcp = loaded.config.tcp.as_ref().unwrap();
    assert_eq!(tcp["routers"]["db"]["rule"], "HostSNI(`*`)");
    assert_eq!(tcp["routers"]["other"]["rule"], "HostSNI(`o`)");

    let mut keys: Vec<&str> = Vec::new();
    for conflict in &loaded.conflicts {
        assert_eq!(conflict.kind, FileErrorKind::Duplicate);
        assert_eq!(conflict.path, second);
        assert!(
            conflict.message.contains(&first.display().to_string()),
            "{conflict}"
        );
        keys.push(conflict.message.split('`').nth(1).unwrap());
    }
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "http.routers.web",
            "http.services.web-svc",
            "tcp.routers.db"
        ]
    );

    // `load` logs the conflicts and still returns the merged configuration.
    assert_eq!(load(&dir_cfg(&dir.0)).unwrap(), loaded.config);
}

#[test]
fn yaml_syntax_error_has_file_line_and_column() {
    let dir = TempDir::new();
    let path = dir.write(
        "bad.yml",
        "http:\n  routers:\n    web:\n      rule: Host(`a`)\n      service: a: b\n",
    );
    let err = load(&file_cfg(&path)).unwrap_err();
    assert_eq!(err.kind, FileErrorKind::Parse);
    assert_eq!(err.path, path);
    // The second `:` on line 5, column 17.
    assert_eq!((err.line, err.column), (Some(5), Some(17)), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}:5:17: ", path.display())),
        "{err}"
    );
    assert!(!err.message.contains("line 5"), "{err}");

    let path = dir.write(
        "indent.yml",
        "http:\n  routers:\n    web:\n      rule: Host(`a`)\n     service: s\n",
    );
    let err = load(&file_cfg(&path)).unwrap_err();
    assert_eq!(err.line, Some(5), "{err}");
}

#[test]
fn yaml_unknown_field_and_wrong_type_have_their_line() {
    let dir = TempDir::new();
    let path = dir.write(
        "unknown.yml",
        "http:\n  routers:\n    web:\n      rule: Host(`a`)\n      servce: s\n",
    );
    let err = load(&file_cfg(&path)).unwrap_err();
    assert_eq!(err.kind, FileErrorKind::Parse);
    assert_eq!((err.line, err.column), (Some(5), Some(7)), "{err}");
    assert!(err.message.contains("unknown field `servce`"), "{err}");
    assert!(err.message.contains("http.routers.web"), "{err}");

    let path = dir.write(
        "type.yml",
        "http:\n  routers:\n    web:\n      rule: Host(`a`)\n      priority: high\n",
    );
    let err = load(&file_cfg(&path)).unwrap_err();
    assert_eq!(err.line, Some(5), "{err}");
    assert!(err.message.contains("invalid type"), "{err}");
}

#[test]
fn toml_errors_have_file_line_and_column() {
    let dir = TempDir::new();
    let path = dir.write(
        "syntax.toml",
        "[http.routers.web]\nrule = \"Host(`a`)\"\nservice = \n",
    );
    let err = load(&file_cfg(&path)).unwrap_err();
    assert_eq!(err.kind, FileErrorKind::Parse);
    assert_eq!(err.path, path);
    assert_eq!((err.line, err.column), (Some(3), Some(11)), "{err}");
    assert!(!err.message.contains('\n'), "{err}");

    let path = dir.write(
        "unknown.toml",
        "[http.routers.web]\nrule = \"Host(`a`)\"\n\nservce = \"s\"\n",
    );
    let err = load(&file_cfg(&path)).unwrap_err();
    assert_eq!((err.line, err.column), (Some(4), Some(1)), "{err}");
    assert!(err.message.contains("unknown field `servce`"), "{err}");

    let path = dir.write(
        "type.toml",
        "[http.routers.web]\nrule = \"Host(`a`)\"\npriority = \"high\"\n",
    );
    let err = load(&file_cfg(&path)).unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
}

#[test]
fn an_error_in_one_file_of_a_directory_fails_the_load() {
    let dir = TempDir::new();
    dir.write("a.yml", &router_yaml("a", "a"));
    let bad = dir.write("sub/b.yml", "http:\n  routers: [\n");
    let err = load(&dir_cfg(&dir.0)).unwrap_err();
    assert_eq!(err.path, bad);
    assert!(err.line.is_some());
}

#[test]
fn go_templates_are_reported_as_unsupported() {
    let dir = TempDir::new();
    let path = dir.write(
        "tmpl.yml",
        "# {{ in a comment is fine }}\nhttp:\n  routers:\n{{ range $i, $e := until 3 }}\n    router{{ $e }}:\n      rule: Host(`a`)\n{{ end }}\n",
    );
    let err = load(&file_cfg(&path)).unwrap_err();
    assert_eq!(err.kind, FileErrorKind::Template, "{err}");
    assert_eq!((err.line, err.column), (Some(4), Some(1)), "{err}");
    assert!(err.message.contains("not supported"), "{err}");

    let path = dir.write(
        "tmpl.toml",
        "[http.routers]\n{{ range $i, $e := until 3 }}\n[http.routers.r{{ $e }}]\n{{ end }}\n",
    );
    let err = load(&file_cfg(&path)).unwrap_err();
    assert_eq!(err.kind, FileErrorKind::Template, "{err}");
    assert_eq!(err.line, Some(2), "{err}");

    // Braces inside a string value are data, not a template.
    let path = dir.write(
        "braces.yml",
        "http:\n  routers:\n    r:\n      rule: \"PathRegexp(`^/x{{2}}`)\"\n",
    );
    assert_eq!(
        rule_of(&load(&file_cfg(&path)).unwrap(), "r"),
        "PathRegexp(`^/x{{2}}`)"
    );
}

#[test]
fn io_extension_and_settings_errors() {
    let dir = TempDir::new();
    let missing = dir.path("missing.yml");
    let err = load(&file_cfg(&missing)).unwrap_err();
    assert_eq!(err.kind, FileErrorKind::Io);
    assert_eq!(err.path, missing);
    assert_eq!(
        err.io_error.as_ref().map(std::io::Error::kind),
        Some(std::io::ErrorKind::NotFound)
    );

    let err = load(&dir_cfg(&dir.path("no-such-dir"))).unwrap_err();
    assert_eq!(err.kind, FileErrorKind::Io);

    let path = dir.write("dynamic.json", "{}");
    let err = load(&file_cfg(&path)).unwrap_err();
    assert_eq!(err.kind, FileErrorKind::UnsupportedExtension);

    let err = load(&FileProvider::default()).unwrap_err();
    assert_eq!(err.kind, FileErrorKind::NotConfigured);
    assert!(err.to_string().starts_with("providers.file: "), "{err}");
}

#[test]
fn relative_paths_are_taken_from_the_working_directory() {
    let cwd = std::env::current_dir().unwrap();
    let source = Source::resolve(&FileProvider {
        filename: Some("conf/dynamic.yml".into()),
        ..FileProvider::default()
    })
    .unwrap();
    assert_eq!(source, Source::File(cwd.join("conf/dynamic.yml")));

    // `directory` wins over `filename`, as in Traefik.
    let source = Source::resolve(&FileProvider {
        filename: Some("a.yml".into()),
        directory: Some("conf.d".into()),
        ..FileProvider::default()
    })
    .unwrap();
    assert_eq!(source, Source::Directory(cwd.join("conf.d")));
}

mod run;
