//! Traefik's health check options, validated into a [`Probe`], and the URL each
//! server is checked at.
//!
//! The request goes to `scheme://server-host:port/path` (`scheme` and `port`
//! overriding the server's), with `method` (default `GET`), `headers`, and
//! `hostname` as the Host header; a `path` without a leading `/` is taken from the
//! root, whatever path the server URL has. Zero intervals or timeout fall back to
//! Traefik's defaults (30 s, 5 s); `unhealthyInterval` defaults to `interval`.

use std::time::Duration;

use http::uri::{PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

use super::LbError;
use crate::config::dynamic::HealthCheck;

/// Traefik's defaults, used when an interval or the timeout is zero.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks that a health check configuration can be run: mode `http`, scheme `http`
/// or `h2c`, and a valid method, path, hostname, headers and status. The caller
/// reports the error on the service.
pub fn validate(cfg: &HealthCheck) -> Result<(), LbError> {
    Probe::new(cfg).map(|_| ())
}

/// The HTTP version a check is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// `http`: HTTP/1.1.
    Http1,
    /// `h2c`: HTTP/2 without TLS, with prior knowledge.
    H2c,
}

fn protocol(scheme: &str) -> Result<Protocol, LbError> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Ok(Protocol::Http1),
        "h2c" => Ok(Protocol::H2c),
        _ => Err(LbError::UnsupportedScheme(scheme.to_string())),
    }
}

/// A validated health check configuration.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) method: Method,
    path: PathAndQuery,
    protocol: Option<Protocol>,
    port: Option<u16>,
    pub(crate) host: Option<HeaderValue>,
    pub(crate) headers: HeaderMap,
    pub(crate) expected: Option<StatusCode>,
    pub(crate) follow_redirects: bool,
    pub(crate) interval: Duration,
    pub(crate) unhealthy_interval: Duration,
    pub(crate) timeout: Duration,
}

impl Probe {
    pub(crate) fn new(cfg: &HealthCheck) -> Result<Self, LbError> {
        match cfg.mode.as_deref() {
            None | Some("") => {}
            Some(mode) if mode.eq_ignore_ascii_case("http") => {}
            Some(mode) => return Err(LbError::UnsupportedMode(mode.to_string())),
        }
        let protocol = match cfg.scheme.as_deref() {
            None | Some("") => None,
            Some(scheme) => Some(protocol(scheme)?),
        };
        let method = match cfg.method.as_deref() {
            None | Some("") => Method::GET,
            Some(m) => {
                Method::from_bytes(m.as_bytes()).map_err(|_| LbError::InvalidMethod(m.into()))?
            }
        };
        let path = if cfg.path.starts_with('/') {
            cfg.path.clone()
        } else {
            format!("/{}", cfg.path)
        };
        let path = PathAndQuery::try_from(path.as_str())
            .map_err(|_| LbError::InvalidPath(cfg.path.clone()))?;
        let host = match cfg.hostname.as_deref() {
            None | Some("") => None,
            Some(h) => Some(
                HeaderValue::from_str(h)
                    .ok()
                    .filter(|_| !h.contains(char::is_whitespace))
                    .ok_or_else(|| LbError::InvalidHostname(h.into()))?,
            ),
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &cfg.headers {
            let invalid = || LbError::InvalidHeader(name.clone());
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            headers.insert(name, value);
        }
        let expected = match cfg.status {
            None | Some(0) => None,
            Some(code) => {
                Some(StatusCode::from_u16(code).map_err(|_| LbError::InvalidStatus(code))?)
            }
        };
        let or_default = |d: Duration, default| if d.is_zero() { default } else { d };
        let interval = or_default(cfg.interval.0, DEFAULT_INTERVAL);
        Ok(Self {
            method,
            path,
            protocol,
            port: cfg.port.filter(|&p| p != 0),
            host,
            headers,
            expected,
            follow_redirects: cfg.follow_redirects,
            interval,
            unhealthy_interval: cfg
                .unhealthy_interval
                .map_or(interval, |d| or_default(d.0, DEFAULT_INTERVAL)),
            timeout: or_default(cfg.timeout.0, DEFAULT_TIMEOUT),
        })
    }

    /// Where and how to check `server`.
    pub(crate) fn target(&self, server: &Uri) -> Result<Target, LbError> {
        let invalid = |reason: &str| LbError::InvalidUrl {
            url: server.to_string(),
            reason: reason.to_string(),
        };
        let protocol = match self.protocol {
            Some(p) => p,
            None => protocol(server.scheme_str().ok_or_else(|| invalid("no scheme"))?)?,
        };
        let host = server.host().ok_or_else(|| invalid("no host"))?;
        let port = self.port.or(server.port_u16()).unwrap_or(80);
        let uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(format!("{host}:{port}"))
            .path_and_query(self.path.clone())
            .build()
            .map_err(|e| invalid(&e.to_string()))?;
        Ok(Target {
            uri,
            protocol,
            server: server.to_string(),
        })
    }

    pub(crate) fn is_healthy(&self, status: StatusCode) -> bool {
        match self.expected {
            Some(expected) => status == expected,
            None => status.is_success() || status.is_redirection(),
        }
    }
}

/// The check URL of one server.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) uri: Uri,
    pub(crate) protocol: Protocol,
    /// The server's URL, for logs.
    pub(crate) server: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GoDuration;

