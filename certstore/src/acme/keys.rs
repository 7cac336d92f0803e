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

/// The key type of issued certificates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA P-256 (the default).
    #[default]
    Ec256,
    /// ECDSA P-384.
    Ec384,
    /// RSA, 2048 bits.
    Rsa2048,
    /// RSA, 4096 bits.
    Rsa4096,
    /// RSA, 8192 bits (generation takes seconds to minutes).
    Rsa8192,
}

impl KeyType {
    /// RSA modulus size, or `None` for ECDSA.
    fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyType::Ec256 | KeyType::Ec384 => None,
            KeyType::Rsa2048 => Some(2048),
            KeyType::Rsa4096 => Some(4096),
            KeyType::Rsa8192 => Some(8192),
        }
    }
}

/// A fresh private key of `key_type`.
///
/// ring generates the ECDSA keys; it cannot generate RSA keys, so those come from
/// the `rsa` crate as PKCS#8 and ring signs with them. RSA generation is slow
/// (hundreds of milliseconds to minutes): call this off the async workers.
pub fn generate_key(key_type: KeyType) -> Result<KeyPair, AcmeError> {
    let Some(bits) = key_type.rsa_bits() else {
        let alg = match key_type {
            KeyType::Ec384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            _ => &rcgen::PKCS_ECDSA_P256_SHA256,
        };
        return KeyPair::generate_for(alg).map_err(AcmeError::Key);
    };
    use rsa::pkcs8::EncodePrivateKey;
    let rsa_key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
        .map_err(|e| AcmeError::RsaKey(e.to_string()))?;
    let der = rsa_key
        .to_pkcs8_der()
        .map_err(|e| AcmeError::RsaKey(e.to_string()))?;
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_bytes());
    KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).map_err(AcmeError::Key)
}

/// A fresh private key of `key_type` and the DER CSR for `names` (the first is the
/// subject's CN when it fits, as Traefik does). Generation runs on a blocking thread.
pub async fn key_and_csr(
    key_type: KeyType,
    names: &[String],
) -> Result<(KeyPair, Vec<u8>), AcmeError> {
    let key = tokio::task::spawn_blocking(move || generate_key(key_type))
        .await
        .map_err(|e| AcmeError::RsaKey(format!("key generation task failed: {e}")))??;
    let csr = csr(&key, names)?;
    Ok((key, csr))
}

/// The DER CSR for `names`, signed by `key`.
fn csr(key: &KeyPair, names: &[String]) -> Result<Vec<u8>, AcmeError> {
    let mut params = CertificateParams::new(names.to_vec()).map_err(AcmeError::Key)?;
    params.distinguished_name = DistinguishedName::new();
    if let Some(main) = names.first().filter(|n| n.len() <= 64) {
        params
            .distinguished_name
            .push(DnType::CommonName, main.as_str());
    }
    let csr = params.serialize_request(key).map_err(AcmeError::Key)?;
    Ok(csr.der().to_vec())
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

    #[tokio::test]
    async fn csr_keys_are_of_the_asked_type() {
        for (kt, alg) in [
            (KeyType::Ec256, &rcgen::PKCS_ECDSA_P256_SHA256),
            (KeyType::Ec384, &rcgen::PKCS_ECDSA_P384_SHA384),
            (KeyType::Rsa2048, &rcgen::PKCS_RSA_SHA256),
        ] {
            let names = ["a.test".to_string(), "b.test".to_string()];
            let (key, csr) = key_and_csr(kt, &names).await.unwrap();
            assert!(key.is_compatible(alg), "{kt:?}");
            use x509_parser::prelude::FromDer;
            let (_, req) =
                x509_parser::certification_request::X509CertificationRequest::from_der(&csr)
                    .unwrap();
            let spki = &req.certification_request_info.subject_pki;
            let want = if kt == KeyType::Rsa2048 {
                "1.2.840.113549.1.1.1"
            } else {
                "1.2.840.10045.2.1"
            };
            assert_eq!(spki.algorithm.algorithm.to_id_string(), want, "{kt:?}");
        }
    }

    #[test]
    fn rsa_keys_have_the_asked_size_and_serve_tls() {
        use rsa::pkcs8::DecodePrivateKey;
        use rsa::traits::PublicKeyParts;
        // 4096 and 8192 bits take the same path with a larger modulus (and
        // seconds to minutes), so the test generates the smallest.
        assert_eq!(KeyType::Rsa4096.rsa_bits(), Some(4096));
        assert_eq!(KeyType::Rsa8192.rsa_bits(), Some(8192));
        let key = generate_key(KeyType::Rsa2048).unwrap();
        let parsed = rsa::RsaPrivateKey::from_pkcs8_der(&key.serialize_der()).unwrap();
        assert_eq!(parsed.size() * 8, 2048);
        // A certificate on that key loads into rustls (ring signs with it).
        let cert = CertificateParams::new(vec!["r.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let p = rustls::crypto::ring::default_provider();
        let loaded =
            crate::pem::load_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes(), &p)
                .unwrap();
        assert_eq!(loaded.names, vec!["r.test"]);
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
