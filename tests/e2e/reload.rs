//! Hot reload of the dynamic file: under load, and with an invalid file.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::backends::Backend;
use crate::client;
use crate::harness::{router, service, Wharf};

/// Outcome of one client loop.
#[derive(Debug, Default)]
struct LoopReport {
    ok: usize,
    by_backend: BTreeMap<String, usize>,
    failures: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_load_drops_no_request() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let extra = Backend::echo("extra").await;
    let (a_url, b_url, extra_url) = (a.url(), b.url(), extra.url());
    // Generation `n`: odd ones send `hot.test` to b and add the `extra` router.
    let config = |n: usize| -> Value {
        let odd = n % 2 == 1;
        let mut routers = json!({ "hot": router("Host(`hot.test`)", "hot") });
        let mut services = json!({
            "hot": service(&[if odd { b_url.as_str() } else { a_url.as_str() }]),
        });
        if odd {
            routers["extra"] = router("Host(`extra.test`)", "extra");
            services["extra"] = service(&[&extra_url]);
        }
        json!({ "http": { "routers": routers, "services": services } })
    };
    let wharf = Wharf::start(config(0)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let loops: Vec<_> = (0..4)
        .map(|i| {
            let stop = stop.clone();
            let addr = wharf.web();
            tokio::spawn(async move {
                // Half the loops reuse keep-alive connections, half open new ones.
                let pooled = (i < 2).then(client::pooled);
                let mut report = LoopReport::default();
                while !stop.load(Ordering::SeqCst) {
                    let result = match &pooled {
                        Some(c) => client::pooled_get(c, addr, "hot.test", "/").await,
                        None => client::get(addr, "hot.test", "/").await,
                    };
                    match result {
                        Ok(reply) if reply.status == 200 => {
                            report.ok += 1;
                            let name = reply.json()["name"].as_str().unwrap_or("?").to_owned();
                            *report.by_backend.entry(name).or_default() += 1;
                        }
                        Ok(reply) => report.failures.push(format!(
                            "loop {i}: {} {}",
                            reply.status,
                            reply.text()
                        )),
                        Err(e) => report.failures.push(format!("loop {i}: {e:#}")),
                    }
                }
                report
            })
        })
        .collect();

    let started = Instant::now();
    let generations = 11;
    for n in 1..=generations {
        wharf.set_dynamic(&config(n)).await;
        // Spread the rewrites over about five seconds of load.
        let due = started + Duration::from_millis(450 * n as u64);
        tokio::time::sleep_until(due.into()).await;
    }
    stop.store(true, Ordering::SeqCst);

    let mut total = LoopReport::default();
    for handle in loops {
        let report = handle.await.expect("client loop");
        total.ok += report.ok;
        total.failures.extend(report.failures);
        for (name, n) in report.by_backend {
            *total.by_backend.entry(name).or_default() += n;
        }
    }
    eprintln!(
        "{} requests during reloads: {:?}",
        total.ok, total.by_backend
    );
    assert!(
        total.failures.is_empty(),
        "{} of {} requests failed during reloads, first ones: {:#?}",
        total.failures.len(),
        total.failures.len() + total.ok,
        &total.failures[..total.failures.len().min(10)]
    );
    assert!(total.ok >= 100, "too little load: {total:?}");
    assert!(
        total.by_backend.contains_key("a") && total.by_backend.contains_key("b"),
        "both backends served while the file changed: {total:?}"
    );

    // The last generation is odd: hot.test goes to b and extra.test exists.
    for _ in 0..5 {
        assert_eq!(wharf.echo("hot.test", "/").await["name"], "b");
        assert_eq!(wharf.echo("extra.test", "/").await["name"], "extra");
    }
    // And removing the extra router takes effect too.
    wharf.set_dynamic(&config(generations + 1)).await;
    assert_eq!(wharf.echo("hot.test", "/").await["name"], "a");
    assert_eq!(wharf.get("extra.test", "/").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_dynamic_file_keeps_last_good_routes() {
    let a = Backend::echo("a").await;
    let b = Backend::echo("b").await;
    let good = json!({ "http": {
        "routers": { "app": router("Host(`app.test`)", "app") },
        "services": { "app": service(&[&a.url()]) },
    }});
    let wharf = Wharf::start(good).await;
    assert_eq!(wharf.echo("app.test", "/").await["name"], "a");

    // Broken YAML: an unterminated flow sequence.
    let log_before = wharf.log().len();
    wharf.write_dynamic_raw("http:\n  routers:\n    app: [\n      rule: Host(`app.test`)\n");
    wharf
        .wait_for_log(
            "an error about dynamic.yml in wharf's log",
            Duration::from_secs(10),
            |log| {
                let new = log.get(log_before..).unwrap_or_default();
                new.lines().any(|line| {
                    let lower = line.to_ascii_lowercase();
                    lower.contains("dynamic.yml")
                        && ["error", "warn", " err ", " wrn "]
                            .iter()
                            .any(|level| lower.contains(level))
                })
            },
        )
        .await;

    // The last good configuration keeps serving, on new and on the same connections.
    let pooled = client::pooled();
    for _ in 0..20 {
        assert_eq!(wharf.echo("app.test", "/").await["name"], "a");
        let reply = client::pooled_get(&pooled, wharf.web(), "app.test", "/")
            .await
            .expect("pooled request");
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let routers = wharf.api("/api/http/routers").await;
    assert!(
        routers
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["name"] == "app@file")),
        "the last good router is still listed: {routers}"
    );

    // A fixed file is picked up again.
    let fixed = json!({ "http": {
        "routers": { "app": router("Host(`app.test`)", "app") },
        "services": { "app": service(&[&b.url()]) },
    }});
    wharf.set_dynamic(&fixed).await;
    assert_eq!(wharf.echo("app.test", "/").await["name"], "b");
}
