//! The rustls (ring) client configuration for a TLS engine endpoint.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::config::ClientTls;
use super::error::DockerError;

/// Where the system's CA bundle is on Debian-like systems, used without `tls.ca`.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Builds the client configuration: the CA (or the system bundle) to verify the
/// engine, unless `insecureSkipVerify`; the client certificate when `cert` and
/// `key` are both given.
pub(crate) fn client_config(tls: &ClientTls) -> Result<ClientConfig, DockerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(DockerError::Tls)?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let path = tls.ca.as_deref().unwrap_or(SYSTEM_BUNDLE);
        let mut roots = RootCertStore::empty();
        for cert in certs("ca", Path::new(path))? {
            roots.add(cert).map_err(DockerError::Tls)?;
        }
        builder.with_root_certificates(roots)
    };
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = certs("cert", Path::new(cert))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| DockerError::TlsFile {
                what: "key",
                path: key.into(),
                reason: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(DockerError::Tls)
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(DockerError::TlsFile {
            what: "cert and key",
            path: Default::default(),
            reason: "give both tls.cert and tls.key, or neither".into(),
        }),
    }
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, DockerError> {
    let err = |reason: String| DockerError::TlsFile {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no certificate in the file".into()));
    }
    Ok(certs)
}

/// `insecureSkipVerify`: any certificate is accepted, but handshake signatures are
/// still checked against it.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn missing_ca_file_is_named() {
        let err = client_config(&ClientTls {
            ca: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn cert_without_key_is_refused() {
        let err = client_config(&ClientTls {
            cert: Some("/x/cert.pem".into()),
            insecure_skip_verify: true,
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("tls.key"), "{err}");
    }

    #[test]
    fn loads_a_generated_ca_and_client_pair() {
        let dir = std::env::temp_dir().join(format!("wharf-docker-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["docker.test".into()]).unwrap();
        let ca = dir.join("ca.pem");
        let key = dir.join("key.pem");
        std::fs::write(&ca, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        let path = |p: &Path| Some(p.display().to_string());
        let cfg = client_config(&ClientTls {
            ca: path(&ca),
            cert: path(&ca),
            key: path(&key),
            insecure_skip_verify: false,
        });
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(cfg.unwrap().client_auth_cert_resolver.has_certs());
    }
}
