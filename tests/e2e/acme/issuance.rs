//! One node against Pebble: issuance, restart, forced renewal, the `wharf certs` CLI.

use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::node::{connect, leaf, routers, Node};
use super::pebble::Pebble;
use super::{TestDir, ISSUE_TIMEOUT};
use crate::backends::Backend;
use crate::client::empty;
use crate::harness::free_port;

/// Sends `GET /` for `host` on an open HTTP/1.1 connection; returns the status.
async fn get_on(
    sender: &mut hyper::client::conn::http1::SendRequest<crate::client::ReqBody>,
    host: &str,
) -> u16 {
    let req = http::Request::get("/")
        .header("host", host)
        .body(empty())
        .expect("request");
    let resp = sender
        .send_request(req)
        .await
        .expect("response on the open connection");
    let status = resp.status().as_u16();
    resp.into_body().collect().await.expect("body");
    status
}

/// An HTTP/1.1 client over an established TLS connection.
async fn http1(
    tls: TlsStream<TcpStream>,
) -> hyper::client::conn::http1::SendRequest<crate::client::ReqBody> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("http/1.1 handshake");
    tokio::spawn(conn);
    sender
}

#[tokio::test]
async fn http01_and_tls_alpn01_certificates_verify_against_pebbles_root() {
    let dir = TestDir::new("issue");
    let port = free_port();
    let pebble = Pebble::start(&dir.0, port).await;
    let backend = Backend::echo("acme").await;
    let hosts = [
        ("web1.wharf.test", "http"),
        ("alpn1.wharf.test", "alpn"),
        ("rsa1.wharf.test", "rsa"),
    ];
    let started = Instant::now();
    let node = Node::start(
        &dir.0.join("node"),
        &pebble,
        &dir.0.join("store"),
        port,
        &routers(&hosts, &backend.url()),
    )
    .await;
    let roots = pebble.issuing_roots().await;
    for (host, resolver) in hosts {
        node.wait_for_valid_cert(host, &roots, ISSUE_TIMEOUT).await;
        eprintln!(
            "{resolver}: certificate for {host} served {:.2}s after start",
            started.elapsed().as_secs_f64()
        );
        let tls = connect(port, host, &roots)
            .await
            .expect("verified handshake");
        let der = leaf(&tls).expect("leaf certificate");
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).expect("x509");
        let key_alg = cert.public_key().algorithm.algorithm.to_id_string();
        let want = if resolver == "rsa" {
            "1.2.840.113549.1.1.1" // rsaEncryption
        } else {
            "1.2.840.10045.2.1" // id-ecPublicKey
        };
        assert_eq!(
            key_alg, want,
            "{host}: key algorithm of the served certificate"
        );
        if resolver == "rsa" {
            match cert.public_key().parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(k)) => {
                    assert_eq!(k.key_size(), 2048, "{host}: RSA key size")
                }
                other => panic!("{host}: not an RSA key: {other:?}"),
            }
        }
        let mut sender = http1(tls).await;
        assert_eq!(
            get_on(&mut sender, host).await,
            200,
            "{host} routes to the backend over TLS"
        );
    }
    assert_eq!(pebble.orders(), 3, "one order per domain set");
    let certs = node.certificates().await;
    let list = certs.as_array().expect("a list");
    assert_eq!(list.len(), 3, "{certs}");
    for c in list {
        assert_eq!(c["status"], "valid", "{c}");
        assert!(c["issuer"].as_str().unwrap_or("").contains("Pebble"), "{c}");
        assert!(c["notAfter"].is_string() && c["renewAt"].is_string(), "{c}");
        assert!(c.get("lastError").is_none(), "{c}");
    }
    let one = crate::client::get(
        node.admin,
        "localhost",
        "/api/certificates/alpn1.wharf.test",
    )
    .await
    .expect("admin API");
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(one.json()["resolver"], "alpn");
    let none = crate::client::get(node.admin, "localhost", "/api/certificates/nope.test")
        .await
        .expect("admin API");
    assert_eq!(none.status, 404);
    // Challenge entries are removed once the certificates are issued (the file
    // store keeps a tombstone, never an entry).
    let leftovers: Vec<String> = walk(&dir.0.join("store"))
        .into_iter()
        .filter(|p| p.contains("challenges/") && p.ends_with("/.entry"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "challenge entries left: {leftovers:?}"
    );
}

