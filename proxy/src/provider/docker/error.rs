//! The Docker provider's errors.

use std::path::PathBuf;

/// Why the provider could not set up its connection or talk to the engine.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// `endpoint` is not a supported address.
    #[error("providers.docker endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The configured endpoint.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A TLS file could not be read or parsed.
    #[error("providers.docker tls: cannot load {what} from {}: {reason}", path.display())]
    TlsFile {
        /// Which file (`ca`, `cert`, `key`).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The TLS client configuration was refused.
    #[error("providers.docker tls: {0}")]
    Tls(#[source] rustls::Error),
    /// An API call failed.
    #[error("docker API {call}: {source}")]
    Api {
        /// Which call (`list services`, `events`, ...).
        call: &'static str,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// A request that wharf makes itself (not through bollard) failed.
    #[error("docker API {call}: {source}")]
    Transport {
        /// Which call.
        call: &'static str,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// The engine answered with an error status.
    #[error("docker API {call}: status {status}: {message}")]
    Status {
        /// Which call.
        call: &'static str,
        /// HTTP status.
        status: u16,
        /// The engine's message.
        message: String,
    },
    /// The engine's answer could not be decoded.
    #[error("docker API {call}: invalid answer: {source}")]
    Decode {
        /// Which call.
        call: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The event stream ended.
    #[error("docker event stream closed")]
    EventsClosed,
}

impl DockerError {
    /// Wraps a bollard error with the call that failed.
    pub(crate) fn api(call: &'static str) -> impl FnOnce(bollard::errors::Error) -> Self {
        move |source| Self::Api { call, source }
    }
}

/// A failure of wharf's own connection to the engine.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Connecting (socket, TCP or TLS handshake) failed.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("request: {0}")]
    Request(#[from] http::Error),
}

impl From<TransportError> for bollard::errors::Error {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Connect { endpoint, source } => Self::IOError {
                err: std::io::Error::new(source.kind(), format!("{endpoint}: {source}")),
            },
            TransportError::Http(err) => Self::HyperResponseError { err },
            TransportError::Request(err) => Self::HttpClientError { err },
        }
    }
}
