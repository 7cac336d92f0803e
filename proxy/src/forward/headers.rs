//! Header rules of a reverse proxy: hop-by-hop headers are removed, X-Forwarded-*
//! headers are kept only from trusted peers and then set for the upstream.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

/// X-Forwarded-* style headers that an untrusted client may not set.
const FORWARDED_HEADERS: [HeaderName; 12] = [
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-server"),
    HeaderName::from_static("x-forwarded-uri"),
    HeaderName::from_static("x-forwarded-method"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-forwarded-tls-client-cert"),
    HeaderName::from_static("x-forwarded-tls-client-cert-info"),
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("forwarded"),
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
    for name in &FORWARDED_HEADERS {
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
    // One look at the few names a message carries instead of a lookup per
    // hop-by-hop name: most requests have none of them.
    if !headers
        .keys()
        .any(|k| k == header::TE || HOP_BY_HOP.contains(k))
    {
        return;
    }
    // Names the Connection header lists, besides the hop-by-hop ones removed anyway.
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| {
            !t.is_empty()
                && !["close", "keep-alive", "upgrade"]
                    .iter()
                    .any(|c| t.eq_ignore_ascii_case(c))
        })
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
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
    /// The client's IP as a header value (see [`ip_value`]), made once per connection.
    pub ip: &'a HeaderValue,
    /// The Host header the client sent (may include a port), if any.
    pub host: Option<&'a HeaderValue>,
    /// Whether the client connection is TLS.
    pub tls: bool,
    /// Whether this is a WebSocket upgrade.
    pub websocket: bool,
}

/// The canonical form of `ip` as a header value (X-Real-Ip, X-Forwarded-For).
pub fn ip_value(ip: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&canonical(ip).to_string())
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Sets X-Forwarded-For (appending the client), and X-Forwarded-Proto/-Host/-Port
/// and X-Real-Ip when not already present (they survive only from trusted peers).
/// In the common case it allocates nothing: the values are shared, not copied.
pub fn set_forwarded(headers: &mut HeaderMap, client: ClientSide<'_>) {
    let prior = headers
        .get(&X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .filter(|p| !p.trim().is_empty());
    let xff = match (prior, client.ip.to_str()) {
        (Some(prior), Ok(ip)) => HeaderValue::from_str(&format!("{prior}, {ip}")).ok(),
        _ => Some(client.ip.clone()),
    };
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR, v);
    }
    let proto = match (client.tls, client.websocket) {
        (true, true) => "wss",
        (true, false) => "https",
        (false, true) => "ws",
        (false, false) => "http",
    };
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if !headers.contains_key(&X_FORWARDED_HOST) {
        if let Some(host) = client.host {
            headers.insert(X_FORWARDED_HOST, host.clone());
        }
    }
    if !headers.contains_key(&X_FORWARDED_PORT) {
        let port = match client
            .host
            .and_then(|h| h.to_str().ok())
            .and_then(host_port)
        {
            Some(p) => HeaderValue::from_str(p).ok(),
            None if client.tls => Some(HeaderValue::from_static("443")),
            None => Some(HeaderValue::from_static("80")),
        };
        if let Some(port) = port {
            headers.insert(X_FORWARDED_PORT, port);
        }
    }
    if !headers.contains_key(&X_REAL_IP) {
        headers.insert(X_REAL_IP, client.ip.clone());
    }
}

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
    fn a_lone_te_goes_and_other_headers_stay() {
        let mut h = HeaderMap::new();
        h.insert(header::TE, HeaderValue::from_static("gzip"));
        h.insert("x-bar", HeaderValue::from_static("2"));
        remove_hop_by_hop(&mut h, false);
        assert!(!h.contains_key(header::TE));
        assert_eq!(h.len(), 1);
        let mut h = HeaderMap::new();
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        remove_hop_by_hop(&mut h, false);
        assert!(h.is_empty());
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
        let ip = ip_value("::ffff:10.0.0.9".parse().unwrap());
        let host = HeaderValue::from_static("a.test:8443");
        let c = ClientSide {
            ip: &ip,
            host: Some(&host),
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
        let host = HeaderValue::from_static("a.test");
        let c = ClientSide {
            ip: &ip,
            host: Some(&host),
            tls: false,
            websocket: true,
        };
        set_forwarded(&mut h, c);
        assert_eq!(h.get("x-forwarded-port").unwrap(), "80");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "ws");
    }
}
