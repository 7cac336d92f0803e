//! Traefik's sticky cookie: the first response of a session carries a cookie that
//! names the chosen server, and later requests carrying it go to that server while
//! it is available.
//!
//! Names and values are derived with FNV-1a (64 bit), which is stable across
//! processes and replicas:
//! - the default cookie name is `_` followed by the first 8 hex digits of the hash
//!   of the service name (Traefik uses SHA-1 of `_TRAEFIK_BACKEND_<service>`, so a
//!   client moving from Traefik is re-pinned once, on its next request);
//! - the value is the 16 hex digits of the hash of the server URL, which identifies
//!   the server without exposing its address.

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

use crate::config::dynamic::StickyCookie;

/// The cookie name used when the configuration gives none.
pub fn default_cookie_name(service: &str) -> String {
    let hex = format!("{:016x}", fnv1a(service.as_bytes()));
    format!("_{}", &hex[..8])
}

/// Per-service sticky cookie state: the cookie name and, per server, the value
/// naming it and the ready-made `Set-Cookie` header.
#[derive(Debug)]
pub(crate) struct StickyCookies {
    name: Box<str>,
    values: Box<[Box<str>]>,
    set_cookies: Box<[Option<HeaderValue>]>,
}

impl StickyCookies {
    /// The cookies of `service` for servers at `urls`, in balancer order.
    pub(crate) fn new<'a>(
        service: &str,
        cfg: &StickyCookie,
        urls: impl Iterator<Item = &'a http::Uri>,
    ) -> Self {
        let name = match cfg.name.as_deref() {
            Some(name) if !name.is_empty() => sanitize_name(name),
            _ => default_cookie_name(service),
        };
        let attributes = attributes(cfg);
        let values: Box<[Box<str>]> = urls
            .map(|url| format!("{:016x}", fnv1a(url.to_string().as_bytes())).into())
            .collect();
        let set_cookies = values
            .iter()
            .map(|value| HeaderValue::try_from(format!("{name}={value}{attributes}")).ok())
            .collect();
        Self {
            name: name.into(),
            values,
            set_cookies,
        }
    }

    /// The cookie's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The index of the server named by the request's sticky cookie, if it has one
    /// naming a known server. Every `Cookie` header and every occurrence of the
    /// name is considered; malformed pairs are skipped.
    pub(crate) fn lookup(&self, headers: &HeaderMap) -> Option<usize> {
        headers
            .get_all(COOKIE)
            .iter()
            .flat_map(|header| cookie_values(header.as_bytes(), self.name.as_bytes()))
            .find_map(|value| self.values.iter().position(|v| v.as_bytes() == value))
    }

    /// The `Set-Cookie` value that pins a client to server `index`.
    pub(crate) fn set_cookie(&self, index: usize) -> Option<HeaderValue> {
        self.set_cookies.get(index).cloned().flatten()
    }
}

/// `; Path=…; Max-Age=…; HttpOnly; Secure; SameSite=…`, in Go's order, which is
/// what Traefik sends.
fn attributes(cfg: &StickyCookie) -> String {
    let path = cfg.path.as_deref().map(sanitize_path);
    let mut out = format!("; Path={}", path.as_deref().unwrap_or("/"));
    match cfg.max_age {
        Some(age) if age > 0 => out.push_str(&format!("; Max-Age={age}")),
        // As in Go's net/http, a negative Max-Age deletes the cookie at once.
        Some(age) if age < 0 => out.push_str("; Max-Age=0"),
        _ => {}
    }
    if cfg.http_only {
        out.push_str("; HttpOnly");
    }
    if cfg.secure {
        out.push_str("; Secure");
    }
    let same_site = match cfg.same_site.as_deref().map(str::to_ascii_lowercase) {
        Some(s) if s == "none" => Some("None"),
        Some(s) if s == "lax" => Some("Lax"),
        Some(s) if s == "strict" => Some("Strict"),
        _ => None,
    };
    if let Some(same_site) = same_site {
        out.push_str("; SameSite=");
        out.push_str(same_site);
    }
    out
}

/// The values of every `name=value` pair in one `Cookie` header, trimmed and
/// unquoted.
fn cookie_values<'h>(header: &'h [u8], name: &'h [u8]) -> impl Iterator<Item = &'h [u8]> {
    header.split(|&b| b == b';').filter_map(move |pair| {
        let pair = trim(pair);
        let eq = pair.iter().position(|&b| b == b'=')?;
        if trim(&pair[..eq]) != name {
            return None;
        }
        let value = trim(&pair[eq + 1..]);
        Some(match value {
            [b'"', inner @ .., b'"'] => inner,
            _ => value,
        })
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// Replaces every character that may not appear in a cookie name (RFC 2616 token)
/// with `_`, as Traefik does.
fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => c,
            '!' | '#' | '$' | '%' | '&' | '\'' | '*' | '+' | '-' | '.' | '^' | '`' | '|' | '~' => c,
            _ => '_',
        })
        .collect()
}

