//! Compiling routers whose middlewares need more than their options: the service
//! of `errors` resolved by provider-qualified name, and broken middlewares that
//! disable only the routers using them.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use super::compile::{compile, CompileEnv, EntryPointSpec};
use super::info::Status;
use crate::body::{self, Body};
use crate::config::dynamic::RuleSyntax;
use crate::config::DynamicConfig;
use crate::forward::client::Clients;
use crate::lb::HealthRegistry;
use crate::middleware::HttpService;

fn config(v: serde_json::Value) -> DynamicConfig {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn errors_pages_come_from_a_qualified_service_and_bad_middlewares_stay_local() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let file = config(json!({"http": {
        "routers": {
            "ok": {"rule": "Host(`ok.test`)", "service": "app", "middlewares": ["pages"]},
            "bad": {"rule": "Host(`bad.test`)", "service": "app", "middlewares": ["badpages"]},
            "cb": {"rule": "Host(`cb.test`)", "service": "app", "middlewares": ["brokencb"]},
            "dock": {"rule": "Host(`dock.test`)", "service": "app", "middlewares": ["gz@docker"]},
        },
        "services": {"app": {"loadBalancer": {"servers": [{"url": dead}]}}},
        "middlewares": {
            "pages": {"errors": {"status": "500-599", "service": "pages@internal", "query": "/{status}"}},
            "badpages": {"errors": {"status": "502", "service": "nope@docker"}},
            "brokencb": {"circuitBreaker": {"expression": "Bogus() > 1"}},
        },
    }}));
    let docker = config(json!({"http": {"middlewares": {"gz": {"compress": "true"}}}}));
    let configs = BTreeMap::from([("file", file), ("docker", docker)]);
    let entrypoints = vec![EntryPointSpec {
        name: "web".into(),
        tls: false,
        middlewares: vec![],
        as_default: true,
        admin: false,
    }];
    let page = HttpService::new(tower::service_fn(|req: Request<Body>| async move {
        Ok::<_, Infallible>(Response::new(body::full(format!("page {}", req.uri()))))
    }));
    let internal = HashMap::from([("pages@internal".to_string(), page)]);
    let clients = Clients::new(Default::default());
    let health = HealthRegistry::new();
    let env = CompileEnv {
        entrypoints: &entrypoints,
        default_syntax: RuleSyntax::V3,
        clients: &clients,
        health: &health,
        internal: &internal,
    };
    let table = compile(&configs, &env);
    let router = |n: &str| &table.info.routers[n];
    assert_eq!(router("ok@file").status, Status::Enabled);
    assert_eq!(router("dock@file").status, Status::Enabled);
    assert_eq!(router("bad@file").status, Status::Disabled);
    assert!(
        router("bad@file").errors[0].contains("nope@docker"),
        "{:?}",
        router("bad@file").errors
    );
    assert_eq!(router("cb@file").status, Status::Disabled);
    assert!(router("cb@file").errors[0].contains("Bogus"));
    assert_eq!(
        table.info.middlewares["brokencb@file"].status,
        Status::Disabled
    );

    let web = table.entrypoint("web").unwrap();
    let ok = web
        .plain
        .routers
        .iter()
        .find(|e| &*e.name == "ok@file")
        .unwrap();
    let req = Request::builder()
        .uri("/x")
        .header("host", "ok.test")
        .body(body::empty())
        .unwrap();
    let resp = ok.handler.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&text[..], b"page /502");
}
