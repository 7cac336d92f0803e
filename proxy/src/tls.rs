//! TLS settings of the proxy: the rustls server configuration and the static
//! certificates of the dynamic configuration (`tls.certificates`).

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use tracing::{info, warn};
use wharf_certstore::pem::load_pem;
use wharf_certstore::resolver::SourceEntries;
use wharf_certstore::CertResolver;

use crate::config::dynamic::CertificateFiles;
use crate::config::DynamicConfig;

/// The server configuration every TLS entrypoint shares: TLS 1.2 and 1.3, ALPN h2
/// then http/1.1, certificates from `resolver`.
pub fn server_config(
    provider: Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Reads a `certFile`/`keyFile` value: inline PEM, or a path to a PEM file.
fn pem_source(value: &str) -> std::io::Result<Vec<u8>> {
    if value.trim_start().starts_with("-----BEGIN") {
        Ok(value.as_bytes().to_vec())
    } else {
        std::fs::read(value)
    }
}

/// Loads every provider's `tls.certificates`; a certificate that cannot be read is
/// logged with its file and skipped, the others still load.
pub fn static_certificates(
    configs: &BTreeMap<&'static str, DynamicConfig>,
    provider: &CryptoProvider,
) -> SourceEntries {
    let mut out = Vec::new();
    for (name, cfg) in configs {
        for c in &cfg.tls.certificates {
            match load_one(c, provider) {
                Ok(entry) => out.push(entry),
                Err(e) => {
                    warn!(provider = name, cert_file = %short(&c.cert_file), error = %e, "static certificate skipped")
                }
            }
        }
    }
    if !out.is_empty() {
        info!(count = out.len(), "static certificates loaded");
    }
    out
}

fn load_one(
    c: &CertificateFiles,
    provider: &CryptoProvider,
) -> Result<(Vec<String>, Arc<rustls::sign::CertifiedKey>), String> {
    let chain = pem_source(&c.cert_file).map_err(|e| format!("certFile: {e}"))?;
    let key = pem_source(&c.key_file).map_err(|e| format!("keyFile: {e}"))?;
    let loaded = load_pem(&chain, &key, provider).map_err(|e| e.to_string())?;
    Ok((loaded.names, Arc::new(loaded.key)))
}

/// A file name, or a marker for inline PEM, for log lines.
fn short(value: &str) -> &str {
    if value.trim_start().starts_with("-----BEGIN") {
        "(inline PEM)"
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dynamic::CertificateFiles;

    #[test]
    fn loads_inline_and_file_certificates_and_skips_bad_ones() {
        let p = rustls::crypto::ring::default_provider();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["s.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let dir = std::env::temp_dir().join(format!("wharf-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert_path = dir.join("c.pem");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        let mut cfg = DynamicConfig::default();
        cfg.tls.certificates = vec![
            CertificateFiles {
                cert_file: cert_path.display().to_string(),
                key_file: key.serialize_pem(),
                stores: vec![],
            },
            CertificateFiles {
                cert_file: dir.join("missing.pem").display().to_string(),
                key_file: key.serialize_pem(),
                stores: vec![],
            },
        ];
        let configs = BTreeMap::from([("file", cfg)]);
        let entries = static_certificates(&configs, &p);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, vec!["s.test"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
