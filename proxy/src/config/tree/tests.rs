//! Tests of the tree, its deserializer and the shape probe.
#![allow(clippy::unwrap_used)]
use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::config::dynamic::{DynamicConfig, RuleSyntax};
use crate::config::static_config::{EntryPoint, StaticConfig};

fn flat(pairs: &[(&str, &str)]) -> Tree {
    Tree::from_flat(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
}

#[test]
fn struct_fields_match_case_insensitively_map_keys_do_not() {
    let tree = Tree::from_json(&json!({
        "ENTRYPOINTS": {"Web": {"ADDRESS": ":80", "asdefault": true}},
        "log": {"LEVEL": "debug"},
    }));
    let config: StaticConfig = tree.deserialize_into().unwrap();
    let web = &config.entry_points["Web"];
    assert_eq!(web.address, ":80");
    assert!(web.as_default);
    assert!(!config.entry_points.contains_key("web"));
    assert_eq!(config.log.level, "debug");
}

#[test]
fn flat_keys_build_lists_and_coerce_strings() {
    let tree = flat(&[
        ("entrypoints.websecure.address", ":443"),
        (
            "entrypoints.websecure.http.tls.domains[0].main",
            "example.com",
        ),
        (
            "entrypoints.websecure.http.tls.domains[0].sans",
            "a.example.com, b.example.com",
        ),
        (
            "entrypoints.websecure.http.tls.domains[1].main",
            "example.org",
        ),
        (
            "entrypoints.websecure.forwardedheaders.trustedips",
            "10.0.0.0/8,192.168.1.7",
        ),
        (
            "entrypoints.websecure.transport.keepalivemaxrequests",
            "100",
        ),
        (
            "entrypoints.websecure.transport.respondingtimeouts.readtimeout",
            "5s",
        ),
        ("ping.terminatingstatuscode", "204"),
        ("core.defaultrulesyntax", "V2"),
    ]);
    let config: StaticConfig = tree.deserialize_into().unwrap();
    let ep = &config.entry_points["websecure"];
    let tls = ep.http.tls.as_ref().unwrap();
    assert_eq!(tls.domains.len(), 2);
    assert_eq!(tls.domains[0].main, "example.com");
    assert_eq!(tls.domains[0].sans, vec!["a.example.com", "b.example.com"]);
    assert_eq!(tls.domains[1].main, "example.org");
    assert_eq!(
        ep.forwarded_headers.trusted_ips,
        vec!["10.0.0.0/8", "192.168.1.7"]
    );
    assert_eq!(ep.transport.keep_alive_max_requests, 100);
    assert_eq!(ep.transport.responding_timeouts.read_timeout.0.as_secs(), 5);
    assert_eq!(config.ping.unwrap().terminating_status_code, 204);
    assert_eq!(config.core.default_rule_syntax, RuleSyntax::V2);
}

#[test]
fn bare_true_enables_a_section_and_false_disables_it() {
    let tree = flat(&[
        ("api", "true"),
        ("ping", "false"),
        ("accesslog", "true"),
        ("entrypoints.web", "true"),
        ("entrypoints.web.http.encodequerysemicolons", "false"),
        ("providers.docker", "true"),
        ("providers.swarm", "false"),
    ]);
    let config: StaticConfig = tree.deserialize_into().unwrap();
    assert!(config.api.unwrap().dashboard, "defaults apply");
    assert_eq!(config.ping, None);
    assert!(config.access_log.is_some());
    assert_eq!(config.entry_points["web"].address, "");
    // An optional scalar keeps `false`.
    assert_eq!(
        config.entry_points["web"].http.encode_query_semicolons,
        Some(false)
    );
    assert_eq!(config.providers.docker, Some(Default::default()));
    assert_eq!(config.providers.swarm, None);

    // So does an empty value, from a flag or an environment variable.
    let config: StaticConfig = flat(&[("api", ""), ("entrypoints.web", " ")])
        .deserialize_into()
        .unwrap();
    assert!(config.api.is_some());
    assert!(config.entry_points.contains_key("web"));

    // A YAML key without a value also turns a section on.
    let config: StaticConfig = Tree::from_json(&json!({"api": null, "ping": {}}))
        .deserialize_into()
        .unwrap();
    assert!(config.api.is_some());
    assert!(config.ping.is_some());
}

#[test]
fn unknown_key_names_the_path_and_the_nearest_field() {
    let tree = flat(&[("entrypoints.web.adress", ":80")]);
    let err = tree.deserialize_into::<StaticConfig>().unwrap_err();
    assert_eq!(err.path, "entryPoints.web.adress");
    assert_eq!(err.suggestion.as_deref(), Some("address"));
    assert_eq!(
        err.to_string(),
        "`entryPoints.web.adress`: unknown key `adress` (did you mean `address`?)"
    );
    let err = flat(&[("entrypoint.web.address", ":80")])
        .deserialize_into::<StaticConfig>()
        .unwrap_err();
    assert_eq!(err.path, "entrypoint");
    assert_eq!(err.suggestion.as_deref(), Some("entryPoints"));
    let err = flat(&[("zzz", "1")])
        .deserialize_into::<StaticConfig>()
        .unwrap_err();
    assert_eq!(err.suggestion, None);
}

#[test]
fn bad_values_carry_their_path() {
    let err = flat(&[("ping.terminatingStatusCode", "abc")])
        .deserialize_into::<StaticConfig>()
        .unwrap_err();
    assert_eq!(err.path, "ping.terminatingStatusCode");
    assert!(err.message.contains("whole number"), "{err}");

    let err = flat(&[(
        "entrypoints.web.transport.respondingTimeouts.idleTimeout",
        "10x",
    )])
    .deserialize_into::<StaticConfig>()
    .unwrap_err();
    assert_eq!(
        err.path,
        "entryPoints.web.transport.respondingTimeouts.idleTimeout"
    );
    assert!(err.message.contains("unknown unit"), "{err}");

    let err = Tree::from_json(&json!({"entryPoints": {"web": {"http": {"tls": {"domains": [{"main": "a"}, {"mian": "b"}]}}}}}))
        .deserialize_into::<StaticConfig>()
        .unwrap_err();
    assert_eq!(err.path, "entryPoints.web.http.tls.domains[1].mian");
    assert_eq!(err.suggestion.as_deref(), Some("main"));

    let err = Tree::from_json(&json!({"api": {"dashboard": "maybe"}}))
        .deserialize_into::<StaticConfig>()
        .unwrap_err();
    assert_eq!(err.path, "api.dashboard");
    let err = Tree::from_json(&json!({"log": "debug"}))
        .deserialize_into::<StaticConfig>()
        .unwrap_err();
    assert_eq!(err.path, "log");
    assert!(err.message.contains("expected a section"), "{err}");
}

#[test]
fn merge_lets_the_later_source_win_per_leaf() {
    let mut base = Tree::from_json(&json!({
        "entryPoints": {"web": {"address": ":80", "asDefault": true}},
        "api": {"dashboard": false},
        "log": {"level": "INFO"},
        "metrics": {"prometheus": {}},
    }));
    let mut over = flat(&[
        ("entrypoints.web.address", ":8000"),
        ("entrypoints.admin.address", ":9000"),
        ("api", "true"),
        ("metrics", "false"),
    ]);
    let shape = Shape::of::<StaticConfig>();
    base.normalize_keys(&shape);
    over.normalize_keys(&shape);
    base.merge(over);
    let config: StaticConfig = base.deserialize_with(&shape).unwrap();
    assert_eq!(config.entry_points["web"].address, ":8000");
    assert!(config.entry_points["web"].as_default, "untouched leaf kept");
    assert_eq!(config.entry_points["admin"].address, ":9000");
    assert!(
        !config.api.unwrap().dashboard,
        "`true` keeps the configured section"
    );
    assert_eq!(config.metrics, None);
    assert_eq!(config.log.level, "INFO");
}

#[test]
fn normalize_keys_merges_spellings_of_one_field() {
    let mut tree = Tree::from_json(&json!({
        "entrypoints": {"web": {"address": ":80"}},
        "entryPoints": {"web": {"asDefault": true}, "Web": {"address": ":81"}},
    }));
    tree.normalize_keys(&Shape::of::<StaticConfig>());
    let Tree::Map(map) = &tree else { panic!() };
    assert_eq!(map.keys().collect::<Vec<_>>(), vec!["entryPoints"]);
    let config: StaticConfig = tree.deserialize_into().unwrap();
    assert_eq!(config.entry_points.len(), 2);
    assert_eq!(config.entry_points["web"].address, ":80");
    assert!(config.entry_points["web"].as_default);
}

#[test]
fn docker_labels_deserialize_dynamic_configuration() {
    let tree = flat(&[
        ("http.routers.whoami.rule", "Host(`whoami.example.com`)"),
        ("http.routers.whoami.entrypoints", "web,websecure"),
        ("http.routers.whoami.tls.certresolver", "le"),
        ("http.routers.whoami.priority", "42"),
        ("http.routers.whoami.rulesyntax", "v2"),
        (
            "http.services.whoami.loadbalancer.servers[0].url",
            "http://10.0.0.2:80",
        ),
        ("http.services.whoami.loadbalancer.passhostheader", "false"),
        ("http.middlewares.auth.basicauth.users", "user:hash"),
    ]);
    let config: DynamicConfig = tree.deserialize_into().unwrap();
    let router = &config.http.routers["whoami"];
    assert_eq!(router.rule, "Host(`whoami.example.com`)");
    assert_eq!(router.entry_points, vec!["web", "websecure"]);
    assert_eq!(
        router.tls.as_ref().unwrap().cert_resolver.as_deref(),
        Some("le")
    );
    assert_eq!(router.priority, 42);
    assert_eq!(router.rule_syntax, Some(RuleSyntax::V2));
    let lb = config.http.services["whoami"]
        .load_balancer
        .as_ref()
        .unwrap();
    assert_eq!(lb.servers[0].url, "http://10.0.0.2:80");
    assert!(!lb.pass_host_header);
    assert_eq!(
        config.http.middlewares["auth"].0["basicauth"],
        json!({"users": "user:hash"})
    );
}

#[test]
fn plain_tree_deserializer_and_scalar_coercions() {
    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Plain {
        name: String,
        port: u16,
        ratio: f64,
        tags: Vec<String>,
        flag: bool,
        section: Option<EntryPoint>,
    }
    let tree = Tree::from_json(&json!({
        "NAME": 8080, "port": "8443", "ratio": "0.5", "tags": "a,b", "flag": "T", "section": true
    }));
    let plain = Plain::deserialize(&tree).unwrap();
    assert_eq!(plain.name, "8080");
    assert_eq!(plain.port, 8443);
    assert_eq!(plain.ratio, 0.5);
    assert_eq!(plain.tags, vec!["a", "b"]);
    assert!(plain.flag);
    assert_eq!(plain.section, Some(EntryPoint::default()));
    let err = Plain::deserialize(&Tree::from_json(&json!({"port": "70000"}))).unwrap_err();
    assert_eq!(err.path, "port");
}

#[test]
fn malformed_flat_keys_are_refused() {
    for key in ["a..b", "a.b[x]", "a[1", "a[0]b", ".a", "a[99999999]"] {
        let err = Tree::from_flat([(key.to_string(), "1".to_string())]).unwrap_err();
        assert_eq!(err.path, key);
        assert!(err.message.starts_with("malformed key"), "{err}");
    }
    assert_eq!(
        parse_flat_key("tls.domains[2].sans[0]").unwrap(),
        vec![
            PathSeg::Key("tls".into()),
            PathSeg::Key("domains".into()),
            PathSeg::Index(2),
            PathSeg::Key("sans".into()),
            PathSeg::Index(0),
        ]
    );
    assert_eq!(
        render_path(&parse_flat_key("a.b[1].c").unwrap()),
        "a.b[1].c"
    );
}

#[test]
fn probes_the_static_configuration() {
    let shape = Shape::of::<StaticConfig>();
    let Shape::Struct { fields, .. } = &shape else {
        panic!("not a struct: {shape:?}");
    };
    assert!(fields.contains(&"entryPoints"));
    let entry_points = shape.field("entryPoints");
    assert!(matches!(entry_points, Shape::Map(_)));
    let entry_point = entry_points.inner();
    assert_eq!(entry_point.field("address"), &Shape::Scalar);
    let trusted = entry_point.field("forwardedHeaders").field("trustedIPs");
    assert_eq!(trusted, &Shape::Seq(Box::new(Shape::Scalar)));
    // GoDuration goes through deserialize_any but refuses maps.
    let keep_alive = entry_point.field("transport").field("keepAliveMaxTime");
    assert_eq!(keep_alive, &Shape::Option(Box::new(Shape::Scalar)));
    assert!(shape
        .field("providers")
        .field("docker")
        .inner()
        .is_section());
    assert!(
        matches!(shape.field("core").field("defaultRuleSyntax"), Shape::Enum(v) if v.contains(&"v3"))
    );
    assert!(shape.field("api").inner().is_section());
}

#[test]
fn probes_aliases_and_recursion() {
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Node {
        #[serde(alias = "other")]
        name: String,
        #[serde(alias = "nextNode")]
        next: Option<Box<Node>>,
        after: u16,
    }
    let shape = Shape::of::<Node>();
    assert_eq!(shape.field("name"), &Shape::Scalar);
    assert_eq!(shape.field("after"), &Shape::Scalar);
    assert!(matches!(shape.field("next"), Shape::Option(_)));
}

#[test]
fn lists_merge_element_by_element_and_strings_replace_them() {
    let mut base = Tree::from_json(&json!({
        "domains": [{"main": "a.example", "sans": ["x.a.example"]}, {"main": "b.example"}],
        "trustedIPs": ["10.0.0.1", "10.0.0.2"],
    }));
    base.merge(flat(&[
        ("domains[0].main", "c.example"),
        ("trustedIPs", "10.9.9.9"),
    ]));
    assert_eq!(
        base,
        Tree::from_json(&json!({
            "domains": [{"main": "c.example", "sans": ["x.a.example"]}, {"main": "b.example"}],
            "trustedIPs": "10.9.9.9",
        }))
    );
    // A hole in the later list keeps the earlier element.
    base.merge(flat(&[("domains[1].sans", "y.b.example")]));
    assert_eq!(
        base.get(&["domains"]).unwrap(),
        &Tree::from_json(&json!([
            {"main": "c.example", "sans": ["x.a.example"]},
            {"main": "b.example", "sans": "y.b.example"},
        ]))
    );
}
