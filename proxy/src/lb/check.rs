//! Running one active health check against one server.
//!
//! The server is healthy when the status equals `status` if set, else when it is
//! 2xx or 3xx. With `followRedirects` (the default) up to 10 redirects to `http`
//! URLs are followed and the final status counts; a redirect to another scheme is
//! judged by its own status. Each check uses a new connection, so a server that
//! stops accepting connections is noticed.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, LOCATION};
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::probe::{Probe, Protocol, Target};

/// As in Go's HTTP client.
const MAX_REDIRECTS: usize = 10;

/// Why a server failed its check.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckFailure {
    #[error("request failed: {0}")]
    Request(String),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("received status {got}, expected {}", expected.map_or("2xx or 3xx".to_string(), |s| s.as_u16().to_string()))]
    Status {
        got: StatusCode,
        expected: Option<StatusCode>,
    },
    #[error("stopped after {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
}

type CheckClient = Client<HttpConnector, Empty<Bytes>>;

/// Runs checks of one probe.
#[derive(Debug)]
pub(crate) struct Checker {
    pub(crate) probe: Probe,
    http1: CheckClient,
    h2c: CheckClient,
}

impl Checker {
    pub(crate) fn new(probe: Probe) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = |h2c: bool| {
            Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .http2_only(h2c)
                .build(connector.clone())
        };
        Self {
            http1: client(false),
            h2c: client(true),
            probe,
        }
    }

    /// Checks one server, within the probe's timeout.
    pub(crate) async fn check(&self, target: &Target) -> Result<(), CheckFailure> {
        let timeout = self.probe.timeout;
        tokio::time::timeout(timeout, self.exchange(target))
            .await
            .map_err(|_| CheckFailure::Timeout(timeout))?
    }

    async fn exchange(&self, target: &Target) -> Result<(), CheckFailure> {
        let client = match target.protocol {
            Protocol::Http1 => &self.http1,
            Protocol::H2c => &self.h2c,
        };
        let mut uri = target.uri.clone();
        let mut method = self.probe.method.clone();
        let mut host = self.probe.host.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut request = Request::new(Empty::new());
            *request.method_mut() = method.clone();
            *request.uri_mut() = uri.clone();
            *request.headers_mut() = self.probe.headers.clone();
            if let Some(host) = &host {
                request.headers_mut().insert(HOST, host.clone());
            }
            let response = client
                .request(request)
                .await
                .map_err(|e| CheckFailure::Request(error_chain(&e)))?;
            let status = response.status();
            let next = if self.probe.follow_redirects {
                redirect(status, &uri, response.headers().get(LOCATION))
            } else {
                None
            };
            let Some((next, relative)) = next else {
                return if self.probe.is_healthy(status) {
                    Ok(())
                } else {
                    Err(CheckFailure::Status {
                        got: status,
                        expected: self.probe.expected,
                    })
                };
            };
            // As Go's client: 301-303 turn into GET, and a custom Host survives only
            // redirects that stay on the same server.
            if status != StatusCode::TEMPORARY_REDIRECT
                && status != StatusCode::PERMANENT_REDIRECT
                && method != Method::HEAD
            {
                method = Method::GET;
            }
            if !relative {
                host = None;
            }
            uri = next;
        }
        Err(CheckFailure::TooManyRedirects)
    }
}

/// Where a redirect response leads, if it is one that can be followed, and whether
/// the location was relative (same server).
fn redirect(status: StatusCode, base: &Uri, location: Option<&HeaderValue>) -> Option<(Uri, bool)> {
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = location?.to_str().ok()?;
    let parsed: Uri = location.parse().ok()?;
    if parsed.scheme().is_some() {
        return (parsed.scheme() == Some(&Scheme::HTTP) && parsed.host().is_some())
            .then_some((parsed, false));
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{dir}/{location}")
    };
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path).ok()?);
    Some((Uri::from_parts(parts).ok()?, true))
}

