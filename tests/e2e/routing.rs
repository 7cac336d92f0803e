//! Request routing: matchers, rule syntaxes, priorities, host normalisation, and the
//! error statuses for unmatched requests and failing upstreams.

use std::time::{Duration, Instant};

use http::Request;
use serde_json::json;

use crate::backends::Backend;
use crate::client::{self, empty};
use crate::harness::{closed_url, router, service, Options, Wharf};

/// Asserts that `GET path` with `Host: host` is answered by backend `name`.
async fn assert_routed(wharf: &Wharf, host: &str, path: &str, name: &str) -> serde_json::Value {
    let echo = wharf.echo(host, path).await;
    assert_eq!(
        echo["name"], name,
        "GET {path} with Host {host} reached the wrong backend: {echo}"
    );
    echo
}

/// Asserts that `GET path` with `Host: host` is answered with `status`.
async fn assert_status(wharf: &Wharf, host: &str, path: &str, status: u16) {
    let reply = wharf.get(host, path).await;
    assert_eq!(
        reply.status,
        status,
        "GET {path} with Host {host}: {}",
        reply.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_host() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": {
            "ra": router("Host(`a.test`)", "a"),
            "rb": router("Host(`b.test`)", "b"),
        },
        "services": { "a": service(&[&a.url()]), "b": service(&[&b.url()]) },
    }}))
    .await;

    let echo = assert_routed(&wharf, "a.test", "/some/path?k=v", "a").await;
    assert_eq!(echo["path"], "/some/path");
    assert_eq!(echo["query"], "k=v");
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["host"], "a.test", "passHostHeader defaults to true");
    assert_routed(&wharf, "b.test", "/", "b").await;
    assert_status(&wharf, "c.test", "/", 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_subcommand_serves_the_same_config() {
    let a = Backend::echo("a").await;
    let options = Options {
        proxy_subcommand: true,
        ..Options::default()
    };
    let wharf = Wharf::start_with(
        options,
        json!({ "http": {
            "routers": { "ra": router("Host(`a.test`)", "a") },
            "services": { "a": service(&[&a.url()]) },
        }}),
    )
    .await;
    assert_routed(&wharf, "a.test", "/", "a").await;
    assert_status(&wharf, "b.test", "/", 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_path_and_path_prefix() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": {
            "exact": router("Path(`/exact`)", "a"),
            "prefix": router("PathPrefix(`/api`)", "b"),
        },
        "services": { "a": service(&[&a.url()]), "b": service(&[&b.url()]) },
    }}))
    .await;

    assert_routed(&wharf, "any.test", "/exact", "a").await;
    assert_routed(&wharf, "any.test", "/exact?q=1", "a").await;
    assert_status(&wharf, "any.test", "/exact/more", 404).await;
    let echo = assert_routed(&wharf, "any.test", "/api/users/7", "b").await;
    assert_eq!(echo["path"], "/api/users/7", "PathPrefix must not strip");
    assert_routed(&wharf, "any.test", "/api", "b").await;
    assert_status(&wharf, "any.test", "/", 404).await;
    assert_status(&wharf, "any.test", "/other", 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_header_and_method() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let c = Backend::echo("c").await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": {
            "stable": router("Host(`h.test`)", "a"),
            "canary": router("Host(`h.test`) && Header(`X-Env`, `canary`)", "b"),
            "writes": router("Host(`h.test`) && (Method(`POST`) || Method(`PUT`))", "c"),
        },
        "services": {
            "a": service(&[&a.url()]),
            "b": service(&[&b.url()]),
            "c": service(&[&c.url()]),
        },
    }}))
    .await;

    let send = |method: &str, env: Option<&str>| {
        let mut req = Request::builder()
            .method(method)
            .uri("/thing")
            .header("host", "h.test");
        if let Some(env) = env {
            req = req.header("x-env", env);
        }
        let req = req.body(empty()).expect("valid request");
        let addr = wharf.web();
        async move {
            client::send_h1(addr, req)
                .await
                .expect("request through wharf")
        }
    };

    let reply = send("GET", Some("canary")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json()["name"],
        "b",
        "X-Env: canary goes to the canary"
    );
    let reply = send("GET", Some("stable")).await;
    assert_eq!(
        reply.json()["name"],
        "a",
        "another X-Env value does not match"
    );
    let reply = send("GET", None).await;
    assert_eq!(reply.json()["name"], "a");
    let reply = send("POST", None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echo = reply.json();
    assert_eq!(echo["name"], "c", "POST matches Method(`POST`): {echo}");
    assert_eq!(echo["method"], "POST");
    let reply = send("PUT", None).await;
    assert_eq!(reply.json()["name"], "c");
    let reply = send("DELETE", None).await;
    assert_eq!(reply.json()["name"], "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rule_syntax() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": {
            "hosts": {
                "rule": "Host(`a.v2.test`, `b.v2.test`)",
                "ruleSyntax": "v2",
                "service": "a",
                "entryPoints": ["web"],
            },
            "users": {
                "rule": "Host(`users.test`) && PathPrefix(`/users/{id:[0-9]+}`)",
                "ruleSyntax": "v2",
                "service": "b",
                "entryPoints": ["web"],
            },
        },
        "services": { "a": service(&[&a.url()]), "b": service(&[&b.url()]) },
    }}))
    .await;

    assert_routed(&wharf, "a.v2.test", "/", "a").await;
    assert_routed(&wharf, "b.v2.test", "/x", "a").await;
    assert_status(&wharf, "c.v2.test", "/", 404).await;
    let echo = assert_routed(&wharf, "users.test", "/users/42", "b").await;
    assert_eq!(echo["path"], "/users/42");
    assert_routed(&wharf, "users.test", "/users/42/profile", "b").await;
    assert_status(&wharf, "users.test", "/users/abc", 404).await;
    assert_status(&wharf, "users.test", "/users/", 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_rule_syntax_strips_prefix() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": {
            "strip": {
                "rule": "Host:v1.test;PathPrefixStrip:/strip",
                "ruleSyntax": "v1",
                "service": "a",
                "entryPoints": ["web"],
            },
            "multi": {
                "rule": "Host:v1b.test,v1c.test;Path:/exact",
                "ruleSyntax": "v1",
                "service": "b",
                "entryPoints": ["web"],
            },
        },
        "services": { "a": service(&[&a.url()]), "b": service(&[&b.url()]) },
    }}))
    .await;

    let echo = assert_routed(&wharf, "v1.test", "/strip/foo/bar?x=1", "a").await;
    assert_eq!(
        echo["path"], "/foo/bar",
        "the upstream sees the stripped path"
    );
    assert_eq!(echo["query"], "x=1");
    let echo = assert_routed(&wharf, "v1.test", "/strip", "a").await;
    assert_eq!(echo["path"], "/", "stripping the whole path leaves /");
    assert_status(&wharf, "v1.test", "/other", 404).await;
    assert_routed(&wharf, "v1b.test", "/exact", "b").await;
    assert_routed(&wharf, "v1c.test", "/exact", "b").await;
    assert_status(&wharf, "v1c.test", "/exact/no", 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_priority_beats_rule_length() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let mut long = router("Host(`prio.test`) && PathPrefix(`/`)", "a");
    long["priority"] = json!(1);
    let mut short = router("Host(`prio.test`)", "b");
    short["priority"] = json!(100);
    let wharf = Wharf::start(json!({ "http": {
        "routers": { "long": long, "short": short },
        "services": { "a": service(&[&a.url()]), "b": service(&[&b.url()]) },
    }}))
    .await;

    assert_routed(&wharf, "prio.test", "/", "b").await;
    assert_routed(&wharf, "prio.test", "/deep/path", "b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_priority_is_rule_length() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let c = Backend::echo("c").await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": {
            "short": router("Host(`len.test`)", "a"),
            "long": router("Host(`len.test`) && PathPrefix(`/deep`)", "b"),
            "longest": router("Host(`len.test`) && PathPrefix(`/deep/er`)", "c"),
        },
        "services": {
            "a": service(&[&a.url()]),
            "b": service(&[&b.url()]),
            "c": service(&[&c.url()]),
        },
    }}))
    .await;

    assert_routed(&wharf, "len.test", "/", "a").await;
    assert_routed(&wharf, "len.test", "/other", "a").await;
    assert_routed(&wharf, "len.test", "/deep/x", "b").await;
    assert_routed(&wharf, "len.test", "/deep/er/x", "c").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_matching_ignores_case_port_and_trailing_dot() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": {
            "lower": router("Host(`case.test`)", "a"),
            "upper": router("Host(`UPPER.test`)", "b"),
        },
        "services": { "a": service(&[&a.url()]), "b": service(&[&b.url()]) },
    }}))
    .await;

    for host in [
        "case.test",
        "CASE.Test",
        "case.test:8080",
        "case.test.",
        "Case.Test.:1234",
    ] {
        assert_routed(&wharf, host, "/", "a").await;
    }
    for host in ["upper.test", "UPPER.TEST", "upper.test:80"] {
        assert_routed(&wharf, host, "/", "b").await;
    }
    assert_status(&wharf, "case.test.example", "/", 404).await;
    assert_status(&wharf, "xcase.test", "/", 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_matching_router_is_404() {
    let a = Backend::echo("a").await;
    let wharf = Wharf::start(json!({ "http": {
        "routers": { "known": router("Host(`known.test`) && PathPrefix(`/app`)", "a") },
        "services": { "a": service(&[&a.url()]) },
    }}))
    .await;

    assert_status(&wharf, "unknown.test", "/app", 404).await;
    assert_status(&wharf, "known.test", "/", 404).await;
    assert_routed(&wharf, "known.test", "/app", "a").await;
    assert_eq!(a.hits(), 1, "404s must not reach the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_is_502() {
    let wharf = Wharf::start(json!({ "http": {
        "routers": { "dead": router("Host(`dead.test`)", "dead") },
        "services": { "dead": service(&[&closed_url()]) },
    }}))
    .await;

    let started = Instant::now();
    assert_status(&wharf, "dead.test", "/", 502).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a refused connection must fail fast, took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_is_504() {
    let slow = Backend::slow("slow", Duration::from_secs(3)).await;
    let fast = Backend::echo("fast").await;
    let options = Options {
        response_header_timeout: "1s".into(),
        ..Options::default()
    };
    let wharf = Wharf::start_with(
        options,
        json!({ "http": {
            "routers": {
                "slow": router("Host(`slow.test`)", "slow"),
                "fast": router("Host(`fast.test`)", "fast"),
            },
            "services": { "slow": service(&[&slow.url()]), "fast": service(&[&fast.url()]) },
        }}),
    )
    .await;

    let started = Instant::now();
    assert_status(&wharf, "slow.test", "/", 504).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2800),
        "504 expected after the 1s responseHeaderTimeout, came after {took:?}"
    );
    assert_eq!(slow.hits(), 1, "the slow upstream got the request");
    assert_routed(&wharf, "fast.test", "/", "fast").await;
}
