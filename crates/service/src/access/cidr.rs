//! Networks written in CIDR notation: the IP allowlist's entries and the operator's trusted
//! proxies are lists of these.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};

/// An IPv4 or IPv6 network (`203.0.113.0/24`, `2001:db8::/32`), or one address (`198.51.100.7`,
/// a /32 or /128). Parsing clears the host bits (`10.1.2.3/8` is `10.0.0.0/8`) and reads an
/// IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as the IPv4 network it maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

/// Why a network did not parse, for messages that name the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let s = s.trim();
        let invalid = || {
            CidrError(format!(
                "`{s}` is not an IP address or CIDR network (such as 198.51.100.7, \
                 203.0.113.0/24 or 2001:db8::/32)"
            ))
        };
        let net = match s.split_once('/') {
            None => IpNet::from(s.parse::<IpAddr>().map_err(|_| invalid())?),
            Some((address, prefix)) => {
                let address: IpAddr = address.parse().map_err(|_| invalid())?;
                // Digits only: `u8::from_str` would also take `+8`.
                if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid());
                }
                let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
                IpNet::new(address, prefix).map_err(|_| {
                    CidrError(format!(
                        "`{s}` has a prefix length longer than the address ({} bits at most)",
                        if address.is_ipv4() { 32 } else { 128 }
                    ))
                })?
            }
        };
        Ok(Cidr(canonical(net.trunc())))
    }
}

/// `::ffff:a.b.c.d/p` (p ≥ 96) as `a.b.c.d/(p-96)`: client addresses are compared in their
/// canonical form, where an IPv4-mapped address is IPv4.
fn canonical(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.network().to_ipv4_mapped()
    {
        let v4 = Ipv4Net::new(v4, v6.prefix_len() - 96).expect("a prefix of at most 32");
        return IpNet::V4(v4);
    }
    net
}

/// One address is written without its prefix length; a network with it.
impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpNet::V4(n) if n.prefix_len() == 32 => write!(f, "{}", n.addr()),
            IpNet::V6(n) if n.prefix_len() == 128 => write!(f, "{}", n.addr()),
            n => write!(f, "{n}"),
        }
    }
}

impl From<IpAddr> for Cidr {
    fn from(ip: IpAddr) -> Self {
        Cidr(IpNet::from(ip.to_canonical()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_and_single_addresses_parse_in_canonical_form() {
        for (given, shown) in [
            ("203.0.113.0/24", "203.0.113.0/24"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            (" 198.51.100.7 ", "198.51.100.7"),
            ("198.51.100.7/32", "198.51.100.7"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("2001:DB8:0:0::1", "2001:db8::1"),
            ("2001:db8::1/128", "2001:db8::1"),
            ("::/0", "::/0"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::ffff:192.0.2.1", "192.0.2.1"),
        ] {
            assert_eq!(cidr(given).to_string(), shown, "{given}");
        }
        for bad in [
            "",
            "/",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0",
            "256.0.0.1",
            "2001:db8::/129",
            "example.com",
            "10.0.0.0/8/8",
            "[::1]",
            "10.0.0.1:80",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} parsed");
        }
        assert!(
            "10.0.0.0/33"
                .parse::<Cidr>()
                .unwrap_err()
                .to_string()
                .contains("32 bits at most")
        );
    }

    #[test]
    fn a_network_contains_its_addresses_in_either_notation() {
        let net = cidr("203.0.113.0/24");
        assert!(net.contains(ip("203.0.113.0")));
        assert!(net.contains(ip("203.0.113.255")));
        assert!(net.contains(ip("::ffff:203.0.113.9")), "IPv4-mapped");
        assert!(!net.contains(ip("203.0.114.0")));
        assert!(!net.contains(ip("2001:db8::1")));
        let one = cidr("198.51.100.7");
        assert!(one.contains(ip("198.51.100.7")) && !one.contains(ip("198.51.100.8")));
        let v6 = cidr("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(cidr("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(cidr("::/0").contains(ip("2001:db8::1")));
    }
}
