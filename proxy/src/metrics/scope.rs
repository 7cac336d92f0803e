//! Request metrics of one scope (an entrypoint, a router or a service): the label
//! values that never change for it are fixed when the scope is made, and the
//! counters for each (code, method, protocol) are found through a small lock-free
//! cache, so a request only increments atomics.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use http::Method;
use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;

/// Label values fixed for a scope: `entrypoint`, or `router` and `service`, or `service`.
pub type FixedLabels = Arc<[(&'static str, Arc<str>)]>;

/// Labels of the request families: the scope's fixed labels plus code, method and
/// protocol.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct RequestLabels {
    code: u16,
    method: Arc<str>,
    protocol: &'static str,
    fixed: FixedLabels,
}

impl EncodeLabelSet for RequestLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        [("code", self.code)].encode(encoder)?;
        [("method", &*self.method), ("protocol", self.protocol)].encode(encoder)?;
        self.fixed.as_ref().encode(encoder)
    }
}

/// Labels of the TLS request families: the scope's fixed labels plus version and cipher.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct TlsLabels {
    tls_version: &'static str,
    tls_cipher: &'static str,
    fixed: FixedLabels,
}

impl EncodeLabelSet for TlsLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        [
            ("tls_version", self.tls_version),
            ("tls_cipher", self.tls_cipher),
        ]
        .encode(encoder)?;
        self.fixed.as_ref().encode(encoder)
    }
}

/// Builds histograms with the configured buckets.
#[derive(Debug, Clone)]
pub struct Buckets(pub Arc<[f64]>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// The request families of one kind of scope (`traefik_entrypoint_*`, ...).
#[derive(Debug, Clone)]
pub struct RequestFamilies {
    /// `*_requests_total`.
    pub requests: Family<RequestLabels, Counter>,
    /// `*_request_duration_seconds`.
    pub duration: Family<RequestLabels, Histogram, Buckets>,
    /// `*_requests_bytes_total`.
    pub request_bytes: Family<RequestLabels, Counter>,
    /// `*_responses_bytes_total`.
    pub response_bytes: Family<RequestLabels, Counter>,
    /// `*_requests_tls_total`.
    pub tls: Family<TlsLabels, Counter>,
}

impl RequestFamilies {
    /// Empty families whose histograms use `buckets`.
    pub fn new(buckets: &Buckets) -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(buckets.clone()),
            request_bytes: Family::default(),
            response_bytes: Family::default(),
            tls: Family::default(),
        }
    }
}

/// The metrics one finished request updates in a scope.
#[derive(Debug, Clone)]
struct Handles {
    requests: Counter,
    duration: Histogram,
    request_bytes: Counter,
    response_bytes: Counter,
}

/// What a finished request reports.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// Status code sent to the client.
    pub code: u16,
    /// Request method.
    pub method: &'a Method,
    /// `http`, `websocket` or `sse`.
    pub protocol: &'static str,
    /// Seconds from the request's arrival to the end of the response.
    pub seconds: f64,
    /// Request body bytes read.
    pub request_bytes: u64,
    /// Response body bytes written.
    pub response_bytes: u64,
    /// TLS version and cipher suite, on TLS connections.
    pub tls: Option<TlsInfo>,
}

/// A small copy-on-write map from a packed key to metric handles: reads take no lock.
struct Cache<H> {
    slots: ArcSwap<Vec<(u32, H)>>,
    write: Mutex<()>,
}

impl<H: Clone> Cache<H> {
    fn new() -> Self {
        Self {
            slots: ArcSwap::from_pointee(Vec::new()),
            write: Mutex::new(()),
        }
    }

    fn with(&self, key: u32, make: impl FnOnce() -> H, f: impl FnOnce(&H)) {
        if let Some((_, h)) = self.slots.load().iter().find(|(k, _)| *k == key) {
            return f(h);
        }
        let guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.slots.load_full();
        let handle = match current.iter().find(|(k, _)| *k == key) {
            Some((_, h)) => h.clone(),
            None => {
                let h = make();
                let mut next = Vec::with_capacity(current.len() + 1);
                next.extend(current.iter().cloned());
                next.push((key, h.clone()));
                self.slots.store(Arc::new(next));
                h
            }
        };
        drop(guard);
        f(&handle)
    }
}

