//! One `wharf` process configured for ACME against a [`Pebble`]: resolvers `http`
//! (HTTP-01) and `alpn` (TLS-ALPN-01), a file certificate store that several nodes
//! may share, and its `web` entrypoint on a port chosen by the test (Pebble validates
//! on it). Also the TLS client that checks what a node serves, and `wharf certs`.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::pebble::Pebble;
use crate::client;
use crate::harness::{eventually, free_port, to_yaml, write_atomically};

/// How long a node gets to answer `/ping`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running wharf node; killed when dropped (its log printed if the test fails).
pub struct Node {
    child: Option<Child>,
    dir: PathBuf,
    /// The loopback address the `web` entrypoint listens on.
    pub ip: Ipv4Addr,
    /// The `web` entrypoint (plain and TLS).
    pub web: u16,
    /// The admin entrypoint.
    pub admin: SocketAddr,
}

/// `certStore` for a file store in `dir`.
pub fn file_store(dir: &Path) -> Value {
    json!({ "file": { "directory": dir, "pollInterval": "200ms" } })
}

/// Static configuration of a node.
pub fn static_config(
    pebble: &Pebble,
    cert_store: Value,
    dynamic: &Path,
    web: SocketAddr,
    admin: SocketAddr,
) -> Value {
    let resolver = |challenge: Value| {
        let mut acme = json!({
            "email": "ops@wharf.test",
            "caServer": pebble.directory(),
            "caCertificates": [pebble.listener_cert()],
            "caSystemCertPool": false,
            "retryInitial": "1s",
            "retryMax": "3s",
        });
        if let (Some(acme), Some(c)) = (acme.as_object_mut(), challenge.as_object()) {
            acme.extend(c.clone());
        }
        if let (Some(acme), Some((kid, key))) = (acme.as_object_mut(), &pebble.eab) {
            acme.insert("eab".into(), json!({ "kid": kid, "hmacEncoded": key }));
        }
        json!({ "acme": acme })
    };
    json!({
        "entryPoints": {
            "web": { "address": web.to_string() },
            "traefik": { "address": admin.to_string() },
        },
        "providers": { "file": { "filename": dynamic, "watch": true } },
        "api": { "insecure": true },
        "ping": {},
        "log": { "level": "INFO" },
        "certificatesResolvers": {
            "http": resolver(json!({ "httpChallenge": { "entryPoint": "web" } })),
            "alpn": resolver(json!({ "tlsChallenge": {} })),
            "rsa": resolver(json!({ "httpChallenge": { "entryPoint": "web" }, "keyType": "RSA2048" })),
        },
        "certStore": cert_store,
    })
}

/// Dynamic configuration: one TLS router per `(host, resolver)` to `backend_url`.
pub fn routers(hosts: &[(&str, &str)], backend_url: &str) -> Value {
    let routers: serde_json::Map<String, Value> = hosts
        .iter()
        .map(|(host, resolver)| {
            let name = host.split('.').next().unwrap_or(host).to_string();
            let router = json!({
                "rule": format!("Host(`{host}`)"),
                "service": "echo",
                "entryPoints": ["web"],
                "tls": { "certResolver": resolver },
            });
            (name, router)
        })
        .collect();
    json!({ "http": {
        "routers": routers,
        "services": { "echo": { "loadBalancer": { "servers": [ { "url": backend_url } ] } } },
    }})
}

impl Node {
    /// Starts a node in `dir` with the given entrypoint port and a file store in
    /// `store`, and waits for `/ping`.
    pub async fn start(
        dir: &Path,
        pebble: &Pebble,
        store: &Path,
        web: u16,
        dynamic: &Value,
    ) -> Node {
        Self::start_with_store(dir, pebble, file_store(store), web, dynamic).await
    }

    /// Like [`Node::start`], with `cert_store` as the `certStore` section.
    pub async fn start_with_store(
        dir: &Path,
        pebble: &Pebble,
        cert_store: Value,
        web: u16,
        dynamic: &Value,
    ) -> Node {
        Self::start_at(dir, pebble, cert_store, Ipv4Addr::LOCALHOST, web, dynamic).await
    }

    /// Like [`Node::start_with_store`], with the `web` entrypoint on `ip` (any
    /// 127/8 address: Linux routes them all to the loopback interface).
    pub async fn start_at(
        dir: &Path,
        pebble: &Pebble,
        cert_store: Value,
        ip: Ipv4Addr,
        web: u16,
        dynamic: &Value,
    ) -> Node {
        fs::create_dir_all(dir).expect("node directory");
        let dynamic_path = dir.join("dynamic.yml");
        write_atomically(&dynamic_path, &to_yaml(dynamic));
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let web_addr = SocketAddr::from((ip, web));
        let cfg = static_config(pebble, cert_store, &dynamic_path, web_addr, admin);
        fs::write(dir.join("static.yml"), to_yaml(&cfg)).expect("static.yml");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("wharf.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .arg("--config")
            .arg(dir.join("static.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawning wharf");
        let mut node = Node {
            child: Some(child),
            dir: dir.to_path_buf(),
            ip,
            web,
            admin,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = node.child.as_mut().map(Child::try_wait) {
                panic!("wharf exited early with {status}:\n{}", node.log());
            }
            if matches!(client::get(admin, "localhost", "/ping").await, Ok(r) if r.status == 200) {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "wharf did not answer /ping:\n{}",
                node.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The `web` entrypoint's address.
    pub fn web_addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.web))
    }

    /// The process id, while the node runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The node's static configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("static.yml")
    }

    /// Replaces the dynamic configuration.
    pub fn set_dynamic(&self, dynamic: &Value) {
        write_atomically(&self.dir.join("dynamic.yml"), &to_yaml(dynamic));
    }

    /// The node's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("wharf.log")).unwrap_or_default()
    }

    /// `/api/certificates`.
    pub async fn certificates(&self) -> Value {
        let reply = client::get(self.admin, "localhost", "/api/certificates")
            .await
            .expect("admin API");
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }

    /// Kills the node (as a crash would) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `wharf certs ARGS --config <this node's config>`.
    pub fn certs(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wharf"))
            .arg("certs")
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .output()
            .expect("running wharf certs")
    }

    /// Waits until a handshake for `host` presents a chain that verifies against
    /// `roots`; returns the leaf.
    pub async fn wait_for_valid_cert(
        &self,
        host: &str,
        roots: &[CertificateDer<'static>],
        timeout: Duration,
    ) -> CertificateDer<'static> {
        eventually(
            &format!("a valid certificate for {host}"),
            timeout,
            || async {
                let tls = connect_to(self.web_addr(), host, roots).await?;
                leaf(&tls)
            },
        )
        .await
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- wharf log ({}) ----\n{}---- end ----",
                self.dir.display(),
                self.log()
            );
        }
    }
}

/// A TLS connection to `port` for SNI `host` that only trusts `roots`.
pub async fn connect(
    port: u16,
    host: &str,
    roots: &[CertificateDer<'static>],
) -> Result<TlsStream<TcpStream>, String> {
    connect_to(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), host, roots).await
}

/// Like [`connect`], to any address.
pub async fn connect_to(
    addr: SocketAddr,
    host: &str,
    roots: &[CertificateDer<'static>],
) -> Result<TlsStream<TcpStream>, String> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(store)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake for {host}: {e}"))
}

/// The leaf certificate the server presented.
pub fn leaf(tls: &TlsStream<TcpStream>) -> Result<CertificateDer<'static>, String> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned())
        .ok_or_else(|| "no peer certificate".to_string())
}
