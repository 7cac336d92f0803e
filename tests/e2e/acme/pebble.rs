//! A Pebble test CA (and `pebble-challtestsrv` as its DNS, answering 127.0.0.1 for
//! every name) on free ports, with a generated certificate for its own listener.
//! Pebble validates challenges on the port the test gives it: wharf's entrypoint.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::net::TcpStream;

use crate::client::{empty, full, send_h1};
use crate::harness::{eventually, free_port};

/// A running Pebble with its DNS server. Both are killed when dropped.
pub struct Pebble {
    dir: PathBuf,
    acme_port: u16,
    mgmt_port: u16,
    dns_port: u16,
    /// The management API of `pebble-challtestsrv` (DNS records).
    dns_mgmt_port: u16,
    /// `PEBBLE_VA_SLEEPTIME`: validation waits a random 0..N-1 s; `None`: no wait.
    va_sleep: Option<u32>,
    pebble: Option<Child>,
    dns: Option<Child>,
    /// Log of the current run; each restart starts a new one.
    runs: usize,
    /// The external account binding Pebble requires, if any: (kid, base64url key).
    pub eab: Option<(String, String)>,
}

impl Pebble {
    /// Starts Pebble validating HTTP-01 and TLS-ALPN-01 on `validation_port`.
    pub async fn start(dir: &Path, validation_port: u16) -> Pebble {
        Self::start_inner(dir, validation_port, None, None).await
    }

    /// Like [`Pebble::start`], with validation waiting a random 0 to
    /// `max_sleep_secs - 1` seconds before each attempt, as Pebble does by default.
    pub async fn start_slow(dir: &Path, validation_port: u16, max_sleep_secs: u32) -> Pebble {
        Self::start_inner(dir, validation_port, None, Some(max_sleep_secs)).await
    }

    /// Like [`Pebble::start`], requiring external account binding with `kid` and
    /// the base64url HMAC key `key`.
    pub async fn start_with_eab(dir: &Path, validation_port: u16, kid: &str, key: &str) -> Pebble {
        Self::start_inner(
            dir,
            validation_port,
            Some((kid.to_string(), key.to_string())),
            None,
        )
        .await
    }

    async fn start_inner(
        dir: &Path,
        validation_port: u16,
        eab: Option<(String, String)>,
        va_sleep: Option<u32>,
    ) -> Pebble {
        let dir = dir.join("pebble");
        fs::create_dir_all(&dir).expect("creating the pebble directory");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        let cert = params.self_signed(&key).expect("listener certificate");
        fs::write(dir.join("listener.pem"), cert.pem()).expect("writing listener.pem");
        fs::write(dir.join("listener.key"), key.serialize_pem()).expect("writing listener.key");
        let (acme_port, mgmt_port, dns_port) = (free_port(), free_port(), free_port());
        let config = json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": dir.join("listener.pem"),
            "privateKey": dir.join("listener.key"),
            "httpPort": validation_port,
            "tlsPort": validation_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": eab.is_some(),
            "externalAccountMACKeys": eab.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        }});
        fs::write(dir.join("pebble.json"), config.to_string()).expect("writing pebble.json");
        let mut pebble = Pebble {
            dir,
            acme_port,
            mgmt_port,
            dns_port,
            dns_mgmt_port: free_port(),
            va_sleep,
            pebble: None,
            dns: None,
            runs: 0,
            eab,
        };
        pebble.spawn_dns();
        pebble.resume().await;
        pebble
    }

    fn spawn_dns(&mut self) {
        let log = fs::File::create(self.dir.join("challtestsrv.log")).expect("dns log");
        let dns = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{}", self.dns_port)])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", self.dns_mgmt_port)])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawning pebble-challtestsrv (apt-get install pebble)");
        self.dns = Some(dns);
    }

    /// (Re)starts the Pebble process on the same ports. Its CA (and every account)
    /// is new on each start, as with a real Pebble restart.
    pub async fn resume(&mut self) {
        self.runs += 1;
        let log = fs::File::create(self.log_path()).expect("pebble log");
        let mut command = Command::new("pebble");
        command
            .arg("-config")
            .arg(self.dir.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{}", self.dns_port)]);
        match self.va_sleep {
            Some(secs) => command.env("PEBBLE_VA_SLEEPTIME", secs.to_string()),
            None => command.env("PEBBLE_VA_NOSLEEP", "1"),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawning pebble (apt-get install pebble)");
        self.pebble = Some(child);
        eventually("pebble to answer", Duration::from_secs(30), || async {
            self.get(self.acme_port, "/dir").await.map(|_| ())
        })
        .await;
    }

    /// Makes the DNS server answer `ip` for `host` (instead of 127.0.0.1), so
    /// Pebble validates `host` on that address.
    pub async fn add_a(&self, host: &str, ip: Ipv4Addr) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.dns_mgmt_port));
        let body = json!({ "host": host, "addresses": [ip.to_string()] }).to_string();
        eventually(
            "challtestsrv to take the A record",
            Duration::from_secs(30),
            || {
                let body = body.clone();
                async move {
                    let req = http::Request::post("/add-a")
                        .header("host", "localhost")
                        .body(full(body))
                        .map_err(|e| e.to_string())?;
                    match send_h1(addr, req).await {
                        Ok(reply) if reply.status == 200 => Ok(()),
                        Ok(reply) => Err(format!("{}: {}", reply.status, reply.text())),
                        Err(e) => Err(format!("{e:#}")),
                    }
                }
            },
        )
        .await;
    }

    /// Stops the Pebble process (the DNS server keeps running).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.pebble.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(format!("pebble-{}.log", self.runs))
    }

    /// The ACME directory URL.
    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.acme_port)
    }

    /// The PEM file of Pebble's listener certificate, for `caCertificates`.
    pub fn listener_cert(&self) -> PathBuf {
        self.dir.join("listener.pem")
    }

    /// Orders Pebble created in its current run (from its log).
    pub fn orders(&self) -> usize {
        fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("Added order"))
            .count()
    }

    /// Accounts Pebble registered in its current run (from its log).
    pub fn accounts(&self) -> usize {
        fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("accounts in memory"))
            .count()
    }

    /// The root and intermediate of the current run's issuing CA.
    pub async fn issuing_roots(&self) -> Vec<CertificateDer<'static>> {
        let mut out = Vec::new();
        for path in ["/roots/0", "/intermediates/0"] {
            let pem = self
                .get(self.mgmt_port, path)
                .await
                .expect("pebble management API");
            out.extend(CertificateDer::pem_slice_iter(&pem).map(|c| c.expect("PEM from pebble")));
        }
        out
    }

    /// `GET path` on one of Pebble's HTTPS listeners.
    async fn get(&self, port: u16, path: &str) -> Result<Vec<u8>, String> {
        let pem = fs::read(self.listener_cert()).map_err(|e| e.to_string())?;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&pem) {
            roots
                .add(c.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = http::Request::get(path)
            .header("host", "localhost")
            .body(empty())
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if resp.status() != 200 {
            return Err(format!("GET {path}: {}", resp.status()));
        }
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(body.to_bytes().to_vec())
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut dns) = self.dns.take() {
            let _ = dns.kill();
            let _ = dns.wait();
        }
        if std::thread::panicking() {
            let log = fs::read_to_string(self.log_path()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- pebble log (last lines) ----");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}