/// An error with its sources: hyper's own messages ("client error (Connect)") say
/// little without them.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::config::dynamic::HealthCheck;
    use crate::config::GoDuration;
    use crate::lb::test_server::{closed_port, TestServer};

    fn checker(edit: impl FnOnce(&mut HealthCheck)) -> Checker {
        let mut cfg = HealthCheck {
            path: "/health".into(),
            timeout: GoDuration(Duration::from_secs(2)),
            ..HealthCheck::default()
        };
        edit(&mut cfg);
        Checker::new(Probe::new(&cfg).expect("valid probe"))
    }

    async fn check(checker: &Checker, server: &http::Uri) -> Result<(), CheckFailure> {
        let target = checker.probe.target(server).expect("valid target");
        checker.check(&target).await
    }

    #[tokio::test]
    async fn sends_the_configured_request() {
        let server = TestServer::start(200).await;
        let c = checker(|c| {
            c.path = "/ready?deep=1".into();
            c.method = Some("HEAD".into());
            c.hostname = Some("app.example".into());
            c.headers.insert("X-Probe".into(), "wharf".into());
        });
        check(&c, &server.url()).await.expect("healthy");
        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, Method::HEAD);
        assert_eq!(seen[0].path, "/ready");
        assert_eq!(seen[0].version, http::Version::HTTP_11);
        assert_eq!(seen[0].headers[HOST], "app.example");
        assert_eq!(seen[0].headers["x-probe"], "wharf");
    }

    #[tokio::test]
    async fn host_defaults_to_the_server_address() {
        let server = TestServer::start(204).await;
        check(&checker(|_| {}), &server.url())
            .await
            .expect("204 is healthy");
        let host = server.seen()[0].headers[HOST].clone();
        assert_eq!(host, server.addr.to_string().as_str());
    }

    #[tokio::test]
    async fn status_decides() {
        let server = TestServer::start(500).await;
        let failure = check(&checker(|_| {}), &server.url()).await;
        assert!(
            matches!(failure, Err(CheckFailure::Status { got, expected: None }) if got == 500),
            "{failure:?}"
        );
        let expect_500 = checker(|c| c.status = Some(500));
        check(&expect_500, &server.url())
            .await
            .expect("500 was asked for");
        server.set_status(200);
        assert!(check(&expect_500, &server.url()).await.is_err());
    }

    #[tokio::test]
    async fn redirects_are_followed_unless_disabled() {
        let server = TestServer::start(503).await;
        let follow = checker(|c| c.path = "/redirect".into());
        assert!(
            check(&follow, &server.url()).await.is_err(),
            "/target is 503"
        );
        let paths: Vec<_> = server.seen().into_iter().map(|s| s.path).collect();
        assert_eq!(paths, ["/redirect", "/target"]);
        server.set_status(200);
        check(&follow, &server.url()).await.expect("/target is 200");

        server.set_status(503);
        let stay = checker(|c| {
            c.path = "/redirect".into();
            c.follow_redirects = false;
        });
        check(&stay, &server.url())
            .await
            .expect("302 itself is healthy");

        let looping = checker(|c| c.path = "/loop".into());
        let failure = check(&looping, &server.url()).await;
        assert!(
            matches!(failure, Err(CheckFailure::TooManyRedirects)),
            "{failure:?}"
        );

        let https = checker(|c| c.path = "/elsewhere".into());
        check(&https, &server.url())
            .await
            .expect("unfollowable 302 counts as is");
    }

    #[tokio::test]
    async fn closed_port_and_silence_fail() {
        let closed: http::Uri = format!("http://{}", closed_port().await)
            .parse()
            .expect("URI");
        let failure = check(&checker(|_| {}), &closed).await;
        assert!(
            matches!(failure, Err(CheckFailure::Request(_))),
            "{failure:?}"
        );

        let server = TestServer::start(200).await;
        server.behaviour.hang.store(true, Ordering::SeqCst);
        let quick = checker(|c| c.timeout = GoDuration(Duration::from_millis(200)));
        let failure = check(&quick, &server.url()).await;
        assert!(
            matches!(failure, Err(CheckFailure::Timeout(_))),
            "{failure:?}"
        );
    }

    #[tokio::test]
    async fn h2c_checks_use_http2() {
        let server = TestServer::start(200).await;
        let h2c = checker(|c| c.scheme = Some("h2c".into()));
        check(&h2c, &server.url()).await.expect("healthy");
        assert_eq!(server.seen()[0].version, http::Version::HTTP_2);
    }

    #[test]
    fn redirect_locations_resolve_against_the_request() {
        let base: Uri = "http://10.0.0.1:80/a/b?q".parse().expect("URI");
        let loc = |s: &'static str| HeaderValue::from_static(s);
        let to = |status: u16, l: Option<&HeaderValue>| {
            redirect(StatusCode::from_u16(status).expect("status"), &base, l)
                .map(|(uri, relative)| (uri.to_string(), relative))
        };
        let expect = |s: &str, relative| Some((s.to_string(), relative));
        assert_eq!(
            to(302, Some(&loc("/x?y=1"))),
            expect("http://10.0.0.1:80/x?y=1", true)
        );
        assert_eq!(
            to(307, Some(&loc("c"))),
            expect("http://10.0.0.1:80/a/c", true)
        );
        assert_eq!(
            to(301, Some(&loc("http://h:81/z"))),
            expect("http://h:81/z", false)
        );
        assert_eq!(to(302, Some(&loc("https://h/z"))), None);
        assert_eq!(to(302, None), None);
        assert_eq!(to(304, Some(&loc("/x"))), None);
        assert_eq!(to(200, Some(&loc("/x"))), None);
    }
}
