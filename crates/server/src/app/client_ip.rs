//! Who a request comes from: the client's IP address, given the operator's trusted proxies.
//!
//! [`client_ip`] is the one place a client address is decided; the IP allowlist, the console's
//! sign-in rate limit and the context of Stele's own entries all use it. The address is the TCP
//! peer's, unless the peer is one of the operator's trusted proxies: then it is the right-most
//! address in the forwarding header that is not itself a trusted proxy. Everything to the left of
//! that is whatever the client chose to send, so it is never believed; and a header sent by a
//! peer that is not a trusted proxy is ignored altogether (anyone can send one).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use stele_service::access::Cidr;

/// The header a trusted proxy states the client's address in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, the cloud load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:4711"`.
    Forwarded,
}

impl FromStr for ForwardedHeader {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ForwardedHeader::XForwardedFor),
            "forwarded" => Ok(ForwardedHeader::Forwarded),
            other => Err(format!(
                "`{other}` is not a forwarding header; use x-forwarded-for or forwarded"
            )),
        }
    }
}

impl fmt::Display for ForwardedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        })
    }
}

/// The reverse proxies in front of Stele, and the one header they write. Only one header is read:
/// a proxy that writes `X-Forwarded-For` passes a client's own `Forwarded` header through
/// untouched (and the other way round), so reading both would let a client choose its address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    pub networks: Vec<Cidr>,
    pub header: ForwardedHeader,
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(ip))
    }

    /// The client's address, from the TCP peer's and the request's headers. `None` when there is
    /// no peer address, or when a trusted proxy forwarded a hop it could not name (`unknown`,
    /// an obfuscated `_identifier`, garbage): then no one can say who the client is.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.to_canonical();
        if !self.trusts(peer) {
            return Some(peer);
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
            ForwardedHeader::Forwarded => forwarded(headers),
        };
        // Walk from the proxy nearest to us outwards: each trusted proxy vouches for the hop it
        // appended (the address it received the request from).
        let mut nearest = peer;
        for hop in hops.into_iter().rev() {
            match hop {
                Some(ip) if self.trusts(ip) => nearest = ip,
                Some(ip) => return Some(ip),
                None => return None,
            }
        }
        // No header, or every hop is a trusted proxy: the request started at the left-most one.
        Some(nearest)
    }
}

/// The client address of a request, as [`TrustedProxies::client_ip`] decides it from the TCP
/// peer (`ConnectInfo`, which the server records on every connection).
pub fn client_ip(parts: &Parts, proxies: &TrustedProxies) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    proxies.client_ip(peer, &parts.headers)
}

/// Every `X-Forwarded-For` hop, left to right (several header lines are one list, in order).
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(value) => value
                .split(',')
                .map(str::trim)
                .filter(|hop| !hop.is_empty())
                .map(node)
                .collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// Every `Forwarded` element's `for=` node, left to right; an element without one is a hop that