/// Index of a standard method in the cache key; `None` for extension methods.
fn method_index(m: &Method) -> Option<u32> {
    const METHODS: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::PATCH,
        Method::CONNECT,
        Method::TRACE,
    ];
    METHODS.iter().position(|x| x == m).map(|i| i as u32)
}

fn protocol_index(p: &str) -> u32 {
    match p {
        "websocket" => 1,
        "sse" => 2,
        _ => 0,
    }
}

/// Request metrics of one entrypoint, router or service.
pub struct RequestScope {
    families: RequestFamilies,
    fixed: FixedLabels,
    requests: Cache<Handles>,
    tls: Cache<Counter>,
}

impl std::fmt::Debug for RequestScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestScope")
            .field("fixed", &self.fixed)
            .finish_non_exhaustive()
    }
}

impl RequestScope {
    /// A scope of `families` with the fixed labels `fixed`.
    pub fn new(families: &RequestFamilies, fixed: FixedLabels) -> Self {
        Self {
            families: families.clone(),
            fixed,
            requests: Cache::new(),
            tls: Cache::new(),
        }
    }

    /// Counts one finished request.
    pub fn record(&self, o: &Outcome<'_>) {
        let apply = |h: &Handles| {
            h.requests.inc();
            h.duration.observe(o.seconds);
            h.request_bytes.inc_by(o.request_bytes);
            h.response_bytes.inc_by(o.response_bytes);
        };
        let labels = || RequestLabels {
            code: o.code,
            method: Arc::from(o.method.as_str()),
            protocol: o.protocol,
            fixed: self.fixed.clone(),
        };
        match method_index(o.method) {
            Some(m) => {
                let key = u32::from(o.code.min(999)) << 8 | m << 2 | protocol_index(o.protocol);
                self.requests.with(key, || self.handles(&labels()), apply);
            }
            None => apply(&self.handles(&labels())),
        }
        if let Some(tls) = o.tls {
            let make = || {
                self.families.tls.get_or_create_owned(&TlsLabels {
                    tls_version: tls.version,
                    tls_cipher: tls.cipher,
                    fixed: self.fixed.clone(),
                })
            };
            self.tls.with(tls.key, make, |c| {
                c.inc();
            });
        }
    }

    fn handles(&self, labels: &RequestLabels) -> Handles {
        Handles {
            requests: self.families.requests.get_or_create_owned(labels),
            duration: self.families.duration.get_or_create_owned(labels),
            request_bytes: self.families.request_bytes.get_or_create_owned(labels),
            response_bytes: self.families.response_bytes.get_or_create_owned(labels),
        }
    }
}

/// A TLS connection's version and cipher suite, with Traefik's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsInfo {
    /// `1.2` or `1.3`.
    pub version: &'static str,
    /// Cipher suite name as Go spells it (`TLS_AES_128_GCM_SHA256`).
    pub cipher: &'static str,
    /// Both protocol numbers packed, for the cache.
    key: u32,
}

impl TlsInfo {
    /// Fixed names, for tests.
    #[cfg(test)]
    pub fn for_tests(version: &'static str, cipher: &'static str) -> Self {
        Self {
            version,
            cipher,
            key: 1,
        }
    }

    /// What a finished rustls handshake negotiated.
    pub fn of(conn: &rustls::ServerConnection) -> Option<Self> {
        let version = conn.protocol_version()?;
        let suite = conn.negotiated_cipher_suite()?.suite();
        let version_name = match version {
            rustls::ProtocolVersion::TLSv1_3 => "1.3",
            rustls::ProtocolVersion::TLSv1_2 => "1.2",
            _ => "unknown",
        };
        let cipher = match suite {
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
            rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
            other => other.as_str().unwrap_or("unknown"),
        };
        Some(Self {
            version: version_name,
            cipher,
            key: u32::from(u16::from(version)) << 16 | u32::from(u16::from(suite)),
        })
    }
}
