//! Keys and certificates the issuer makes itself: the certificate's private key and
//! CSR, TLS-ALPN-01 challenge certificates, and what it reads back from an issued
//! chain (validity, ARI certificate identifier).

use instant_acme::CertificateIdentifier;
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, DnType, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, Der};
use x509_parser::extensions::ParsedExtension;

use super::schedule::Validity;
use super::AcmeError;

/// The key type of issued certificates. RSA is not offered: ring, wharf's only
/// crypto backend, cannot generate RSA keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA P-256 (the default).
    #[default]
    Ec256,
    /// ECDSA P-384.
    Ec384,
}

impl KeyType {
    fn algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyType::Ec256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::Ec384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

/// A fresh private key and the DER CSR for `names` (the first is the subject's CN
/// when it fits, as Traefik does).
pub fn key_and_csr(key_type: KeyType, names: &[String]) -> Result<(KeyPair, Vec<u8>), AcmeError> {
    let key = KeyPair::generate_for(key_type.algorithm()).map_err(AcmeError::Key)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(AcmeError::Key)?;
    params.distinguished_name = DistinguishedName::new();
    if let Some(main) = names.first().filter(|n| n.len() <= 64) {
        params
            .distinguished_name
            .push(DnType::CommonName, main.as_str());
    }
    let csr = params.serialize_request(&key).map_err(AcmeError::Key)?;
    Ok((key, csr.der().to_vec()))
}

/// A self-signed TLS-ALPN-01 challenge certificate for `domain` carrying the
/// SHA-256 `digest` of the key authorization (RFC 8737); returns (cert, key) PEM.
pub fn tls_alpn01_certificate(domain: &str, digest: &[u8]) -> Result<(String, String), AcmeError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(AcmeError::Key)?;
    let mut params = CertificateParams::new(vec![domain.to_string()]).map_err(AcmeError::Key)?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(AcmeError::Key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// What the issuer records about an issued chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    /// The leaf's validity.
    pub validity: Validity,
    /// The leaf's ARI identifier (`base64url(AKI).base64url(serial)`), if it has an
    /// authority key identifier.
    pub ari_cert_id: Option<String>,
    /// The issuer's distinguished name, as text.
    pub issuer: String,
    /// The DNS names of the leaf.
    pub names: Vec<String>,
}

/// Reads the leaf of a PEM chain.
pub fn chain_info(chain_pem: &str) -> Result<ChainInfo, AcmeError> {
    let bad = |m: String| AcmeError::Certificate(m);
    let leaf = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .ok_or_else(|| bad("no certificate in the chain".into()))?
        .map_err(|e| bad(format!("invalid PEM: {e}")))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| bad(format!("invalid certificate: {e}")))?;
    let aki = cert
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0)
            }
            _ => None,
        });
    let ari_cert_id = aki.map(|aki| {
        CertificateIdentifier::new(
            Der::from_slice(aki),
            Der::from_slice(cert.tbs_certificate.raw_serial()),
        )
        .to_string()
    });
    let names = crate::pem::names_and_expiry(&leaf)
        .map(|(names, _)| names)
        .unwrap_or_default();
    Ok(ChainInfo {
        validity: Validity {
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        },
        ari_cert_id,
        issuer: cert.issuer().to_string(),
        names,
    })
}

/// Parses a stored ARI identifier back into instant-acme's type.
pub fn parse_ari_cert_id(id: &str) -> Option<CertificateIdentifier<'static>> {
    let (aki, serial) = id.split_once('.')?;
    if serial.contains('.') || aki.is_empty() || serial.is_empty() {
        return None;
    }
    Some(CertificateIdentifier {
        authority_key_identifier: aki.to_string().into(),
        serial: serial.to_string().into(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csr_keys_are_of_the_asked_type() {
        for (kt, alg) in [
            (KeyType::Ec256, &rcgen::PKCS_ECDSA_P256_SHA256),
            (KeyType::Ec384, &rcgen::PKCS_ECDSA_P384_SHA384),
        ] {
            let (key, csr) = key_and_csr(kt, &["a.test".into(), "b.test".into()]).unwrap();
            assert!(key.is_compatible(alg));
            assert!(!csr.is_empty());
        }
    }

    #[test]
    fn challenge_certificate_carries_the_acme_identifier() {
        let digest = [7u8; 32];
        let (cert, key) = tls_alpn01_certificate("c.test", &digest).unwrap();
        let p = rustls::crypto::ring::default_provider();
        let loaded = crate::pem::load_pem(cert.as_bytes(), key.as_bytes(), &p).unwrap();
        assert_eq!(loaded.names, vec!["c.test"]);
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        // id-pe-acmeIdentifier, critical, OCTET STRING of the digest.
        let ext = parsed
            .iter_extensions()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .unwrap();
        assert!(ext.critical);
        assert_eq!(&ext.value[2..], &digest);
    }

    #[test]
    fn chain_info_reads_validity_and_the_ari_id() {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![1, 2, 3, 4]);
        ca.distinguished_name.push(DnType::CommonName, "Test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["l.test".to_string()]).unwrap();
        leaf.use_authority_key_identifier_extension = true;
        leaf.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x05, 0x06]));
        leaf.not_before = rcgen::date_time_ymd(2030, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2030, 3, 2);
        let leaf = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
        let info = chain_info(&(leaf.pem() + &ca_cert.pem())).unwrap();
        assert_eq!(info.validity.lifetime(), 60 * 86_400);
        assert_eq!(info.ari_cert_id.as_deref(), Some("AQIDBA.BQY"));
        assert!(info.issuer.contains("Test CA"), "{}", info.issuer);
        assert_eq!(info.names, vec!["l.test"]);
        let id = parse_ari_cert_id("AQIDBA.BQY").unwrap();
        assert_eq!(id.to_string(), "AQIDBA.BQY");
        assert!(parse_ari_cert_id("a.b.c").is_none());
        assert!(chain_info("junk").is_err());
    }
}