/// names no one.
fn forwarded(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(value) => split_unquoted(value, ',')
                .into_iter()
                .filter(|element| !element.trim().is_empty())
                .map(|element| {
                    split_unquoted(element, ';').into_iter().find_map(|pair| {
                        let (name, value) = pair.split_once('=')?;
                        name.trim().eq_ignore_ascii_case("for").then(|| node(value))
                    })?
                })
                .collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// Splits at `separator` outside double quotes (a quoted value may hold one).
fn split_unquoted(s: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// One hop: `198.51.100.7`, `198.51.100.7:4711`, `2001:db8::1`, `[2001:db8::1]:4711`, quoted or
/// not; anything else (`unknown`, `_hidden`) names no address.
fn node(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    let ip = if let Some(bracketed) = hop.strip_prefix('[') {
        let (v6, rest) = bracketed.split_once(']')?;
        if !(rest.is_empty() || is_port(rest.strip_prefix(':')?)) {
            return None;
        }
        IpAddr::V6(v6.parse::<Ipv6Addr>().ok()?)
    } else if let Ok(ip) = hop.parse::<IpAddr>() {
        ip
    } else {
        let (v4, port) = hop.rsplit_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(v4.parse::<Ipv4Addr>().ok()?)
    };
    Some(ip.to_canonical())
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn behind(networks: &[&str], header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies {
            networks: networks.iter().map(|n| cidr(n)).collect(),
            header,
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let none = TrustedProxies::default();
        let spoofing = headers(&[
            ("x-forwarded-for", "10.9.9.9"),
            ("forwarded", "for=10.9.9.9"),
        ]);
        assert_eq!(
            none.client_ip(Some(ip("192.0.2.1")), &spoofing),
            Some(ip("192.0.2.1"))
        );
        // Trusting other proxies does not make this peer one.
        let proxies = behind(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(
            proxies.client_ip(Some(ip("192.0.2.1")), &spoofing),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(
            proxies.client_ip(Some(ip("::ffff:192.0.2.1")), &HeaderMap::new()),
            Some(ip("192.0.2.1")),
            "canonical form"
        );
        assert_eq!(proxies.client_ip(None, &spoofing), None);
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let proxies = behind(&["10.0.0.0/8", "fd00::/8"], ForwardedHeader::XForwardedFor);
        let peer = Some(ip("10.0.0.2"));
        let client = |xff: &[&str]| {
            let pairs: Vec<_> = xff.iter().map(|v| ("x-forwarded-for", *v)).collect();
            proxies.client_ip(peer, &headers(&pairs))
        };
        assert_eq!(client(&["198.51.100.7"]), Some(ip("198.51.100.7")));
        // The client prepended a lie; the proxy appended the truth.
        assert_eq!(client(&["6.6.6.6, 198.51.100.7"]), Some(ip("198.51.100.7")));
        // Two proxies deep, and split over two header lines.
        assert_eq!(
            client(&["6.6.6.6, 198.51.100.7", "10.0.0.5"]),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(client(&["2001:db8::7, fd00::1"]), Some(ip("2001:db8::7")));
        assert_eq!(client(&["198.51.100.7:4711"]), Some(ip("198.51.100.7")));
        assert_eq!(client(&["[2001:db8::7]:4711"]), Some(ip("2001:db8::7")));
        // No header: the proxy itself. Only proxies: the left-most of them.
        assert_eq!(client(&[]), peer);
        assert_eq!(client(&["10.0.0.9, 10.0.0.5"]), Some(ip("10.0.0.9")));
        // A hop that names no address, where a trusted proxy vouches for it: nobody knows.
        assert_eq!(client(&["198.51.100.7, unknown"]), None);
        assert_eq!(client(&["nonsense"]), None);
        // A lie left of the client's true address is never reached.
        assert_eq!(client(&["unknown, 198.51.100.7"]), Some(ip("198.51.100.7")));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let xff = behind(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let rfc = behind(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        let peer = Some(ip("10.0.0.2"));
        let both = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(xff.client_ip(peer, &both), Some(ip("198.51.100.7")));
        assert_eq!(rfc.client_ip(peer, &both), Some(ip("203.0.113.9")));
        let forwarded = |value: &str| rfc.client_ip(peer, &headers(&[("forwarded", value)]));
        assert_eq!(
            forwarded(r#"for=6.6.6.6, For="[2001:db8:cafe::17]:4711";proto=https"#),
            Some(ip("2001:db8:cafe::17"))
        );
        assert_eq!(
            forwarded(r#"for=198.51.100.7;host="a,b";by=10.0.0.2, for=10.0.0.3"#),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(forwarded("for=198.51.100.7:80"), Some(ip("198.51.100.7")));
        assert_eq!(forwarded("for=unknown"), None);
        assert_eq!(forwarded("for=_hidden"), None);
        assert_eq!(forwarded("proto=https"), None, "an element without for=");
    }

    #[test]
    fn header_names_parse() {
        assert_eq!(
            "X-Forwarded-For".parse::<ForwardedHeader>(),
            Ok(ForwardedHeader::XForwardedFor)
        );
        assert_eq!(
            "forwarded".parse::<ForwardedHeader>(),
            Ok(ForwardedHeader::Forwarded)
        );
        assert!("x-real-ip".parse::<ForwardedHeader>().is_err());
    }
}