    fn probe(edit: impl FnOnce(&mut HealthCheck)) -> Result<Probe, LbError> {
        let mut cfg = HealthCheck {
            path: "/health".into(),
            ..HealthCheck::default()
        };
        edit(&mut cfg);
        Probe::new(&cfg)
    }

    fn target(server: &str, edit: impl FnOnce(&mut HealthCheck)) -> Result<Target, LbError> {
        probe(edit)?.target(&server.parse().expect("valid URI"))
    }

    #[test]
    fn defaults_are_traefiks() {
        assert_eq!(validate(&HealthCheck::default()), Ok(()));
        let p = probe(|_| {}).expect("valid");
        assert_eq!(p.method, Method::GET);
        assert_eq!(p.interval, Duration::from_secs(30));
        assert_eq!(p.unhealthy_interval, Duration::from_secs(30));
        assert_eq!(p.timeout, Duration::from_secs(5));
        assert!(p.follow_redirects);
        assert!(p.is_healthy(StatusCode::NO_CONTENT));
        assert!(p.is_healthy(StatusCode::FOUND));
        assert!(!p.is_healthy(StatusCode::NOT_FOUND));
        assert!(!p.is_healthy(StatusCode::SERVICE_UNAVAILABLE));
    }

    #[test]
    fn intervals_and_timeout() {
        let p = probe(|c| {
            c.interval = GoDuration(Duration::from_millis(100));
            c.timeout = GoDuration(Duration::ZERO);
        })
        .expect("valid");
        assert_eq!(p.unhealthy_interval, Duration::from_millis(100));
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        let p = probe(|c| {
            c.interval = GoDuration(Duration::ZERO);
            c.unhealthy_interval = Some(GoDuration(Duration::from_secs(2)));
        })
        .expect("valid");
        assert_eq!(p.interval, DEFAULT_INTERVAL);
        assert_eq!(p.unhealthy_interval, Duration::from_secs(2));
        let p = probe(|c| c.unhealthy_interval = Some(GoDuration(Duration::ZERO)));
        assert_eq!(p.expect("valid").unhealthy_interval, DEFAULT_INTERVAL);
    }

    #[test]
    fn expected_status_replaces_the_default_range() {
        let p = probe(|c| c.status = Some(503)).expect("valid");
        assert!(p.is_healthy(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!p.is_healthy(StatusCode::OK));
        assert!(probe(|c| c.status = Some(0))
            .expect("valid")
            .expected
            .is_none());
        assert_eq!(
            probe(|c| c.status = Some(1000)).err(),
            Some(LbError::InvalidStatus(1000))
        );
    }

    #[test]
    fn unsupported_and_invalid_options_are_errors() {
        let err = |edit: fn(&mut HealthCheck)| probe(edit).err();
        assert_eq!(
            err(|c| c.mode = Some("grpc".into())),
            Some(LbError::UnsupportedMode("grpc".into()))
        );
        assert_eq!(err(|c| c.mode = Some("HTTP".into())), None);
        assert_eq!(
            err(|c| c.scheme = Some("https".into())),
            Some(LbError::UnsupportedScheme("https".into()))
        );
        assert_eq!(err(|c| c.scheme = Some("h2c".into())), None);
        assert_eq!(
            err(|c| c.method = Some("GET ME".into())),
            Some(LbError::InvalidMethod("GET ME".into()))
        );
        assert_eq!(err(|c| c.method = Some("HEAD".into())), None);
        assert_eq!(
            err(|c| c.path = "/a b".into()),
            Some(LbError::InvalidPath("/a b".into()))
        );
        assert_eq!(
            err(|c| c.hostname = Some("a b".into())),
            Some(LbError::InvalidHostname("a b".into()))
        );
        assert_eq!(
            err(|c| {
                c.headers.insert("X Bad".into(), "v".into());
            }),
            Some(LbError::InvalidHeader("X Bad".into()))
        );
        assert_eq!(
            err(|c| {
                c.headers.insert("X-Ok".into(), "line\nbreak".into());
            }),
            Some(LbError::InvalidHeader("X-Ok".into()))
        );
    }

    #[test]
    fn target_uses_the_server_address_and_the_overrides() {
        let t = target("http://10.0.0.1:8080/app", |_| {}).expect("valid");
        assert_eq!(t.uri, "http://10.0.0.1:8080/health");
        assert_eq!(t.protocol, Protocol::Http1);
        assert_eq!(t.server, "http://10.0.0.1:8080/app");
        let t = target("http://10.0.0.1", |c| c.path = "ready?full=1".into());
        assert_eq!(t.expect("valid").uri, "http://10.0.0.1:80/ready?full=1");
        let t = target("http://[::1]:8080", |c| c.port = Some(9000));
        assert_eq!(t.expect("valid").uri, "http://[::1]:9000/health");
        let t = target("h2c://grpc:50051", |_| {}).expect("valid");
        assert_eq!((t.protocol, t.uri.port_u16()), (Protocol::H2c, Some(50051)));
    }

    #[test]
    fn https_servers_need_a_scheme_override() {
        assert_eq!(
            target("https://10.0.0.1:443", |_| {}).err(),
            Some(LbError::UnsupportedScheme("https".into()))
        );
        let t = target("https://10.0.0.1:443", |c| {
            c.scheme = Some("http".into());
            c.port = Some(8080);
        });
        assert_eq!(t.expect("valid").uri, "http://10.0.0.1:8080/health");
    }
}
