//! TLS termination: a static certificate from the dynamic configuration is served for
//! its SNI name with ALPN h2, unknown names get the default certificate, and a TLS
//! router only answers TLS requests.

use std::sync::Arc;

use http::Request;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::backends::Backend;
use crate::client::empty;
use crate::harness::{self, service, Wharf};

/// A client that trusts only `root` and offers h2 then http/1.1.
fn connector(root: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).expect("valid root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(cfg))
}

#[tokio::test]
async fn static_certificate_is_served_with_h2_and_tls_routers_need_tls() {
    let backend = Backend::echo("secure").await;
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["secure.test".into()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let dir = std::env::temp_dir().join(format!("wharf-e2e-tls-{}", harness::free_port()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cert_path = dir.join("secure.pem");
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    let dynamic = json!({
        "http": {
            "routers": { "secure": {
                "rule": "Host(`secure.test`)", "service": "secure",
                "entryPoints": ["web"], "tls": {}
            }},
            "services": { "secure": service(&[&backend.url()]) },
        },
        "tls": { "certificates": [ { "certFile": cert_path.display().to_string(), "keyFile": key.serialize_pem() } ] }
    });
    let wharf = Wharf::start(dynamic).await;

    // TLS with SNI secure.test: our certificate verifies, ALPN picks h2, the router answers.
    let tcp = TcpStream::connect(wharf.web()).await.expect("connect");
    let name = ServerName::try_from("secure.test").expect("name");
    let tls = connector(cert.der())
        .connect(name, tcp)
        .await
        .expect("handshake verifies");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let req = Request::get("https://secure.test/x")
        .body(empty())
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let seen: serde_json::Value = serde_json::from_slice(&body).expect("echo json");
    assert_eq!(seen["name"], "secure");
    assert_eq!(seen["headers"]["x-forwarded-proto"][0], "https");

    // An unknown SNI name gets the default certificate, which our client rejects.
    let tcp = TcpStream::connect(wharf.web()).await.expect("connect");
    let other = ServerName::try_from("other.test").expect("name");
    assert!(connector(cert.der()).connect(other, tcp).await.is_err());

    // The TLS router does not answer plain HTTP.
    let plain = wharf.get("secure.test", "/x").await;
    assert_eq!(plain.status, 404);
    std::fs::remove_dir_all(&dir).ok();
}
