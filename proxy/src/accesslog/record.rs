//! What is known about one finished request, captured on the request path and
//! formatted later by the writer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, Version};

use crate::metrics::TlsInfo;

/// One request, from arrival to the end of its response body.
#[derive(Debug, Clone)]
pub struct Record {
    /// When the request arrived.
    pub start: SystemTime,
    /// Until the last response byte was handed to the connection.
    pub duration: Duration,
    /// Entrypoint name.
    pub entrypoint: Arc<str>,
    /// Qualified router name, when a router matched.
    pub router: Option<Arc<str>>,
    /// Qualified service name, when a router matched.
    pub service: Option<Arc<str>>,
    /// The server the request went to, when it reached one.
    pub upstream: Option<http::Uri>,
    /// Time from the first upstream attempt to the server's response headers.
    pub origin_duration: Option<Duration>,
    /// The client's address.
    pub client: SocketAddr,
    /// The Host header as sent.
    pub host: String,
    /// Request method.
    pub method: Method,
    /// Path and query as sent.
    pub path: String,
    /// HTTP version.
    pub version: Version,
    /// Whether the connection is TLS.
    pub tls: Option<TlsInfo>,
    /// Request body bytes read.
    pub request_size: u64,
    /// Status sent to the client.
    pub status: u16,
    /// Response body bytes written.
    pub response_size: u64,
    /// Retries on other servers after connection failures.
    pub retries: u32,
    /// Request headers, when some header is logged.
    pub request_headers: Option<HeaderMap>,
    /// Response headers, when some header is logged.
    pub response_headers: Option<HeaderMap>,
    /// The Referer header (common formats).
    pub referer: Option<String>,
    /// The User-Agent header (common formats).
    pub user_agent: Option<String>,
    /// Requests this instance has received so far, this one included.
    pub count: u64,
}

impl Record {
    /// `HTTP/1.1`, as in the request line.
    pub fn protocol(&self) -> &'static str {
        match self.version {
            Version::HTTP_09 => "HTTP/0.9",
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_2 => "HTTP/2.0",
            Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/1.1",
        }
    }
}
