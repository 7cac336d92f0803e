//! Errors of the request path and how each becomes an HTTP response.

use http::{header, Response, StatusCode};

use crate::body::{self, Body};

/// Why the proxy could not produce the upstream's response.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No router matched the request.
    #[error("no router matches the request")]
    NoRoute,
    /// The service has no server that is currently available.
    #[error("no available server")]
    NoServer,
    /// Connecting to the upstream failed (nothing was sent).
    #[error("cannot connect to upstream {upstream}")]
    Connect {
        /// The upstream URL.
        upstream: String,
        /// The connection error.
        #[source]
        source: crate::body::BoxError,
    },
    /// The upstream failed after the request was sent.
    #[error("upstream {upstream} failed")]
    Upstream {
        /// The upstream URL.
        upstream: String,
        /// The client error.
        #[source]
        source: crate::body::BoxError,
    },
    /// The upstream did not send response headers in time.
    #[error("upstream {upstream} did not answer within {timeout:?}")]
    Timeout {
        /// The upstream URL.
        upstream: String,
        /// The configured response-header timeout.
        timeout: std::time::Duration,
    },
    /// The request could not be turned into an upstream request.
    #[error("invalid upstream request: {0}")]
    BadRequest(String),
    /// The router or service is disabled because its configuration is invalid.
    #[error("configuration error: {0}")]
    Config(String),
}

impl ProxyError {
    /// The status code the client sees for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::NoServer => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect { .. } | ProxyError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response sent to the client: Traefik's plain-text bodies.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let text = match &self {
            ProxyError::NoRoute => "404 page not found\n".to_string(),
            ProxyError::NoServer => "no available server\n".to_string(),
            _ => format!("{}\n", status.canonical_reason().unwrap_or("error")),
        };
        let mut resp = Response::new(body::full(text));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_status() {
        assert_eq!(ProxyError::NoRoute.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ProxyError::NoServer.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let t = ProxyError::Timeout {
            upstream: "u".into(),
            timeout: std::time::Duration::from_secs(1),
        };
        assert_eq!(t.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            ProxyError::BadRequest("x".into()).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ProxyError::Config("x".into()).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let resp = ProxyError::NoRoute.into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
}
