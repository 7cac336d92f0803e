//! Who a request comes from, as Traefik's `ipStrategy` and `sourceCriterion`
//! options say: the peer address, or an address picked from X-Forwarded-For, or a
//! request header, or the Host.

use std::net::{IpAddr, Ipv6Addr};

use http::{header, HeaderName, Request};
use ipnet::IpNet;
use serde::Deserialize;

use super::handler::ClientInfo;
use super::MiddlewareError;
use crate::forward::headers::canonical;

/// The `ipStrategy` options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IpStrategyOptions {
    /// Take the address `depth` entries from the right of X-Forwarded-For.
    pub depth: usize,
    /// Take the rightmost X-Forwarded-For address not in these IPs or CIDRs.
    #[serde(rename = "excludedIPs")]
    pub excluded_ips: Vec<String>,
    /// Group IPv6 clients by this prefix length (Traefik v3.1+).
    #[serde(rename = "ipv6Subnet")]
    pub ipv6_subnet: Option<u8>,
}

/// The `sourceCriterion` options of `rateLimit` and `inFlightReq`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceCriterionOptions {
    /// Group requests by client IP.
    #[serde(rename = "ipStrategy")]
    pub ip_strategy: Option<IpStrategyOptions>,
    /// Group requests by the value of this request header.
    #[serde(rename = "requestHeaderName")]
    pub request_header_name: String,
    /// Group requests by their Host.
    #[serde(rename = "requestHost")]
    pub request_host: bool,
}

/// How to find the client IP of a request.
#[derive(Debug, Clone, Default)]
pub struct IpStrategy {
    depth: usize,
    excluded: Vec<IpNet>,
    ipv6_subnet: Option<u8>,
}

impl IpStrategy {
    /// Builds the strategy; `kind` names the middleware in errors.
    pub fn new(kind: &'static str, o: &IpStrategyOptions) -> Result<Self, MiddlewareError> {
        let excluded = parse_ranges(kind, "ipStrategy.excludedIPs", &o.excluded_ips)?;
        if let Some(bits) = o.ipv6_subnet {
            if bits > 128 {
                return Err(MiddlewareError::invalid(
                    kind,
                    "ipStrategy.ipv6Subnet",
                    format!("{bits} is not a prefix length (0 to 128)"),
                ));
            }
        }
        Ok(Self {
            depth: o.depth,
            excluded,
            ipv6_subnet: o.ipv6_subnet,
        })
    }

    /// The client IP of `req`, or `None` when the strategy finds none (too few
    /// X-Forwarded-For entries, every entry excluded, or not an IP).
    pub fn client_ip<B>(&self, req: &Request<B>) -> Option<IpAddr> {
        let info = req.extensions().get::<ClientInfo>()?;
        let ip = if self.depth > 0 {
            let xff = forwarded_for(info);
            let i = xff.len().checked_sub(self.depth)?;
            parse_ip(xff.get(i)?)?
        } else if !self.excluded.is_empty() {
            forwarded_for(info)
                .iter()
                .rev()
                .filter_map(|s| parse_ip(s))
                .find(|ip| !self.excluded.iter().any(|n| n.contains(ip)))?
        } else {
            canonical(info.peer)
        };
        Some(self.mask(ip))
    }

    fn mask(&self, ip: IpAddr) -> IpAddr {
        match (ip, self.ipv6_subnet) {
            (IpAddr::V6(v6), Some(bits)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
            _ => ip,
        }
    }
}

/// The non-empty, trimmed entries of the X-Forwarded-For header as received.
fn forwarded_for(info: &ClientInfo) -> Vec<&str> {
    info.forwarded_for
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().map(canonical)
}

/// Parses a list of IPs or CIDRs, naming the option and the bad entry on error.
pub fn parse_ranges(
    kind: &'static str,
    option: &'static str,
    entries: &[String],
) -> Result<Vec<IpNet>, MiddlewareError> {
    entries
        .iter()
        .map(|e| {
            let e = e.trim();
            e.parse::<IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| e.parse::<IpAddr>().map(|ip| IpNet::from(canonical(ip))))
                .map_err(|_| {
                    MiddlewareError::invalid(kind, option, format!("{e:?} is not an IP or a CIDR"))
                })
        })
        .collect()
}

/// What requests are grouped by (rate limits, in-flight limits).
#[derive(Debug, Clone)]
pub enum Source {
    /// The client IP.
    Ip(IpStrategy),
    /// A request header's value.
    Header(HeaderName),
    /// The Host header.
    Host,
}

