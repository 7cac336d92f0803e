//! Several nodes and the CA's failures: one order per domain set across nodes
//! sharing a store, any node answering another's challenge, imported certificates,
//! and a CA outage with backoff.

use std::time::Duration;

use rustls::pki_types::CertificateDer;

use super::node::{connect, leaf, routers, Node};
use super::pebble::Pebble;
use super::{TestDir, ISSUE_TIMEOUT};
use crate::backends::Backend;
use crate::harness::{eventually, free_port};

#[tokio::test]
async fn two_nodes_sharing_a_store_order_once_and_both_serve() {
    let dir = TestDir::new("cluster");
    let (port_a, port_b) = (free_port(), free_port());
    // Pebble validates on node A's port only.
    let pebble = Pebble::start(&dir.0, port_a).await;
    let backend = Backend::echo("acme").await;
    let store = dir.0.join("store");
    let shared = routers(&[("both.wharf.test", "http")], &backend.url());
    let (dir_a, dir_b) = (dir.0.join("a"), dir.0.join("b"));
    let (a, b) = tokio::join!(
        Node::start(&dir_a, &pebble, &store, port_a, &shared),
        Node::start(&dir_b, &pebble, &store, port_b, &shared),
    );
    let roots = pebble.issuing_roots().await;
    let from_a = a
        .wait_for_valid_cert("both.wharf.test", &roots, ISSUE_TIMEOUT)
        .await;
    let from_b = b
        .wait_for_valid_cert("both.wharf.test", &roots, ISSUE_TIMEOUT)
        .await;
    assert_eq!(from_a, from_b, "both nodes serve the one certificate");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        pebble.orders(),
        1,
        "exactly one order for the shared domain set"
    );
    assert_eq!(
        pebble.accounts(),
        1,
        "one account for both nodes and resolvers"
    );

    // Only B wants this name, and B orders it; Pebble validates on A's port, and A
    // answers from the store a challenge it never created, then serves the result.
    b.set_dynamic(&routers(
        &[("both.wharf.test", "http"), ("onlyb.wharf.test", "alpn")],
        &backend.url(),
    ));
    let on_b = b
        .wait_for_valid_cert("onlyb.wharf.test", &roots, ISSUE_TIMEOUT)
        .await;
    let on_a = a
        .wait_for_valid_cert("onlyb.wharf.test", &roots, ISSUE_TIMEOUT)
        .await;
    assert_eq!(on_a, on_b);
    assert_eq!(pebble.orders(), 2);
}

#[tokio::test]
async fn imported_certificates_are_served_by_every_node() {
    let dir = TestDir::new("import");
    let port = free_port();
    let pebble = Pebble::start(&dir.0, port).await;
    let backend = Backend::echo("acme").await;
    let node = Node::start(
        &dir.0.join("node"),
        &pebble,
        &dir.0.join("store"),
        port,
        &routers(&[], &backend.url()),
    )
    .await;
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["imported.wharf.test".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    std::fs::write(dir.0.join("c.pem"), cert.pem()).expect("cert file");
    std::fs::write(dir.0.join("k.pem"), key.serialize_pem()).expect("key file");
    let out = node.certs(&[
        "import",
        "--cert",
        &dir.0.join("c.pem").to_string_lossy(),
        "--key",
        &dir.0.join("k.pem").to_string_lossy(),
        "--resolver",
        "http",
    ]);
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
    let served = node
        .wait_for_valid_cert("imported.wharf.test", &root, Duration::from_secs(20))
        .await;
    assert_eq!(&served, cert.der());
    assert_eq!(pebble.orders(), 0);
}

#[tokio::test]
async fn ca_outage_keeps_serving_and_retries_with_backoff_until_the_ca_is_back() {
    let dir = TestDir::new("outage");
    let port = free_port();
    let mut pebble = Pebble::start(&dir.0, port).await;
    let backend = Backend::echo("acme").await;
    let node = Node::start(
        &dir.0.join("node"),
        &pebble,
        &dir.0.join("store"),
        port,
        &routers(&[("up.wharf.test", "http")], &backend.url()),
    )
    .await;
    let old_roots = pebble.issuing_roots().await;
    let served = node
        .wait_for_valid_cert("up.wharf.test", &old_roots, ISSUE_TIMEOUT)
        .await;

    pebble.stop();
    node.set_dynamic(&routers(
        &[("up.wharf.test", "http"), ("later.wharf.test", "http")],
        &backend.url(),
    ));
    let error = eventually(
        "the failed issuance in /api/certificates",
        Duration::from_secs(30),
        || async {
            let certs = node.certificates().await;
            let later = certs
                .as_array()
                .and_then(|l| l.iter().find(|c| c["main"] == "later.wharf.test").cloned());
            match later {
                Some(c) if c["status"] == "error" => Ok(c),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(
        error["lastError"].as_str().is_some_and(|e| !e.is_empty()),
        "{error}"
    );
    // Existing certificates keep being served while the CA is down.
    let tls = connect(port, "up.wharf.test", &old_roots)
        .await
        .expect("handshake while the CA is down");
    assert_eq!(leaf(&tls).expect("leaf"), served);
    // Retries back off (1s, 2s, 3s cap): a handful of attempts, never a tight loop.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let failures = node.log().matches("certificate issuance failed").count();
    assert!(
        (2..=6).contains(&failures),
        "{failures} failed attempts in about 7s"
    );

    // The CA comes back (with a new root and no accounts): the retry succeeds.
    pebble.resume().await;
    let new_roots = pebble.issuing_roots().await;
    node.wait_for_valid_cert("later.wharf.test", &new_roots, ISSUE_TIMEOUT)
        .await;
    assert_eq!(pebble.orders(), 1);
    assert_eq!(
        pebble.accounts(),
        1,
        "the lost account is registered again, once"
    );
}

#[tokio::test]
async fn external_account_binding_is_sent_when_the_ca_requires_it() {
    let dir = TestDir::new("eab");
    let port = free_port();
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = Pebble::start_with_eab(&dir.0, port, "kid-1", key).await;
    let backend = Backend::echo("acme").await;
    let node = Node::start(
        &dir.0.join("node"),
        &pebble,
        &dir.0.join("store"),
        port,
        &routers(&[("eab.wharf.test", "http")], &backend.url()),
    )
    .await;
    let roots = pebble.issuing_roots().await;
    node.wait_for_valid_cert("eab.wharf.test", &roots, ISSUE_TIMEOUT)
        .await;
    assert_eq!(pebble.accounts(), 1);
}
