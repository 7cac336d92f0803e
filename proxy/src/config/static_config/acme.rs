//! `certificatesResolvers.<name>.acme` and `certStore`: Traefik's ACME resolver
//! settings, with wharf's additions, and where certificates are stored.

use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::config::duration::GoDuration;

/// Let's Encrypt's production directory, the default `caServer`.
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Let's Encrypt's staging directory.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// Where the file store keeps its data when `certStore.file.directory` is not set.
pub const DEFAULT_STORE_DIRECTORY: &str = "/var/lib/wharf";

/// `certificatesResolvers.<name>.acme`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Acme {
    /// Contact email of the ACME account.
    pub email: String,
    /// The CA's directory URL (default Let's Encrypt production; staging is
    /// [`LETS_ENCRYPT_STAGING`]).
    pub ca_server: String,
    /// Answer HTTP-01 challenges on an entrypoint.
    pub http_challenge: Option<HttpChallenge>,
    /// Answer TLS-ALPN-01 challenges on the TLS entrypoints (`tlsChallenge: {}`).
    pub tls_challenge: Option<TlsChallenge>,
    /// DNS-01 (accepted so Traefik files load; refused when the resolver starts).
    pub dns_challenge: Option<serde_json::Value>,
    /// External account binding, for CAs that require one.
    pub eab: Option<Eab>,
    /// Key type of the certificates' private keys (default EC256).
    pub key_type: KeyType,
    /// Validity the CA gives, in hours (accepted for compatibility: wharf reads the
    /// validity from each certificate).
    pub certificates_duration: Option<u64>,
    /// Traefik's `acme.json` path (accepted and ignored: wharf keeps certificates in
    /// `certStore`).
    pub storage: Option<String>,
    /// Extra PEM files (paths) trusted for the connection to `caServer`, e.g. a test
    /// CA's listener certificate.
    pub ca_certificates: Vec<String>,
    /// Also trust the system's certificates for `caServer` (default true).
    pub ca_system_cert_pool: bool,
    /// Server name expected in the CA's certificate (accepted for compatibility).
    pub ca_server_name: Option<String>,
    /// Preferred chain (accepted for compatibility; the CA's default chain is used).
    pub preferred_chain: Option<String>,
    /// ACME profile to ask for (`classic`, `tlsserver`, `shortlived`), when the CA
    /// offers profiles.
    pub profile: Option<String>,
    /// Deprecated Traefik setting (accepted for compatibility).
    pub key_usage: Option<serde_json::Value>,
    /// HTTP timeout of ACME requests (accepted for compatibility).
    pub client_timeout: Option<GoDuration>,
    /// Response header timeout of ACME requests (accepted for compatibility).
    pub client_response_header_timeout: Option<GoDuration>,
    /// First delay before retrying a failed issuance (wharf; default 1m). It doubles
    /// after each further failure up to `retryMax`.
    pub retry_initial: GoDuration,
    /// Longest delay between retries of a failed issuance (wharf; default 6h).
    pub retry_max: GoDuration,
}

impl Default for Acme {
    fn default() -> Self {
        Self {
            email: String::new(),
            ca_server: LETS_ENCRYPT_PRODUCTION.into(),
            http_challenge: None,
            tls_challenge: None,
            dns_challenge: None,
            eab: None,
            key_type: KeyType::default(),
            certificates_duration: None,
            storage: None,
            ca_certificates: Vec::new(),
            ca_system_cert_pool: true,
            ca_server_name: None,
            preferred_chain: None,
            profile: None,
            key_usage: None,
            client_timeout: None,
            client_response_header_timeout: None,
            retry_initial: GoDuration(Duration::from_secs(60)),
            retry_max: GoDuration(Duration::from_secs(6 * 3600)),
        }
    }
}

/// `acme.httpChallenge`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpChallenge {
    /// Entrypoint the CA reaches on port 80 (wharf answers the challenge on every
    /// entrypoint; this one is the one the CA must reach).
    pub entry_point: String,
    /// Accepted for compatibility.
    pub delay: Option<GoDuration>,
}

/// `acme.tlsChallenge` (no settings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsChallenge {}

/// `acme.eab`: external account binding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Eab {
    /// Key identifier given by the CA.
    pub kid: String,
    /// The HMAC key, base64url as the CA gives it.
    pub hmac_encoded: String,
}

/// `acme.keyType`: the certificates' key type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA P-256 (the default).
    #[default]
    Ec256,
    /// ECDSA P-384.
    Ec384,
    /// RSA 2048 bits.
    Rsa2048,
    /// RSA 4096 bits.
    Rsa4096,
    /// RSA 8192 bits.
    Rsa8192,
}

