//! IP networks for `ClientIP`: a single address or a CIDR range, IPv4 or IPv6.
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are treated as IPv4, as Go does.

use std::net::IpAddr;

/// An IP network: the address with its host bits cleared, and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address, or an IPv6 CIDR.
    pub(crate) fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr_part, prefix_part) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let parsed: IpAddr = addr_part
            .parse()
            .map_err(|_| format!("`{addr_part}` is not an IP address"))?;
        let max = bits(parsed);
        let prefix = match prefix_part {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max && !p.starts_with('+'))
                .ok_or_else(|| format!("`/{p}` is not a prefix length between 0 and {max}"))?,
        };
        let addr = parsed.to_canonical();
        // An IPv4-mapped IPv6 network keeps only the IPv4 part of its prefix.
        let prefix = if addr == parsed {
            prefix
        } else {
            prefix.saturating_sub(96)
        };
        Ok(Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `ip` belongs to this network.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

fn bits(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

/// Clears all but the first `prefix` bits.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) & m))
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & m))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn single_addresses() {
        let c = Cidr::parse("127.0.0.1").unwrap();
        assert!(c.contains(ip("127.0.0.1")));
        assert!(!c.contains(ip("127.0.0.2")));
        let c = Cidr::parse("::1").unwrap();
        assert!(c.contains(ip("::1")));
        assert!(!c.contains(ip("127.0.0.1")));
    }

    #[test]
    fn ranges_including_non_canonical_and_zero() {
        let c = Cidr::parse("192.168.1.9/24").unwrap();
        assert!(c.contains(ip("192.168.1.200")));
        assert!(!c.contains(ip("192.168.2.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(!Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("2001:db8::1")));
        let c = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c.contains(ip("2001:db8:ffff::1")));
        assert!(!c.contains(ip("2001:db9::1")));
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("::ffff:10.1.2.3")));
        let c = Cidr::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(c.contains(ip("10.9.9.9")));
        assert!(!c.contains(ip("11.0.0.1")));
    }

    #[test]
    fn rejects_garbage() {
        assert!(Cidr::parse("1").is_err());
        assert!(Cidr::parse("").is_err());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0.0/").is_err());
        assert!(Cidr::parse("10.0.0.0/+8").is_err());
        assert!(Cidr::parse("::/129").is_err());
        assert!(Cidr::parse("example.com").is_err());
    }
}