/// Drops the characters Go's net/http drops from a cookie path: `;` and anything
/// outside printable ASCII.
fn sanitize_path(path: &str) -> String {
    path.chars()
        .filter(|&c| (' '..='~').contains(&c) && c != ';')
        .collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(urls: &[&str]) -> Vec<http::Uri> {
        urls.iter().map(|u| u.parse().expect("valid URI")).collect()
    }

    fn cookies(cfg: &StickyCookie) -> StickyCookies {
        let urls = uris(&["http://10.0.0.1:80", "http://10.0.0.2:80"]);
        StickyCookies::new("web@swarm", cfg, urls.iter())
    }

    fn request(cookie_headers: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for h in cookie_headers {
            headers.append(COOKIE, HeaderValue::from_bytes(h).expect("valid header"));
        }
        headers
    }

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn default_name_is_short_stable_and_per_service() {
        let name = default_cookie_name("web@swarm");
        assert_eq!(name.len(), 9);
        assert!(name.starts_with('_'));
        assert_eq!(name, default_cookie_name("web@swarm"));
        assert_ne!(name, default_cookie_name("api@swarm"));
        assert_eq!(cookies(&StickyCookie::default()).name(), name);
        let empty = StickyCookie {
            name: Some(String::new()),
            ..StickyCookie::default()
        };
        assert_eq!(cookies(&empty).name(), name);
    }

    #[test]
    fn configured_name_is_sanitized() {
        let cfg = StickyCookie {
            name: Some("my cookie;é=".into()),
            ..StickyCookie::default()
        };
        assert_eq!(cookies(&cfg).name(), "my_cookie___");
    }

    #[test]
    fn value_hides_the_address_and_differs_per_server() {
        let c = cookies(&StickyCookie::default());
        let a = c.set_cookie(0).expect("header");
        let b = c.set_cookie(1).expect("header");
        let a = a.to_str().expect("ascii");
        assert!(!a.contains("10.0.0.1"), "{a}");
        assert_ne!(a, b.to_str().expect("ascii"));
        assert_eq!(c.set_cookie(2), None);
    }

    #[test]
    fn set_cookie_has_default_path_only() {
        let c = cookies(&StickyCookie::default());
        let value = &*c.values[0];
        let expected = format!("{}={value}; Path=/", c.name());
        assert_eq!(c.set_cookie(0).expect("header"), expected.as_str());
    }

    #[test]
    fn set_cookie_carries_configured_attributes() {
        let cfg = StickyCookie {
            name: Some("s".into()),
            secure: true,
            http_only: true,
            same_site: Some("LAX".into()),
            max_age: Some(3600),
            path: Some("/app;x\u{1}".into()),
        };
        let c = cookies(&cfg);
        let expected = format!(
            "s={}; Path=/appx; Max-Age=3600; HttpOnly; Secure; SameSite=Lax",
            c.values[0]
        );
        assert_eq!(c.set_cookie(0).expect("header"), expected.as_str());

        let cfg = StickyCookie {
            name: Some("s".into()),
            same_site: Some("bogus".into()),
            max_age: Some(-1),
            ..StickyCookie::default()
        };
        let c = cookies(&cfg);
        let expected = format!("s={}; Path=/; Max-Age=0", c.values[1]);
        assert_eq!(c.set_cookie(1).expect("header"), expected.as_str());
    }

    #[test]
    fn lookup_finds_the_cookie_among_others() {
        let cfg = StickyCookie {
            name: Some("s".into()),
            ..StickyCookie::default()
        };
        let c = cookies(&cfg);
        let v1 = c.values[1].to_string();
        let h = format!("a=1;  s = {v1} ;b=2");
        assert_eq!(c.lookup(&request(&[h.as_bytes()])), Some(1));
        let quoted = format!("s=\"{v1}\"");
        assert_eq!(c.lookup(&request(&[quoted.as_bytes()])), Some(1));
        // Several Cookie headers (HTTP/2), and a bad occurrence before a good one.
        let second = format!("x=y; s={}", c.values[0]);
        assert_eq!(
            c.lookup(&request(&[b"s=nope; t", second.as_bytes()])),
            Some(0)
        );
    }

    #[test]
    fn lookup_ignores_unknown_and_malformed_cookies() {
        let cfg = StickyCookie {
            name: Some("s".into()),
            ..StickyCookie::default()
        };
        let c = cookies(&cfg);
        let v0 = c.values[0].to_string();
        let prefixed = format!("xs={v0}");
        let wrong_case = format!("S={v0}");
        let cases: [&[u8]; 9] = [
            b"",
            b";;;",
            b"s",
            b"s=",
            b"=abc",
            b"s=\"",
            b"s=0123456789abcdef",
            prefixed.as_bytes(),
            wrong_case.as_bytes(),
        ];
        for case in cases {
            assert_eq!(c.lookup(&request(&[case])), None, "{case:?}");
        }
        assert_eq!(c.lookup(&request(&[b"s=\xff\xfe; \x80"])), None);
        assert_eq!(c.lookup(&HeaderMap::new()), None);
    }
}