impl Source {
    /// Builds the criterion; without one, `default` applies.
    pub fn new(
        kind: &'static str,
        o: Option<&SourceCriterionOptions>,
        default: Source,
    ) -> Result<Self, MiddlewareError> {
        let Some(o) = o else { return Ok(default) };
        let set = [
            o.ip_strategy.is_some(),
            !o.request_header_name.is_empty(),
            o.request_host,
        ];
        match set {
            [false, false, false] => Ok(default),
            [true, false, false] => Ok(Source::Ip(IpStrategy::new(
                kind,
                o.ip_strategy
                    .as_ref()
                    .unwrap_or(&IpStrategyOptions::default()),
            )?)),
            [false, true, false] => HeaderName::from_bytes(o.request_header_name.trim().as_bytes())
                .map(Source::Header)
                .map_err(|_| {
                    MiddlewareError::invalid(
                        kind,
                        "sourceCriterion.requestHeaderName",
                        format!("{:?} is not a header name", o.request_header_name),
                    )
                }),
            [false, false, true] => Ok(Source::Host),
            _ => Err(MiddlewareError::invalid(
                kind,
                "sourceCriterion",
                "ipStrategy, requestHeaderName and requestHost are mutually exclusive",
            )),
        }
    }

    /// The group `req` belongs to; `None` when the client IP cannot be found.
    pub fn key<B>(&self, req: &Request<B>) -> Option<String> {
        match self {
            Source::Ip(s) => s.client_ip(req).map(|ip| ip.to_string()),
            Source::Header(name) => Some(
                req.headers()
                    .get(name)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .unwrap_or_default(),
            ),
            Source::Host => Some(
                req.headers()
                    .get(header::HOST)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .unwrap_or_default(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::body::{self, Body};

    fn req(peer: &str, xff: Option<&'static str>) -> Request<Body> {
        let mut r = Request::builder()
            .header(header::HOST, "app.test:8000")
            .header("x-user", "alice")
            .body(body::empty())
            .unwrap();
        r.extensions_mut().insert(ClientInfo {
            peer: peer.parse().unwrap(),
            tls: false,
            forwarded_for: xff.map(HeaderValue::from_static),
        });
        r
    }

    fn strategy(depth: usize, excluded: &[&str]) -> IpStrategy {
        let o = IpStrategyOptions {
            depth,
            excluded_ips: excluded.iter().map(|s| s.to_string()).collect(),
            ipv6_subnet: None,
        };
        IpStrategy::new("test", &o).unwrap()
    }

    #[test]
    fn strategies_pick_the_documented_address() {
        let xff = Some("10.0.0.1, 11.0.0.1,12.0.0.1, 13.0.0.1");
        let r = req("::ffff:192.0.2.9", xff);
        let ip = |s: &IpStrategy| s.client_ip(&r).map(|i| i.to_string());
        assert_eq!(ip(&strategy(0, &[])).as_deref(), Some("192.0.2.9"));
        assert_eq!(ip(&strategy(1, &[])).as_deref(), Some("13.0.0.1"));
        assert_eq!(ip(&strategy(3, &[])).as_deref(), Some("11.0.0.1"));
        assert_eq!(ip(&strategy(5, &[])), None);
        assert_eq!(
            ip(&strategy(0, &["12.0.0.1", "13.0.0.0/8"])).as_deref(),
            Some("11.0.0.1")
        );
        assert_eq!(ip(&strategy(0, &["0.0.0.0/0"])), None);
    }

    #[test]
    fn ipv6_subnet_groups_clients() {
        let o = IpStrategyOptions {
            ipv6_subnet: Some(64),
            ..Default::default()
        };
        let s = IpStrategy::new("test", &o).unwrap();
        let ip = s.client_ip(&req("2001:db8:1:2:3:4:5:6", None)).unwrap();
        assert_eq!(ip.to_string(), "2001:db8:1:2::");
        let o = IpStrategyOptions {
            ipv6_subnet: Some(129),
            ..Default::default()
        };
        assert!(IpStrategy::new("test", &o).is_err());
    }

    #[test]
    fn source_criteria() {
        let r = req("192.0.2.9", None);
        let default = || Source::Ip(IpStrategy::default());
        let host = SourceCriterionOptions {
            request_host: true,
            ..Default::default()
        };
        let s = Source::new("test", Some(&host), default()).unwrap();
        assert_eq!(s.key(&r).as_deref(), Some("app.test:8000"));
        let hdr = SourceCriterionOptions {
            request_header_name: "X-User".into(),
            ..Default::default()
        };
        let s = Source::new("test", Some(&hdr), default()).unwrap();
        assert_eq!(s.key(&r).as_deref(), Some("alice"));
        let s = Source::new("test", None, default()).unwrap();
        assert_eq!(s.key(&r).as_deref(), Some("192.0.2.9"));
        let both = SourceCriterionOptions {
            request_host: true,
            request_header_name: "X-User".into(),
            ..Default::default()
        };
        let e = Source::new("test", Some(&both), default()).unwrap_err();
        assert!(e.to_string().contains("mutually exclusive"), "{e}");
        assert!(parse_ranges("test", "sourceRange", &["10.0.0.0/33".into()]).is_err());
    }
}
