//! Header rules of a reverse proxy: hop-by-hop headers are removed, X-Forwarded-*
//! headers are kept only from trusted peers and then set for the upstream.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

/// X-Forwarded-* style headers that an untrusted client may not set.
const FORWARDED_HEADERS: [&str; 12] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-prefix",
    "x-forwarded-tls-client-cert",
    "x-forwarded-tls-client-cert-info",
    "x-real-ip",
    "forwarded",
];

/// Headers that concern one connection only and are never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Which peers may set X-Forwarded-* headers (an entrypoint's `forwardedHeaders`).
#[derive(Debug, Clone, Default)]
pub struct TrustedPeers {
    insecure: bool,
    nets: Vec<IpNet>,
}

/// An entry of `trustedIPs` that is neither an IP nor a CIDR.
#[derive(Debug, thiserror::Error)]
#[error("invalid trusted IP or CIDR {0:?}")]
pub struct InvalidTrustedIp(pub String);

impl TrustedPeers {
    /// Builds the set from `insecure` and a list of IPs or CIDRs.
    pub fn new(insecure: bool, entries: &[String]) -> Result<Self, InvalidTrustedIp> {
        let nets = entries
            .iter()
            .map(|e| {
                let e = e.trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidTrustedIp(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { insecure, nets })
    }

    /// Whether headers from `ip` are trusted.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.insecure || self.nets.iter().any(|n| n.contains(&ip))
    }
}

/// Maps IPv4-mapped IPv6 addresses to IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Removes the X-Forwarded-* family sent by an untrusted client.
pub fn strip_forwarded(headers: &mut HeaderMap) {
    for name in FORWARDED_HEADERS {
        headers.remove(name);
    }
}

/// Whether the request asks for a protocol upgrade (WebSocket and others).
pub fn upgrade_requested(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes hop-by-hop headers and those the Connection header names. When
/// `keep_upgrade` is set, `Connection: upgrade` and `Upgrade` survive so the
/// upstream sees the upgrade request (or the client the upgrade response).
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    let upgrade = if keep_upgrade {
        headers.remove(header::UPGRADE)
    } else {
        None
    };
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    let trailers = headers
        .get(header::TE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
    headers.remove(header::TE);
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if let Some(up) = upgrade {
        headers.insert(header::UPGRADE, up);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// What the proxy knows about the client side of a request.
#[derive(Debug, Clone, Copy)]
pub struct ClientSide<'a> {
    /// The client's IP.
    pub ip: IpAddr,
    /// The Host the client asked for, as sent (may include a port).
    pub host: &'a str,
    /// Whether the client connection is TLS.
    pub tls: bool,
    /// Whether this is a WebSocket upgrade.
    pub websocket: bool,
}

/// Sets X-Forwarded-For (appending the client), and X-Forwarded-Proto/-Host/-Port
/// and X-Real-Ip when not already present (they survive only from trusted peers).
pub fn set_forwarded(headers: &mut HeaderMap, client: ClientSide<'_>) {
    let ip = canonical(client.ip).to_string();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {ip}"),
        _ => ip.clone(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    let proto = match (client.tls, client.websocket) {
        (true, true) => "wss",
        (true, false) => "https",
        (false, true) => "ws",
        (false, false) => "http",
    };
    set_if_absent(headers, "x-forwarded-proto", proto);
    set_if_absent(headers, "x-forwarded-host", client.host);
    let port = host_port(client.host).unwrap_or(if client.tls { "443" } else { "80" });
    set_if_absent(headers, "x-forwarded-port", port);
    set_if_absent(headers, "x-real-ip", &ip);
}

fn set_if_absent(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if !headers.contains_key(name) {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    }
}

/// The port part of a Host header value, if any (`[::1]:8080`, `a.test:81`).
fn host_port(host: &str) -> Option<&str> {
    let (_, port) = host.rsplit_once(':')?;
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_peers_accept_ips_and_cidrs() {
        let t = TrustedPeers::new(false, &["10.0.0.0/8".into(), "192.168.1.7".into()]).unwrap();
        assert!(t.trusts("10.1.2.3".parse().unwrap()));
        assert!(t.trusts("192.168.1.7".parse().unwrap()));
        assert!(t.trusts("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!t.trusts("192.168.1.8".parse().unwrap()));
        assert!(TrustedPeers::new(false, &["nope".into()]).is_err());
        assert!(TrustedPeers::new(true, &[])
            .unwrap()
            .trusts("1.1.1.1".parse().unwrap()));
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-foo"),
        );
        h.insert("x-foo", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers, deflate"));
        h.insert("x-bar", HeaderValue::from_static("2"));
        remove_hop_by_hop(&mut h, false);
        assert!(!h.contains_key("x-foo"));
        assert!(!h.contains_key(header::CONNECTION));
        assert!(!h.contains_key("keep-alive"));
        assert_eq!(h.get(header::TE).unwrap(), "trailers");
        assert_eq!(h.get("x-bar").unwrap(), "2");
    }

    #[test]
    fn upgrade_survives_when_asked() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(upgrade_requested(&h));
        remove_hop_by_hop(&mut h, true);
        assert_eq!(h.get(header::UPGRADE).unwrap(), "websocket");
        assert_eq!(h.get(header::CONNECTION).unwrap(), "upgrade");
    }

    #[test]
    fn forwarded_headers_are_set_and_appended() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        let c = ClientSide {
            ip: "10.0.0.9".parse().unwrap(),
            host: "a.test:8443",
            tls: true,
            websocket: false,
        };
        set_forwarded(&mut h, c);
        assert_eq!(h.get("x-forwarded-for").unwrap(), "1.2.3.4, 10.0.0.9");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "https");
        assert_eq!(h.get("x-forwarded-host").unwrap(), "a.test:8443");
        assert_eq!(h.get("x-forwarded-port").unwrap(), "8443");
        assert_eq!(h.get("x-real-ip").unwrap(), "10.0.0.9");
        let mut h = HeaderMap::new();
        let c = ClientSide {
            ip: "10.0.0.9".parse().unwrap(),
            host: "a.test",
            tls: false,
            websocket: true,
        };
        set_forwarded(&mut h, c);
        assert_eq!(h.get("x-forwarded-port").unwrap(), "80");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "ws");
    }
}
