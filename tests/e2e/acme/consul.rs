//! A node whose certificate store is Consul (the Consul double, started by the
//! test), with a cluster key: issuance over HTTP-01, private keys sealed in
//! Consul's KV store, `/api/store` and `wharf certs` on the same store.

use std::net::SocketAddr;

use consul_double::ConsulDouble;
use serde_json::json;
use wharf_certstore::model::{account_key, certificate_key, Domains};

use super::node::{routers, Node};
use super::pebble::Pebble;
use super::{TestDir, ISSUE_TIMEOUT};
use crate::backends::Backend;
use crate::harness::free_port;

/// base64 of the bytes 0..32.
const CLUSTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// base64 of 32 bytes of 7.
const OTHER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

const PREFIX: &str = "wharf-e2e/";

/// Whether `value` holds a PEM private key in clear.
fn has_clear_key(value: &[u8]) -> bool {
    value.windows(11).any(|w| w == b"PRIVATE KEY")
}

// Multi-threaded: the double answers on this runtime while the test blocks on
// `wharf certs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_certificate_in_consul_with_sealed_private_keys() {
    let dir = TestDir::new("consul");
    let port = free_port();
    let pebble = Pebble::start(&dir.0, port).await;
    let consul = ConsulDouble::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("consul double");
    let backend = Backend::echo("acme").await;
    let host = "consul.wharf.test";
    let cert_store = json!({
        "consul": { "address": consul.url(), "prefix": PREFIX, "lockDelay": "1s" },
        "encryptionKey": CLUSTER_KEY,
    });
    let node = Node::start_with_store(
        &dir.0.join("node"),
        &pebble,
        cert_store,
        port,
        &routers(&[(host, "http")], &backend.url()),
    )
    .await;
    let roots = pebble.issuing_roots().await;
    node.wait_for_valid_cert(host, &roots, ISSUE_TIMEOUT).await;
    assert!(
        !node.log().contains("private keys are stored in clear"),
        "no warning with a cluster key"
    );

    let cert_key = certificate_key("http", &Domains::new(host, &[])).expect("key");
    let stored = consul
        .state()
        .entry(&format!("{PREFIX}kv/{cert_key}"))
        .expect("certificate entry in Consul");
    assert!(stored.value.starts_with(b"wharf-sealed-1:"), "sealed entry");
    assert!(!has_clear_key(&stored.value), "no private key in clear");
    assert!(
        !String::from_utf8_lossy(&stored.value).contains(host),
        "the whole entry is sealed"
    );
    let account = account_key(&pebble.directory(), "ops@wharf.test").expect("account key");
    let stored = consul
        .state()
        .entry(&format!("{PREFIX}kv/{account}"))
        .expect("account entry in Consul");
    assert!(
        stored.value.starts_with(b"wharf-sealed-1:"),
        "sealed account"
    );

    let status = crate::client::get(node.admin, "localhost", "/api/store")
        .await
        .expect("admin API");
    assert_eq!(status.status, 200, "{}", status.text());
    let status = status.json();
    assert_eq!(status["backend"], "consul", "{status}");
    assert_eq!(status["connected"], true, "{status}");

    let out = node.certs(&["list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(host),
        "wharf certs list on Consul: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Another cluster key cannot read the entries, and says which.
    let other_key = format!("--certstore.encryptionkey={OTHER_KEY}");
    let out = node.certs(&["list", &other_key]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!stdout.contains(host), "nothing readable: {stdout}");
    assert!(
        stderr.contains(&format!("sealed entry {cert_key}")) && stderr.contains("cluster key"),
        "the error names the entry: {stderr}"
    );
}