impl KeyType {
    /// Traefik's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ec256 => "EC256",
            KeyType::Ec384 => "EC384",
            KeyType::Rsa2048 => "RSA2048",
            KeyType::Rsa4096 => "RSA4096",
            KeyType::Rsa8192 => "RSA8192",
        }
    }

    /// Parses Traefik's spelling (any case).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "EC256" | "" => Ok(KeyType::Ec256),
            "EC384" => Ok(KeyType::Ec384),
            "RSA2048" => Ok(KeyType::Rsa2048),
            "RSA4096" => Ok(KeyType::Rsa4096),
            "RSA8192" => Ok(KeyType::Rsa8192),
            other => Err(format!(
                "unknown keyType {other:?} (use EC256, EC384, RSA2048, RSA4096 or RSA8192)"
            )),
        }
    }
}

impl Serialize for KeyType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for KeyType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KeyType::parse(&s).map_err(de::Error::custom)
    }
}

/// `certStore` (wharf): where certificates, ACME accounts and pending challenges
/// live. Every wharf instance that shares the store shares its certificates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct CertStore {
    /// The file backend (the default): one file per entry in a directory, which
    /// several instances may share over a POSIX filesystem.
    pub file: Option<FileCertStore>,
    /// The Consul backend: entries, locks and watches in a Consul cluster shared by
    /// every instance. Takes precedence over `file`.
    pub consul: Option<ConsulCertStore>,
    /// Cluster key sealing private keys in the store: base64 of 32 random bytes
    /// (also `encryptionKeyFile` or the `WHARF_CLUSTER_KEY` environment variable).
    pub encryption_key: Option<String>,
    /// A file holding the cluster key (base64 of 32 bytes).
    pub encryption_key_file: Option<String>,
}

impl CertStore {
    /// The file store's directory: `certStore.file.directory`, else
    /// [`DEFAULT_STORE_DIRECTORY`].
    pub fn directory(&self) -> &str {
        self.file
            .as_ref()
            .map(|f| f.directory.trim())
            .filter(|d| !d.is_empty())
            .unwrap_or(DEFAULT_STORE_DIRECTORY)
    }
}

/// Consul's default HTTP address.
pub const DEFAULT_CONSUL_ADDRESS: &str = "http://127.0.0.1:8500";

/// `certStore.consul`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsulCertStore {
    /// Consul's HTTP API (default [`DEFAULT_CONSUL_ADDRESS`]).
    pub address: String,
    /// Prefix of wharf's keys (default `wharf/`).
    pub prefix: String,
    /// ACL token.
    pub token: Option<String>,
    /// Datacenter (default: the agent's).
    pub datacenter: Option<String>,
    /// TLS to Consul.
    pub tls: Option<ConsulTlsConfig>,
    /// TTL of lock sessions (default: each lock's TTL; at least 10s).
    #[serde(rename = "sessionTTL")]
    pub session_ttl: Option<GoDuration>,
    /// Lock-delay of lock sessions (default 15s).
    pub lock_delay: Option<GoDuration>,
}

impl Default for ConsulCertStore {
    fn default() -> Self {
        Self {
            address: DEFAULT_CONSUL_ADDRESS.into(),
            prefix: "wharf/".into(),
            token: None,
            datacenter: None,
            tls: None,
            session_ttl: None,
            lock_delay: None,
        }
    }
}

impl std::fmt::Debug for ConsulCertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulCertStore")
            .field("address", &self.address)
            .field("prefix", &self.prefix)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("datacenter", &self.datacenter)
            .field("tls", &self.tls)
            .field("session_ttl", &self.session_ttl)
            .field("lock_delay", &self.lock_delay)
            .finish()
    }
}

/// `certStore.consul.tls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsulTlsConfig {
    /// PEM file of CA certificates to trust.
    pub ca: Option<String>,
    /// PEM client certificate.
    pub cert: Option<String>,
    /// PEM key of the client certificate.
    pub key: Option<String>,
    /// Accept any server certificate (tests only).
    pub insecure_skip_verify: bool,
}

