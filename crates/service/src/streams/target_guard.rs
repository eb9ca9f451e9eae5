//! The guard against server-side request forgery: a stream's receiver is named by whoever holds
//! an organization's admin key, so without a guard a stream could make Stele post the trail to
//! (or probe) the operator's own network: a database on loopback, a cloud metadata service on a
//! link-local address, an admin panel on a private range. Unless the operator allows private
//! targets (`--streams-allow-private-targets`), a stream may only reach public addresses.
//!
//! The address is checked where the connection is made, not only where the stream is saved: a
//! host name can resolve to a public address today and to `127.0.0.1` tomorrow (DNS rebinding),
//! so webhooks resolve through [`GuardedResolver`] and syslog through [`resolve`], and redirects
//! are not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Whether an address is on the public internet: not loopback, private, link-local, shared
/// (carrier-grade NAT), unspecified, multicast, broadcast, documentation or otherwise reserved.
/// An IPv4 address inside IPv6 (mapped or compatible) is judged as the IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (RFC 6598), carrier-grade NAT.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments (RFC 6890), benchmarking (RFC 2544), reserved (240/4).
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local (fc00::/7) and link-local (fe80::/10).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // Documentation (2001:db8::/32).
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96) reach IPv4 hosts.
        || (ip.segments()[..6] == [0; 6])
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

/// What the guard refused: the host and the address it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{host} resolves to {ip}, a loopback, private or link-local address; stream targets must \
         be public unless the operator allows private targets (--streams-allow-private-targets)"
    )]
    Private { host: String, ip: IpAddr },
    #[error("{host} could not be resolved: {reason}")]
    Unresolved { host: String, reason: String },
}

/// The guard, and what else of the targets is the operator's to say: whether private targets
/// are allowed, and whether this server publishes to NATS (`--nats-url`), the one target a
/// stream cannot name itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TargetGuard {
    pub allow_private: bool,
    pub nats: bool,
}

impl TargetGuard {
    /// Refuses an address the guard does not allow.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_private || is_public(ip) {
            Ok(())
        } else {
            Err(Refusal::Private {
                host: host.to_string(),
                ip,
            })
        }
    }

    /// Resolves `host` and keeps the addresses the guard allows; refuses when it allows none.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let host_only = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match host_only.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host_only, port))
                .await
                .map_err(|e| Refusal::Unresolved {
                    host: host.to_string(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match self.check(host, a.ip()) {
                Ok(()) => true,
                Err(refusal) => {
                    first_refusal.get_or_insert(refusal);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), first_refusal) {
            (false, _) => Ok(allowed),
            (true, Some(refusal)) => Err(refusal),
            (true, None) => Err(Refusal::Unresolved {
                host: host.to_string(),
                reason: "no address".into(),
            }),
        }
    }
}

/// The HTTP client's resolver for webhooks: host names resolve through the guard, so a name
/// that points at a private address is refused at connection time.
pub struct GuardedResolver(pub TargetGuard);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = guard.resolve(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl GuardedResolver {
    pub fn shared(guard: TargetGuard) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver(guard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn the_guard_refuses_names_that_resolve_to_loopback_unless_allowed() {
        let refused = TargetGuard::default().resolve("localhost", 80).await;
        assert!(
            matches!(refused, Err(Refusal::Private { .. })),
            "{refused:?}"
        );
        let allowed = TargetGuard {
            allow_private: true,
            ..TargetGuard::default()
        }
        .resolve("127.0.0.1", 80)
        .await
        .unwrap();
        assert_eq!(allowed, vec!["127.0.0.1:80".parse().unwrap()]);
    }
}