/// Every file path under `dir`.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.to_string_lossy().into_owned());
        }
    }
    out
}

#[tokio::test]
async fn restart_serves_the_stored_certificate_without_a_new_order() {
    let dir = TestDir::new("restart");
    let port = free_port();
    let pebble = Pebble::start(&dir.0, port).await;
    let backend = Backend::echo("acme").await;
    let dynamic = routers(&[("keep.wharf.test", "http")], &backend.url());
    let store = dir.0.join("store");
    let mut node = Node::start(&dir.0.join("node"), &pebble, &store, port, &dynamic).await;
    let roots = pebble.issuing_roots().await;
    let first = node
        .wait_for_valid_cert("keep.wharf.test", &roots, ISSUE_TIMEOUT)
        .await;
    assert_eq!(pebble.orders(), 1);
    node.kill();

    let restarted = Instant::now();
    let node = Node::start(&dir.0.join("node"), &pebble, &store, port, &dynamic).await;
    let again = node
        .wait_for_valid_cert("keep.wharf.test", &roots, Duration::from_secs(10))
        .await;
    eprintln!(
        "stored certificate served {:.2}s after the restart",
        restarted.elapsed().as_secs_f64()
    );
    assert_eq!(
        again, first,
        "the stored certificate is served after a restart"
    );
    // Give the manager time to act, then check it did not order.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(pebble.orders(), 1, "a restart must not order again");
}

#[tokio::test]
async fn forced_renewal_replaces_the_certificate_without_dropping_connections() {
    let dir = TestDir::new("renew");
    let port = free_port();
    let pebble = Pebble::start(&dir.0, port).await;
    let backend = Backend::echo("acme").await;
    let host = "renew.wharf.test";
    let node = Node::start(
        &dir.0.join("node"),
        &pebble,
        &dir.0.join("store"),
        port,
        &routers(&[(host, "alpn")], &backend.url()),
    )
    .await;
    let roots = pebble.issuing_roots().await;
    let old = node.wait_for_valid_cert(host, &roots, ISSUE_TIMEOUT).await;
    let tls = connect(port, host, &roots).await.expect("handshake");
    assert_eq!(leaf(&tls).expect("leaf"), old);
    let mut open = http1(tls).await;
    assert_eq!(get_on(&mut open, host).await, 200);

    let started = Instant::now();
    let out = node.certs(&["renew", host]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wharf certs renew failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("renewed"), "{stdout}");
    eprintln!(
        "forced renewal through the CLI took {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let new = crate::harness::eventually(
        "the renewed certificate to be served",
        ISSUE_TIMEOUT,
        || async {
            let tls = connect(port, host, &roots).await?;
            let served = leaf(&tls)?;
            if served == old {
                Err("still the old certificate".to_string())
            } else {
                Ok(served)
            }
        },
    )
    .await;
    assert_ne!(new, old);
    assert_eq!(
        get_on(&mut open, host).await,
        200,
        "the open connection survives the renewal"
    );
    assert_eq!(pebble.orders(), 2);

    // The CLI sees the new certificate; export writes it with a private key file.
    let list = node.certs(&["list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains(host));
    let show = node.certs(&["show", host]);
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).expect("show prints JSON");
    assert_eq!(shown["status"], "valid");
    let out_dir = dir.0.join("export");
    let export = node.certs(&["export", host, "--out", &out_dir.to_string_lossy()]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let crt = std::fs::read_to_string(out_dir.join(format!("{host}.crt"))).expect("exported chain");
    assert!(crt.contains("BEGIN CERTIFICATE"));
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(out_dir.join(format!("{host}.key")))
            .expect("key")
            .permissions(),
    );
    assert_eq!(key_mode & 0o077, 0, "the exported key is private");
}
