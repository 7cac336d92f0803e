//! Test helpers shared by the rule modules' tests: an owned request to borrow a
//! [`RequestView`] from, and one-line parse-and-match / parse-and-fail helpers.
#![allow(clippy::unwrap_used)]

use super::{RequestView, Rule, RuleError};
use crate::config::dynamic::RuleSyntax;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::net::IpAddr;

/// An owned request from which a [`RequestView`] is borrowed.
pub(crate) struct TestRequest {
    pub host: String,
    pub path: String,
    pub query: Option<String>,
    pub method: Method,
    pub headers: HeaderMap,
    pub ip: IpAddr,
}

/// A GET request for `host` and `path` (`path` may carry `?query`).
pub(crate) fn req(host: &str, path_and_query: &str) -> TestRequest {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (path_and_query.to_string(), None),
    };
    TestRequest {
        host: host.to_string(),
        path,
        query,
        method: Method::GET,
        headers: HeaderMap::new(),
        ip: IpAddr::from([127, 0, 0, 1]),
    }
}

impl TestRequest {
    pub(crate) fn method(mut self, m: &str) -> Self {
        self.method = Method::from_bytes(m.as_bytes()).unwrap();
        self
    }

    pub(crate) fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
        self
    }

    pub(crate) fn ip(mut self, ip: &str) -> Self {
        self.ip = ip.parse().unwrap();
        self
    }

    pub(crate) fn view(&self) -> RequestView<'_> {
        RequestView {
            host: &self.host,
            path: &self.path,
            query: self.query.as_deref(),
            method: &self.method,
            headers: &self.headers,
            client_ip: self.ip,
        }
    }
}

/// Parses `rule` (panicking on error) and matches it against `r`.
pub(crate) fn m(rule: &str, syntax: RuleSyntax, r: &TestRequest) -> bool {
    match Rule::parse(rule, syntax) {
        Ok(p) => p.rule.matches(&r.view()),
        Err(e) => panic!("rule {rule:?} failed to parse: {e}"),
    }
}

/// Parses `rule`, expecting an error; returns it.
pub(crate) fn err(rule: &str, syntax: RuleSyntax) -> RuleError {
    match Rule::parse(rule, syntax) {
        Ok(p) => panic!("rule {rule:?} unexpectedly parsed: {:?}", p.rule),
        Err(e) => e,
    }
}
