//! The HTTP client instant-acme talks to the CA with: hyper-rustls on wharf's ring
//! provider (no second crypto provider), trusting the system's roots and/or the
//! configured `caCertificates`, each request bounded by [`REQUEST_TIMEOUT`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use super::{AcmeError, REQUEST_TIMEOUT};

type Inner = Client<hyper_rustls::HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>;

/// An [`HttpClient`] whose requests time out.
#[derive(Clone)]
pub struct AcmeHttp {
    inner: Inner,
    timeout: Duration,
}

impl AcmeHttp {
    /// A client trusting `extra_roots` (PEM bundles) and, if `system_roots`, the
    /// platform's certificate store. Plain `http://` directories are allowed too.
    pub fn new(extra_roots: &[Vec<u8>], system_roots: bool) -> Result<Self, AcmeError> {
        let mut roots = RootCertStore::empty();
        if system_roots {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::debug!(error = %e, "skipping an unreadable system certificate");
            }
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                tracing::warn!(
                    "no system root certificates found; only caCertificates are trusted"
                );
            }
        }
        for pem in extra_roots {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|e| AcmeError::Tls(format!("caCertificates: invalid PEM: {e}")))?;
            if certs.is_empty() {
                return Err(AcmeError::Tls(
                    "caCertificates: no certificate in a file".into(),
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| AcmeError::Tls(format!("caCertificates: {e}")))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| AcmeError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        Ok(Self {
            inner: Client::builder(TokioExecutor::new()).build(connector),
            timeout: REQUEST_TIMEOUT,
        })
    }
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let fut = HttpClient::request(&self.inner, req);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(instant_acme::Error::Other(
                    format!("no answer from the CA within {timeout:?}").into(),
                )),
            }
        })
    }
}
