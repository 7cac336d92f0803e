//! Listener tests over real sockets: ACME challenge answers on HTTP and TLS.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wharf_certstore::challenge::{BoxFuture, ChallengeSource};

use super::*;
use crate::router::RouteTable;

struct Fixed {
    tokens: HashMap<String, String>,
    certs: HashMap<String, Arc<CertifiedKey>>,
}

impl ChallengeSource for Fixed {
    fn http01<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move { self.tokens.get(token).cloned() })
    }
    fn tls_alpn01<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Option<Arc<CertifiedKey>>> {
        Box::pin(async move { self.certs.get(domain).cloned() })
    }
}

/// Accepts any server certificate and records it.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Serves an entrypoint named `web` on a free loopback port with an empty route
/// table; returns its address and the token that stops it.
fn start(
    tls: Option<Arc<rustls::ServerConfig>>,
    challenges: Option<Arc<dyn ChallengeSource>>,
    ping: bool,
    idle_timeout: Duration,
) -> (std::net::SocketAddr, CancellationToken) {
    let state = Arc::new(State {
        table: ArcSwap::from_pointee(RouteTable::default()),
        terminating: Default::default(),
        terminating_status: 503,
        admin: AdminInfo::default(),
        challenges,
        label_issues: Vec::new(),
    });
    let listener = bind("web", "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let ep = EntryPointRuntime {
        name: "web".into(),
        tls,
        trusted: TrustedPeers::default(),
        read_timeout: Duration::from_secs(5),
        idle_timeout,
        ping,
        admin: false,
        redirect: None,
        observe: None,
    };
    let stop = CancellationToken::new();
    tokio::spawn(serve(
        listener,
        Arc::new(ep),
        state,
        stop.clone(),
        stop.clone(),
        TaskTracker::new(),
    ));
    (addr, stop)
}

#[tokio::test]
async fn acme_challenges_are_answered_over_http_and_tls_alpn() {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let challenge_key = Arc::new(
        wharf_certstore::resolver::self_signed(&provider, "acme.test", &["acme.test"]).unwrap(),
    );
    let source = Fixed {
        tokens: HashMap::from([("tok123".to_string(), "tok123.thumb".to_string())]),
        certs: HashMap::from([("acme.test".to_string(), challenge_key.clone())]),
    };
    let resolver = Arc::new(wharf_certstore::CertResolver::new(&provider).unwrap());
    let tls = crate::tls::server_config(provider.clone(), resolver).unwrap();
    let (addr, stop) = start(
        Some(Arc::new(tls)),
        Some(Arc::new(source)),
        false,
        Duration::from_secs(5),
    );

    // HTTP-01: a known token is answered, an unknown one falls through to routing (404).
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /.well-known/acme-challenge/tok123 HTTP/1.1\r\nHost: acme.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with("tok123.thumb"), "{out}");
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /.well-known/acme-challenge/other HTTP/1.1\r\nHost: acme.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");

    // TLS-ALPN-01: the challenge certificate is presented with ALPN acme-tls/1.
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider.clone())))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("acme.test").unwrap(), tcp)
        .await
        .unwrap();
    let (_, conn) = tls.get_ref();
    assert_eq!(conn.alpn_protocol(), Some(&b"acme-tls/1"[..]));
    let presented = conn.peer_certificates().unwrap()[0].clone();
    assert_eq!(presented, challenge_key.cert[0]);

    // No pending challenge for that name: the handshake does not complete.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let res = connector
        .connect(ServerName::try_from("none.test").unwrap(), tcp)
        .await;
    assert!(res.is_err());
    stop.cancel();
}

/// Reads one HTTP/1.1 response with a Content-Length body; returns the head and body.
async fn read_response(s: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.unwrap();
        assert_eq!(
            n,
            1,
            "connection closed after {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    (head, String::from_utf8(body).unwrap())
}

#[tokio::test]
async fn idle_keep_alive_connections_park_and_serve_the_next_request() {
    let (addr, stop) = start(None, None, true, Duration::from_secs(30));

    let ping = b"GET /ping HTTP/1.1\r\nHost: a.test\r\n\r\n";
    let mut s = TcpStream::connect(addr).await.unwrap();
    let before = park::parked_total();
    for round in 0..3 {
        s.write_all(ping).await.unwrap();
        let (head, body) = read_response(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200"), "round {round}: {head}");
        assert_eq!(body, "OK");
        // Quiet for longer than PARK_AFTER: the connection parks, then serves the
        // next request on the same socket.
        tokio::time::sleep(park::PARK_AFTER + Duration::from_millis(600)).await;
    }
    assert!(
        park::parked_total() >= before + 3,
        "parked {} times",
        park::parked_total() - before
    );
    // Two pipelined requests after parking, sent in one write.
    let two = [&ping[..], &ping[..]].concat();
    s.write_all(&two).await.unwrap();
    for _ in 0..2 {
        let (head, body) = read_response(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, "OK");
    }
    // A request whose head arrives in two parts around a pause is not lost.
    s.write_all(b"GET /ping HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(park::PARK_AFTER + Duration::from_millis(600)).await;
    s.write_all(b"Host: a.test\r\n\r\n").await.unwrap();
    let (head, _) = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stop.cancel();
}
