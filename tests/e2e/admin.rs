//! The admin API on the `traefik` entrypoint, in Traefik's JSON shape.

use serde_json::{json, Value};

use crate::backends::Backend;
use crate::client;
use crate::harness::{router, service, Wharf};

/// The entry called `name` in a JSON array of named objects.
fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|item| item["name"] == name))
        .unwrap_or_else(|| panic!("{name} missing from {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routers_are_listed_and_an_invalid_rule_disables_only_its_router() {
    const GOOD_RULE: &str = "Host(`good.test`)";
    // `Nope` is not a matcher.
    const BAD_RULE: &str = "Host(`oops.test`) && Nope(`x`)";
    let a = Backend::echo("a").await;
    let mut pinned = router("Host(`pinned.test`)", "app");
    pinned["priority"] = json!(42);
    let wharf = Wharf::start(json!({ "http": {
        "routers": {
            "good": router(GOOD_RULE, "app"),
            "broken": router(BAD_RULE, "app"),
            "pinned": pinned,
        },
        "services": { "app": service(&[&a.url()]) },
    }}))
    .await;

    let routers = wharf.api("/api/http/routers").await;
    let good = named(&routers, "good@file");
    assert_eq!(good["provider"], "file", "{good}");
    assert_eq!(good["rule"], GOOD_RULE, "{good}");
    assert!(
        good["service"] == "app@file" || good["service"] == "app",
        "{good}"
    );
    assert_eq!(good["entryPoints"], json!(["web"]), "{good}");
    assert_eq!(
        good["priority"],
        GOOD_RULE.len(),
        "default priority is the rule length: {good}"
    );
    assert_eq!(good["status"], "enabled", "{good}");

    let pinned = named(&routers, "pinned@file");
    assert_eq!(pinned["priority"], 42, "{pinned}");
    assert_eq!(pinned["status"], "enabled", "{pinned}");

    let bad = named(&routers, "broken@file");
    assert_eq!(bad["status"], "disabled", "{bad}");
    let errors = bad["error"]
        .as_array()
        .unwrap_or_else(|| panic!("a disabled router lists its errors: {bad}"));
    let text = errors
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!("errors of the disabled router: {text}");
    assert!(
        text.contains("broken"),
        "the error names the router: {text:?}"
    );
    let column = BAD_RULE.find("Nope").expect("Nope in the rule") + 1;
    assert!(
        text.to_ascii_lowercase()
            .contains(&format!("column {column}")),
        "the error gives the (1-based) column {column} of `Nope`: {text:?}"
    );

    // The other routers keep working; the broken one matches nothing.
    assert_eq!(wharf.echo("good.test", "/").await["name"], "a");
    assert_eq!(wharf.echo("pinned.test", "/").await["name"], "a");
    assert_eq!(wharf.get("oops.test", "/").await.status, 404);

    // One router by name.
    let one = wharf.api("/api/http/routers/good@file").await;
    assert_eq!(one["name"], "good@file");
    assert_eq!(one["rule"], GOOD_RULE);
    let missing = client::get(wharf.admin(), "localhost", "/api/http/routers/nope@file")
        .await
        .expect("admin request");
    assert_eq!(missing.status, 404, "{}", missing.text());

    // Services with the status of their servers.
    let services = wharf.api("/api/http/services").await;
    let app = named(&services, "app@file");
    assert_eq!(app["provider"], "file", "{app}");
    assert_eq!(app["status"], "enabled", "{app}");
    assert_eq!(
        app["serverStatus"][a.url()],
        "UP",
        "serverStatus lists the server: {app}"
    );

    // Readiness.
    let ping = client::get(wharf.admin(), "localhost", "/ping")
        .await
        .expect("admin request");
    assert_eq!((ping.status.as_u16(), ping.text().trim()), (200, "OK"));

    // Overview counts, entrypoints and version.
    let overview = wharf.api("/api/overview").await;
    assert_eq!(overview["http"]["routers"]["total"], 3, "{overview}");
    assert_eq!(overview["http"]["routers"]["errors"], 1, "{overview}");
    let entrypoints = wharf.api("/api/entrypoints").await;
    let web = named(&entrypoints, "web");
    assert_eq!(web["address"], wharf.web().to_string(), "{web}");
    named(&entrypoints, "traefik");
    let version = wharf.api("/api/version").await;
    assert!(version["Version"].is_string(), "{version}");
}
