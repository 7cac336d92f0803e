//! The shared routing table as it is stored: ONE entry, `<prefix>/table`, holding
//! gzip-compressed JSON.
//!
//! One entry rather than a manifest of parts: a follower always sees a complete,
//! consistent table (a write is atomic), and compression keeps even large swarms
//! well under Consul's 512 KB value limit (route JSON compresses about tenfold, so
//! roughly 10,000 services fit). A table that still does not fit is refused when
//! publishing and the previous one stays in force. Plain (uncompressed) JSON is
//! accepted when reading, so an operator can write a table by hand.

use std::io::{Read, Write};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use wharf_certstore::store::MAX_VALUE_LEN;

use super::error::ClusterError;
use crate::config::DynamicConfig;

/// The entry format written by this version.
pub const FORMAT: u32 = 1;

/// The largest decompressed table accepted, in bytes (guards against a value that
/// inflates without bound).
const MAX_DECODED_LEN: u64 = 64 * 1024 * 1024;

/// The first two bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One published routing table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    /// Entry format ([`FORMAT`]).
    pub format: u32,
    /// The provider the configuration came from (`swarm`, `docker`, `file`); followers
    /// serve it under this name, so `name@swarm` references resolve everywhere.
    pub provider: String,
    /// Who wrote it.
    pub publisher: Publisher,
    /// The fencing token of the publisher's lock: a later publisher has a larger one.
    pub token: u64,
    /// When it was written (RFC 3339).
    pub published_at: String,
    /// The provider's whole configuration, with resolved server addresses.
    pub config: DynamicConfig,
}

/// The node that published a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Publisher {
    /// Its node name (`cluster.nodeName`, else the host name).
    pub node: String,
    /// A random identifier of the wharf process, new at each start.
    pub instance: String,
}

/// Serializes and compresses `table` for `key`; fails when it would not fit the
/// store.
pub fn encode(key: &str, table: &Table) -> Result<Vec<u8>, ClusterError> {
    let encode_err = |reason: String| ClusterError::Encode {
        key: key.to_string(),
        reason,
    };
    let json = serde_json::to_vec(table).map_err(|e| encode_err(e.to_string()))?;
    let mut gz = GzEncoder::new(Vec::with_capacity(json.len() / 8), Compression::default());
    gz.write_all(&json).map_err(|e| encode_err(e.to_string()))?;
    let bytes = gz.finish().map_err(|e| encode_err(e.to_string()))?;
    if bytes.len() > MAX_VALUE_LEN {
        return Err(ClusterError::TooLarge {
            key: key.to_string(),
            len: bytes.len(),
            max: MAX_VALUE_LEN,
        });
    }
    Ok(bytes)
}

/// Reads a stored table (gzip-compressed or plain JSON) from `key`'s value.
pub fn decode(key: &str, value: &[u8]) -> Result<Table, ClusterError> {
    let malformed = |reason: String| ClusterError::Malformed {
        key: key.to_string(),
        reason,
    };
    let table: Table = if value.starts_with(&GZIP_MAGIC) {
        let mut json = Vec::new();
        GzDecoder::new(value)
            .take(MAX_DECODED_LEN + 1)
            .read_to_end(&mut json)
            .map_err(|e| malformed(format!("bad gzip data: {e}")))?;
        if json.len() as u64 > MAX_DECODED_LEN {
            return Err(malformed(format!(
                "more than {MAX_DECODED_LEN} bytes once decompressed"
            )));
        }
        serde_json::from_slice(&json)
    } else {
        serde_json::from_slice(value)
    }
    .map_err(|e| malformed(e.to_string()))?;
    if table.format != FORMAT {
        return Err(malformed(format!(
            "format {} is not supported (this wharf reads format {FORMAT})",
            table.format
        )));
    }
    Ok(table)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(routes: usize) -> DynamicConfig {
        let mut yaml = String::from("http:\n  routers:\n");
        for i in 0..routes {
            yaml.push_str(&format!(
                "    app{i}:\n      rule: Host(`app{i}.example.org`) && PathPrefix(`/api`)\n      service: app{i}\n      middlewares: [strip@file]\n      entryPoints: [websecure]\n      tls:\n        certResolver: le\n"
            ));
        }
        yaml.push_str("  services:\n");
        for i in 0..routes {
            yaml.push_str(&format!(
                "    app{i}:\n      loadBalancer:\n        servers:\n          - url: http://10.0.{}.{}:8080\n          - url: http://10.1.{}.{}:8080\n        passHostHeader: true\n",
                i / 250, i % 250, i / 250, i % 250
            ));
        }
        serde_yaml_ng::from_str(&yaml).unwrap()
    }

    fn table(config: DynamicConfig) -> Table {
        Table {
            format: FORMAT,
            provider: "swarm".into(),
            publisher: Publisher {
                node: "manager-1".into(),
                instance: "0123abcd".into(),
            },
            token: 7,
            published_at: "2026-01-02T03:04:05.678Z".into(),
            config,
        }
    }

    #[test]
    fn round_trips_compressed() {
        let t = table(config(3));
        let bytes = encode("routes/table", &t).unwrap();
        assert_eq!(bytes[..2], GZIP_MAGIC);
        assert_eq!(decode("routes/table", &bytes).unwrap(), t);
    }

    #[test]
    fn reads_plain_json_written_by_hand() {
        let t = table(config(1));
        let json = serde_json::to_vec(&t).unwrap();
        assert_eq!(decode("routes/table", &json).unwrap(), t);
    }

    #[test]
    fn a_large_swarm_fits_compressed() {
        let t = table(config(3000));
        let json_len = serde_json::to_vec(&t).unwrap().len();
        assert!(
            json_len > MAX_VALUE_LEN,
            "the test table should not fit uncompressed ({json_len})"
        );
        let bytes = encode("routes/table", &t).unwrap();
        assert!(bytes.len() < MAX_VALUE_LEN / 2, "{} bytes", bytes.len());
        assert_eq!(
            decode("routes/table", &bytes)
                .unwrap()
                .config
                .http
                .routers
                .len(),
            3000
        );
    }

    #[test]
    fn malformed_entries_name_the_key() {
        for (value, needle) in [
            (&b"not json"[..], "expected"),
            (&[0x1f, 0x8b, 0, 1, 2][..], "bad gzip data"),
            (&br#"{"format":2,"provider":"swarm","publisher":{"node":"a","instance":"b"},"token":1,"publishedAt":"x","config":{}}"#[..], "format 2"),
            (&br#"{"format":1,"provider":"swarm","publisher":{"node":"a","instance":"b"},"token":1,"publishedAt":"x","config":{"http":{"routers":{"r":{"bogus":1}}}}}"#[..], "bogus"),
        ] {
            let err = decode("routes/table", value).unwrap_err().to_string();
            assert!(err.contains("routes/table"), "{err}");
            assert!(err.contains(needle), "{err}");
        }
    }
}