/// `certStore.file`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct FileCertStore {
    /// The directory (default [`DEFAULT_STORE_DIRECTORY`]).
    pub directory: String,
    /// How often other instances' changes are looked for (default 1s).
    pub poll_interval: Option<GoDuration>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::load::load_flags as load;

    #[test]
    fn key_types_parse_in_any_case() {
        assert_eq!(KeyType::parse("ec384").unwrap(), KeyType::Ec384);
        assert_eq!(KeyType::parse("EC256").unwrap(), KeyType::Ec256);
        assert_eq!(KeyType::parse("rsa4096").unwrap(), KeyType::Rsa4096);
        assert_eq!(KeyType::parse("RSA2048").unwrap().as_str(), "RSA2048");
        let err = KeyType::parse("RSA1024").unwrap_err();
        assert!(err.contains("RSA2048"), "{err}");
        assert!(KeyType::parse("DSA").is_err());
    }

    #[test]
    fn loads_typed_resolvers_from_flags() {
        let c = load(&[
            "--certificatesresolvers.le.acme.email=ops@example.org",
            "--certificatesresolvers.le.acme.tlschallenge=true",
            "--certificatesresolvers.le.acme.caserver=https://127.0.0.1:14000/dir",
            "--certificatesresolvers.le.acme.cacertificates=/a.pem,/b.pem",
            "--certificatesresolvers.le.acme.eab.kid=k1",
            "--certificatesresolvers.le.acme.eab.hmacencoded=c2VjcmV0",
            "--certificatesresolvers.le.acme.keytype=EC384",
            "--certificatesresolvers.le.acme.certificatesduration=2160",
            "--certificatesresolvers.le.acme.retryinitial=2s",
            "--certstore.file.directory=/srv/certs",
        ])
        .unwrap();
        let acme = c.certificates_resolvers["le"].acme.as_ref().unwrap();
        assert_eq!(acme.email, "ops@example.org");
        assert!(acme.tls_challenge.is_some());
        assert!(acme.http_challenge.is_none());
        assert_eq!(acme.ca_certificates, vec!["/a.pem", "/b.pem"]);
        let eab = acme.eab.as_ref().unwrap();
        assert_eq!(
            (eab.kid.as_str(), eab.hmac_encoded.as_str()),
            ("k1", "c2VjcmV0")
        );
        assert_eq!(acme.key_type, KeyType::Ec384);
        assert_eq!(acme.certificates_duration, Some(2160));
        assert_eq!(acme.retry_initial.0, Duration::from_secs(2));
        assert_eq!(acme.retry_max.0, Duration::from_secs(6 * 3600));
        assert!(acme.ca_system_cert_pool);
        assert_eq!(c.cert_store.directory(), "/srv/certs");
    }

    #[test]
    fn loads_the_consul_store_from_flags() {
        let c = load(&[
            "--certstore.consul.address=https://consul.internal:8501",
            "--certstore.consul.token=s3cr3t",
            "--certstore.consul.datacenter=dc2",
            "--certstore.consul.tls.ca=/etc/consul/ca.pem",
            "--certstore.consul.tls.insecureskipverify=true",
            "--certstore.consul.sessionttl=20s",
            "--certstore.encryptionkeyfile=/run/secrets/wharf-key",
        ])
        .unwrap();
        let consul = c.cert_store.consul.as_ref().unwrap();
        assert_eq!(consul.address, "https://consul.internal:8501");
        assert_eq!(consul.prefix, "wharf/");
        assert_eq!(consul.token.as_deref(), Some("s3cr3t"));
        assert_eq!(consul.datacenter.as_deref(), Some("dc2"));
        let tls = consul.tls.as_ref().unwrap();
        assert_eq!(tls.ca.as_deref(), Some("/etc/consul/ca.pem"));
        assert!(tls.insecure_skip_verify);
        assert_eq!(consul.session_ttl.unwrap().0, Duration::from_secs(20));
        assert!(!format!("{consul:?}").contains("s3cr3t"), "token redacted");
        assert_eq!(
            c.cert_store.encryption_key_file.as_deref(),
            Some("/run/secrets/wharf-key")
        );
        let err = load(&["--certstore.consul.adress=x"]).unwrap_err();
        assert!(err.contains("address"), "{err}");
    }

    #[test]
    fn key_types_load_and_bad_ones_name_the_choices() {
        let c = load(&["--certificatesresolvers.le.acme.keytype=RSA4096"]).unwrap();
        assert_eq!(
            c.certificates_resolvers["le"]
                .acme
                .as_ref()
                .unwrap()
                .key_type,
            KeyType::Rsa4096
        );
        let err = load(&["--certificatesresolvers.le.acme.keytype=RSA1024"]).unwrap_err();
        assert!(err.contains("RSA2048"), "{err}");
        let err = load(&["--certificatesresolvers.le.acme.nosuch=1"]).unwrap_err();
        assert!(err.contains("nosuch"), "{err}");
    }

    #[test]
    fn store_directory_defaults() {
        assert_eq!(CertStore::default().directory(), DEFAULT_STORE_DIRECTORY);
        let s = CertStore {
            file: Some(FileCertStore {
                directory: "/tmp/x".into(),
                poll_interval: None,
            }),
            ..CertStore::default()
        };
        assert_eq!(s.directory(), "/tmp/x");
    }
}
