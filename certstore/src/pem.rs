//! Turning PEM certificate chains and keys into what the TLS listener serves, and
//! reading the names a certificate covers.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::extensions::GeneralName;

/// Why a PEM certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The chain holds no certificate.
    #[error("no certificate found in the PEM chain")]
    NoCertificate,
    /// The PEM text is malformed.
    #[error("invalid PEM: {0}")]
    Pem(String),
    /// The leaf certificate does not parse.
    #[error("invalid certificate: {0}")]
    Certificate(String),
    /// The key is not usable by the TLS provider.
    #[error("unusable private key")]
    Key(#[source] rustls::Error),
}

/// A certificate ready to serve, with the DNS names it covers.
#[derive(Debug)]
pub struct LoadedCert {
    /// Names from the subject alternative names (or the common name when there are none).
    pub names: Vec<String>,
    /// The chain and signing key.
    pub key: CertifiedKey,
    /// Expiry of the leaf, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Parses a PEM chain and key into a servable certificate.
pub fn load_pem(
    chain_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<LoadedCert, PemError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| PemError::Pem(e.to_string()))?;
    let leaf = chain.first().ok_or(PemError::NoCertificate)?;
    let (names, not_after) = names_and_expiry(leaf)?;
    let der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| PemError::Pem(e.to_string()))?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(PemError::Key)?;
    Ok(LoadedCert {
        names,
        key: CertifiedKey::new(chain, signing),
        not_after,
    })
}

/// DNS names (SANs, else CN) and expiry of a DER certificate.
pub fn names_and_expiry(der: &CertificateDer<'_>) -> Result<(Vec<String>, i64), PemError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| PemError::Certificate(e.to_string()))?;
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_string)),
        );
    }
    Ok((names, cert.validity().not_after.timestamp()))
}

/// What metrics show about a served certificate (Traefik's `cn`, `serial`, `sans`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// The subject's common name ("" when it has none).
    pub common_name: String,
    /// The serial number, as decimal digits.
    pub serial: String,
    /// DNS names of the subject alternative names.
    pub sans: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Reads common name, serial, DNS SANs and expiry of a DER certificate.
pub fn describe(der: &CertificateDer<'_>) -> Result<CertFacts, PemError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| PemError::Certificate(e.to_string()))?;
    let sans = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let common_name = cert
        .subject()
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok().map(str::to_string))
        .unwrap_or_default();
    Ok(CertFacts {
        common_name,
        serial: cert.tbs_certificate.serial.to_str_radix(10),
        sans,
        not_after: cert.validity().not_after.timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_generated_pair_and_reads_its_names() {
        let p = rustls::crypto::ring::default_provider();
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["a.test".into(), "*.b.test".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let loaded = load_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes(), &p).unwrap();
        assert_eq!(loaded.names, vec!["a.test", "*.b.test"]);
        assert!(loaded.not_after > 0);
        assert!(matches!(
            load_pem(b"", key.serialize_pem().as_bytes(), &p),
            Err(PemError::NoCertificate)
        ));
        assert!(load_pem(cert.pem().as_bytes(), b"junk", &p).is_err());
        let facts = describe(&loaded.key.cert[0]).unwrap();
        assert_eq!(facts.sans, vec!["a.test", "*.b.test"]);
        assert_eq!(facts.not_after, loaded.not_after);
        assert!(!facts.serial.is_empty());
        assert!(facts.serial.bytes().all(|b| b.is_ascii_digit()));
    }
}
