//! The compiled leaf matchers shared by every dialect, their validating
//! constructors, and the allocation-free request tests.

use http::HeaderName;
use regex::Regex;

use super::goregex;
use super::ip::Cidr;
use super::query::QueryMatcher;
use super::{RequestView, RuleError};

/// How a `Host` value matches the (normalized) request host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// This host exactly (lowercase, no trailing dot).
    Exact(String),
    /// `*.suffix`: exactly one label in front of `suffix` (v3.7).
    OneLabel(String),
    /// `**.suffix`: one or more labels in front of `suffix`.
    AnyLabels(String),
    /// `*`: any non-empty host.
    Any,
}

/// One compiled matcher.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// Host equality or wildcard.
    Host(HostPattern),
    /// A regexp searched in the host (v3: unanchored; v1/v2 templates are anchored).
    HostRegex(Regex),
    /// Exact path.
    Path(String),
    /// Plain string prefix of the path.
    PathPrefix(String),
    /// A regexp searched in the path.
    PathRegex(Regex),
    /// Request method, uppercase.
    Method(String),
    /// A header whose value equals `value` (any of its values).
    Header { name: HeaderName, value: String },
    /// A header with a value matching `re` (any of its values).
    HeaderRegex {
        name: HeaderName,
        re: regex::bytes::Regex,
    },
    /// A query parameter test.
    Query(QueryMatcher),
    /// The client address is in this network.
    ClientIp(Cidr),
}

impl Matcher {
    /// Whether the request satisfies this matcher.
    pub(crate) fn matches(&self, req: &RequestView<'_>) -> bool {
        match self {
            Matcher::Host(p) => host_matches(p, req.host),
            Matcher::HostRegex(re) => re.is_match(req.host),
            Matcher::Path(p) => req.path == p,
            Matcher::PathPrefix(p) => req.path.starts_with(p.as_str()),
            Matcher::PathRegex(re) => re.is_match(req.path),
            Matcher::Method(m) => req.method.as_str() == m,
            Matcher::Header { name, value } => req
                .headers
                .get_all(name)
                .iter()
                .any(|v| v.as_bytes() == value.as_bytes()),
            Matcher::HeaderRegex { name, re } => req
                .headers
                .get_all(name)
                .iter()
                .any(|v| re.is_match(v.as_bytes())),
            Matcher::Query(q) => q.matches(req.query),
            Matcher::ClientIp(net) => net.contains(req.client_ip),
        }
    }
}

fn host_matches(p: &HostPattern, host: &str) -> bool {
    match p {
        HostPattern::Exact(h) => host.eq_ignore_ascii_case(h),
        HostPattern::OneLabel(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest.eq_ignore_ascii_case(suffix)),
        HostPattern::AnyLabels(suffix) => {
            let (h, s) = (host.as_bytes(), suffix.as_bytes());
            h.len() > s.len() + 1
                && h[h.len() - s.len() - 1] == b'.'
                && h[h.len() - s.len()..].eq_ignore_ascii_case(s)
        }
        HostPattern::Any => !host.is_empty(),
    }
}

/// A `Host` value: ASCII, lowercased, one trailing dot removed; wildcards only when allowed.
pub(crate) fn host(value: &str, col: usize, wildcards: bool) -> Result<Matcher, RuleError> {
    if !value.is_ascii() {
        return Err(RuleError::new(
            col,
            format!("invalid host `{value}`: non-ASCII characters are not allowed; use the punycode form (xn--...)"),
        ));
    }
    let lower = value.to_ascii_lowercase();
    let lower = lower.strip_suffix('.').unwrap_or(&lower);
    let (pattern, rest) = if lower == "*" {
        (HostPattern::Any, "")
    } else if let Some(rest) = lower.strip_prefix("**.") {
        (HostPattern::AnyLabels(rest.to_string()), rest)
    } else if let Some(rest) = lower.strip_prefix("*.") {
        (HostPattern::OneLabel(rest.to_string()), rest)
    } else {
        (HostPattern::Exact(lower.to_string()), lower)
    };
    if !wildcards && pattern != HostPattern::Exact(lower.to_string()) {
        return Err(RuleError::new(
            col,
            format!("wildcard host `{value}` needs v3 rule syntax; here use a HostRegexp template such as `{{sub:[^.]+}}.example.com`"),
        ));
    }
    let bad = rest
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '[' | ']')));
    if (rest.is_empty() && pattern != HostPattern::Any) || bad.is_some() {
        let why = match bad {
            Some('*') => {
                "a wildcard `*` is only allowed as the whole first label (`*.example.com`)"
                    .to_string()
            }
            Some(c) => format!("`{c}` cannot appear in a host name"),
            None => "the host name is empty".to_string(),
        };
        return Err(RuleError::new(
            col,
            format!("invalid host `{value}`: {why}"),
        ));
    }
    Ok(Matcher::Host(pattern))
}

/// A literal `Path` or `PathPrefix` value, which must start with `/`.
pub(crate) fn path(value: &str, col: usize, prefix: bool) -> Result<Matcher, RuleError> {
    if !value.starts_with('/') {
        return Err(RuleError::new(
            col,
            format!("path `{value}` must start with `/`"),
        ));
    }
    Ok(if prefix {
        Matcher::PathPrefix(value.to_string())
    } else {
        Matcher::Path(value.to_string())
    })
}

/// A `Method` value, compared uppercase.
pub(crate) fn method(value: &str) -> Matcher {
    Matcher::Method(value.to_ascii_uppercase())
}

/// A header name, validated.
fn header_name(key: &str, col: usize) -> Result<HeaderName, RuleError> {
    HeaderName::from_bytes(key.as_bytes())
        .map_err(|_| RuleError::new(col, format!("invalid header name `{key}`")))
}

