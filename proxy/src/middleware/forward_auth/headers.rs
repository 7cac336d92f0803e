//! The headers of the request to the authentication server, and what comes back
//! from its answer.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::Uri;
use regex::Regex;

/// Hop-by-hop headers not sent to the authentication server (Proxy-Authorization
/// is sent: it may be what the server checks).
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers and those that `Connection` lists.
pub(super) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in listed.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// The headers sent to the authentication server: the client request's (all of
/// them, or only `allowed`), without hop-by-hop ones, plus X-Forwarded-Method,
/// -Proto, -Host, -Uri and -For describing the client request. With
/// `trust_forward_header`, X-Forwarded-* values the request already carries are
/// kept (X-Forwarded-For then lists every hop); otherwise they describe this hop
/// only (X-Forwarded-For is the client address, the last one the entrypoint added).
pub(super) fn auth_request(req: &Parts, allowed: &[HeaderName], trust: bool) -> HeaderMap {
    let src = &req.headers;
    let mut h = src.clone();
    remove_hop_by_hop(&mut h);
    h.remove(header::CONTENT_LENGTH);
    h.remove(header::HOST);
    if !allowed.is_empty() {
        let mut kept = HeaderMap::new();
        for name in allowed {
            for v in h.get_all(name) {
                kept.append(name.clone(), v.clone());
            }
        }
        h = kept;
    }
    let prior = |name: &str| {
        src.get(name)
            .filter(|v| trust && !v.as_bytes().is_empty())
            .cloned()
    };
    let xff: Vec<&str> = src
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let xff = if trust {
        xff.join(", ")
    } else {
        xff.last()
            .and_then(|v| v.rsplit(',').next())
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    set(&mut h, "x-forwarded-for", &xff);
    let method =
        prior("x-forwarded-method").or_else(|| HeaderValue::from_str(req.method.as_str()).ok());
    set_value(&mut h, "x-forwarded-method", method);
    let proto = prior("x-forwarded-proto").unwrap_or_else(|| {
        let entry = src
            .get("x-forwarded-proto")
            .map(|v| v.as_bytes())
            .unwrap_or(b"http");
        HeaderValue::from_static(if entry == b"https" || entry == b"wss" {
            "https"
        } else {
            "http"
        })
    });
    set_value(&mut h, "x-forwarded-proto", Some(proto));
    let host = prior("x-forwarded-host").or_else(|| src.get(header::HOST).cloned());
    set_value(&mut h, "x-forwarded-host", host);
    let uri = prior("x-forwarded-uri").or_else(|| {
        req.uri
            .path_and_query()
            .and_then(|p| HeaderValue::from_str(p.as_str()).ok())
    });
    set_value(&mut h, "x-forwarded-uri", uri);
    h
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    set_value(h, name, HeaderValue::from_str(value).ok());
}

fn set_value(h: &mut HeaderMap, name: &'static str, value: Option<HeaderValue>) {
    match value {
        Some(v) if !v.as_bytes().is_empty() => {
            h.insert(name, v);
        }
        _ => {
            h.remove(name);
        }
    }
}

/// Copies the authentication server's `names` headers and those whose canonical
/// name (`X-Auth-User`) matches `regex` onto the request, replacing what it had.
pub(super) fn copy_auth_headers(
    request: &mut HeaderMap,
    auth: &HeaderMap,
    names: &[HeaderName],
    regex: Option<&Regex>,
) {
    for name in names {
        request.remove(name);
        for v in auth.get_all(name) {
            request.append(name.clone(), v.clone());
        }
    }
    if let Some(re) = regex {
        let matching: Vec<HeaderName> = request
            .keys()
            .filter(|k| re.is_match(&canonical(k.as_str())))
            .cloned()
            .collect();
        for name in matching {
            request.remove(name);
        }
        for (name, v) in auth {
            if re.is_match(&canonical(name.as_str())) {
                request.append(name.clone(), v.clone());
            }
        }
    }
}

/// A header name as Go writes it: `x-auth-user` → `X-Auth-User`.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The name of the cookie a `Set-Cookie` value sets.
pub(super) fn cookie_name(set_cookie: &HeaderValue) -> Option<&str> {
    let s = set_cookie.to_str().ok()?;
    let pair = s.split(';').next()?;
    Some(pair.split_once('=')?.0.trim())
}

/// A `Location` from the authentication server made absolute against its address
/// (Go's `Response.Location`).
pub(super) fn absolute_location(location: &str, base: &Uri) -> Option<String> {
    if location.parse::<Uri>().is_ok_and(|u| u.scheme().is_some()) {
        return Some(location.to_string());
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?;
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let dir = base.path().rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    Some(format!("{scheme}://{authority}{dir}/{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().method("POST").uri("/app/x?y=1");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn forwarded_headers_describe_the_request() {
        let p = parts(&[
            ("host", "app.test"),
            ("x-forwarded-for", "10.9.9.9, 192.0.2.7"),
            ("x-forwarded-proto", "wss"),
            ("x-forwarded-method", "PUT"),
            ("connection", "x-drop"),
            ("x-drop", "1"),
            ("content-length", "3"),
            ("authorization", "Bearer t"),
        ]);
        let h = auth_request(&p, &[], false);
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h["x-forwarded-method"], "POST");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "app.test");
        assert_eq!(h["x-forwarded-uri"], "/app/x?y=1");
        assert_eq!(h["authorization"], "Bearer t");
        for gone in ["x-drop", "connection", "content-length", "host"] {
            assert!(!h.contains_key(gone), "{gone}");
        }
        let h = auth_request(&p, &[], true);
        assert_eq!(h["x-forwarded-for"], "10.9.9.9, 192.0.2.7");
        assert_eq!(h["x-forwarded-method"], "PUT");
        assert_eq!(h["x-forwarded-proto"], "wss");
        let only = [HeaderName::from_static("authorization")];
        let h = auth_request(&p, &only, false);
        assert!(h.contains_key("authorization"));
        assert!(h.contains_key("x-forwarded-uri"));
        assert!(!h.contains_key("x-forwarded-port"));
        assert_eq!(h.len(), 6);
    }

    #[test]
    fn auth_headers_replace_the_request_ones() {
        let mut req = HeaderMap::new();
        req.insert("x-user", "forged".parse().unwrap());
        req.insert("x-auth-role", "forged".parse().unwrap());
        req.insert("x-keep", "1".parse().unwrap());
        let mut auth = HeaderMap::new();
        auth.insert("x-user", "alice".parse().unwrap());
        auth.insert("x-auth-team", "blue".parse().unwrap());
        let re = Regex::new("^X-Auth-").unwrap();
        copy_auth_headers(
            &mut req,
            &auth,
            &[HeaderName::from_static("x-user")],
            Some(&re),
        );
        assert_eq!(req["x-user"], "alice");
        assert_eq!(req["x-auth-team"], "blue");
        assert!(!req.contains_key("x-auth-role"));
        assert_eq!(req["x-keep"], "1");
    }

    #[test]
    fn locations_and_cookies() {
        let base: Uri = "http://auth:9000/check/verify".parse().unwrap();
        let abs = |l| absolute_location(l, &base).unwrap();
        assert_eq!(abs("https://sso.test/login"), "https://sso.test/login");
        assert_eq!(abs("/login?x=1"), "http://auth:9000/login?x=1");
        assert_eq!(abs("login"), "http://auth:9000/check/login");
        assert_eq!(abs("//sso.test/a"), "http://sso.test/a");
        let v = HeaderValue::from_static("session=abc; Path=/; HttpOnly");
        assert_eq!(cookie_name(&v), Some("session"));
        assert_eq!(canonical("x-auth-user"), "X-Auth-User");
    }
}