/// A header that must carry exactly `value`.
pub(crate) fn header(key: &str, key_col: usize, value: &str) -> Result<Matcher, RuleError> {
    Ok(Matcher::Header {
        name: header_name(key, key_col)?,
        value: value.to_string(),
    })
}

/// A header with a value matching the Go regexp `re` (unanchored).
pub(crate) fn header_regex(
    key: &str,
    key_col: usize,
    re: &str,
    re_col: usize,
) -> Result<Matcher, RuleError> {
    Ok(Matcher::HeaderRegex {
        name: header_name(key, key_col)?,
        re: goregex::compile_bytes(re)
            .map_err(|e| RuleError::new(re_col, format!("invalid regexp `{re}`: {e}")))?,
    })
}

/// A `ClientIP` value: an IP address or a CIDR range.
pub(crate) fn client_ip(value: &str, col: usize) -> Result<Matcher, RuleError> {
    Cidr::parse(value)
        .map(Matcher::ClientIp)
        .map_err(|e| RuleError::new(col, format!("invalid ClientIP `{value}`: {e}")))
}

/// A Go regexp for `HostRegexp`/`PathRegexp` (v3), with a clear error.
pub(crate) fn regex(
    matcher: &str,
    value: &str,
    col: usize,
    case_insensitive: bool,
) -> Result<Regex, RuleError> {
    goregex::compile(value, case_insensitive)
        .map_err(|e| RuleError::new(col, format!("invalid regexp in {matcher}(`{value}`): {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rules::testutil::req;

    fn hm(pattern: &str, wildcards: bool, host: &str) -> bool {
        let m = super::host(pattern, 1, wildcards).unwrap();
        m.matches(&req(host, "/").view())
    }

    #[test]
    fn exact_host_is_normalized() {
        assert!(hm("Example.COM", false, "example.com"));
        assert!(hm("example.com.", false, "example.com"));
        assert!(!hm("example.com", false, "example.org"));
        assert!(!hm("example.com", false, "www.example.com"));
    }

    #[test]
    fn wildcard_hosts() {
        assert!(hm("*.example.com", true, "a.example.com"));
        assert!(!hm("*.example.com", true, "a.b.example.com"));
        assert!(!hm("*.example.com", true, "example.com"));
        assert!(hm("**.example.com", true, "a.b.example.com"));
        assert!(hm("**.example.com", true, "a.example.com"));
        assert!(!hm("**.example.com", true, "example.com"));
        assert!(!hm("**.example.com", true, "xexample.com"));
        assert!(hm("*", true, "anything.at.all"));
        assert!(!hm("*", true, ""));
    }

    #[test]
    fn invalid_hosts() {
        let e = host("/", 7, true).unwrap_err();
        assert_eq!(e.position, 7);
        assert!(e.message.contains("`/` cannot appear"), "{}", e.message);
        assert!(host("🦭.com", 1, true)
            .unwrap_err()
            .message
            .contains("punycode"));
        assert!(host("a.*.com", 1, true)
            .unwrap_err()
            .message
            .contains("first label"));
        assert!(host("*.example.com", 1, false)
            .unwrap_err()
            .message
            .contains("v3"));
        assert!(host("**.", 1, true).is_err());
        assert!(host("[::1]", 1, false).is_ok());
    }

    #[test]
    fn paths_must_start_with_slash() {
        let e = path("css", 3, false).unwrap_err();
        assert_eq!(e.position, 3);
        assert!(matches!(path("/css", 1, true).unwrap(), Matcher::PathPrefix(p) if p == "/css"));
    }

    #[test]
    fn method_uppercased_and_exact() {
        let m = method("get");
        assert!(m.matches(&req("h", "/").view()));
        assert!(!m.matches(&req("h", "/").method("POST").view()));
        assert!(!m.matches(&req("h", "/").method("get").view()));
    }

    #[test]
    fn headers_match_any_value_case_insensitive_name() {
        let m = header("x-forwarded-proto", 1, "https").unwrap();
        let r = req("h", "/")
            .header("X-Forwarded-Proto", "ws")
            .header("X-Forwarded-Proto", "https");
        assert!(m.matches(&r.view()));
        assert!(!m.matches(&req("h", "/").header("X-Forwarded-Proto", "HTTPS").view()));
        assert!(!m.matches(&req("h", "/").view()));
        assert!(header("bad header", 4, "x").unwrap_err().position == 4);
    }

    #[test]
    fn header_regex_unanchored() {
        let m = header_regex("X-Proto", 1, "^https?$", 2).unwrap();
        assert!(m.matches(&req("h", "/").header("x-proto", "http").view()));
        assert!(!m.matches(&req("h", "/").header("x-proto", "HTTP").view()));
        let m = header_regex("X-Proto", 1, "ttp", 2).unwrap();
        assert!(m.matches(&req("h", "/").header("x-proto", "https").view()));
        let e = header_regex("X-Proto", 1, "(x", 9).unwrap_err();
        assert_eq!(e.position, 9);
        assert!(e.message.contains("invalid regexp"));
    }

    #[test]
    fn client_ip_single_and_cidr() {
        let m = client_ip("192.168.1.0/24", 1).unwrap();
        assert!(m.matches(&req("h", "/").ip("192.168.1.77").view()));
        assert!(!m.matches(&req("h", "/").ip("192.168.2.1").view()));
        let e = client_ip("10.0.0.0/33", 5).unwrap_err();
        assert_eq!(e.position, 5);
        assert!(e.message.contains("invalid ClientIP"));
    }
}
