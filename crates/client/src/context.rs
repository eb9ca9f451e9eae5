//! The request context of an HTTP application: [`SteleContextLayer`], a `tower` layer, puts a
//! [`RequestContext`] (client address, user agent, request id, correlation id) into every
//! request's extensions, for handlers to hand to [`EventBuilder::context`](crate::EventBuilder::context).
//!
//! It works on any `http::Request`, so any tower-based server can use it (axum, tonic, hyper
//! with tower). It only reads: it adds no header and answers nothing itself.
//!
//! **The client address.** It is the TCP peer's, unless the peer is one of the trusted proxies
//! given to [`SteleContextLayer::trusted_proxies`]: then it is the right-most address of
//! `X-Forwarded-For` that is not itself a trusted proxy. Each trusted proxy appends the address it
//! received the request from, so walking the header from the right, hop by trusted hop, reaches
//! the first address no trusted proxy can vouch for; whatever lies to the left of it is what the
//! client chose to write, and is never believed. A header from a peer that is not a trusted proxy
//! is ignored altogether (anyone can send one). A hop a trusted proxy wrote that is no address
//! (`unknown`) leaves the address unknown (`None`) rather than guessed.
//!
//! The peer address is read from the request's extensions: axum's `ConnectInfo<SocketAddr>`
//! (with the crate's `axum` feature; serve the router with
//! `into_make_service_with_connect_info::<SocketAddr>()`), or a plain `SocketAddr` extension,
//! which any server can insert.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, HeaderMap, Request};
use ipnet::IpNet;
use tower_layer::Layer;
use tower_service::Service;

/// What the request says about where it comes from; every field only if known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestContext {
    /// The client's address (see the module docs for proxies).
    pub ip: Option<IpAddr>,
    /// `User-Agent`, if it is text.
    pub user_agent: Option<String>,
    /// `X-Request-Id`, if it is a plausible id (1 to 128 of letters, digits and `-_.:`).
    pub request_id: Option<String>,
    /// `X-Correlation-Id` (a plausible id, as above), or else the trace id of a valid W3C
    /// `traceparent` header, so that the entries of one distributed trace share it.
    pub correlation_id: Option<String>,
}

/// A trusted proxy that is neither an address nor a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or a CIDR network (such as 10.0.0.0/8 or 2001:db8::/32)")]
pub struct InvalidProxy(pub String);

/// The layer; see the module docs. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SteleContextLayer {
    proxies: Arc<Vec<IpNet>>,
}

impl SteleContextLayer {
    /// A layer that trusts no proxy: the client address is always the TCP peer's.
    pub fn new() -> SteleContextLayer {
        SteleContextLayer::default()
    }

    /// The reverse proxies in front of the application, as addresses (`10.0.0.7`) or networks
    /// (`10.0.0.0/8`, `fd00::/8`). Only requests from these may name the client in
    /// `X-Forwarded-For`. Replaces any given before.
    pub fn trusted_proxies<I, S>(self, proxies: I) -> Result<SteleContextLayer, InvalidProxy>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let proxies = proxies
            .into_iter()
            .map(|p| parse_network(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SteleContextLayer {
            proxies: Arc::new(proxies),
        })
    }

    /// The context of this request, as the layer would insert it.
    pub fn context_of<B>(&self, request: &Request<B>) -> RequestContext {
        self.resolve(request.headers(), request.extensions())
    }

    fn resolve(&self, headers: &HeaderMap, extensions: &Extensions) -> RequestContext {
        let correlation_id = plausible_id(headers, "x-correlation-id").or_else(|| {
            headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .and_then(trace_id)
                .map(str::to_string)
        });
        RequestContext {
            ip: self.client_ip(peer(extensions), headers),
            user_agent: headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.trim().to_string())
                .filter(|ua| !ua.is_empty()),
            request_id: plausible_id(headers, "x-request-id"),
            correlation_id,
        }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|net| net.contains(&ip))
    }

    fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.to_canonical();
        if !self.trusts(peer) {
            return Some(peer);
        }
        let mut nearest = peer;
        for hop in forwarded_for(headers).into_iter().rev() {
            match hop {
                Some(ip) if self.trusts(ip) => nearest = ip,
                Some(ip) => return Some(ip),
                None => return None,
            }
        }
        // Every hop is a trusted proxy (or there is no header): the request began at the
        // left-most of them.
        Some(nearest)
    }
}

impl<S> Layer<S> for SteleContextLayer {
    type Service = SteleContext<S>;

    fn layer(&self, inner: S) -> SteleContext<S> {
        SteleContext {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`SteleContextLayer`] wraps around the application.
#[derive(Debug, Clone)]
pub struct SteleContext<S> {
    inner: S,
    layer: SteleContextLayer,
}

impl<S, B> Service<Request<B>> for SteleContext<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        let context = self.layer.context_of(&request);
        request.extensions_mut().insert(context);
        self.inner.call(request)
    }
}

/// The TCP peer's address, as the server recorded it in the request's extensions.
fn peer(extensions: &Extensions) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(addr.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

fn parse_network(s: &str) -> Result<IpNet, InvalidProxy> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        // `10.1.2.3/8` means the network it is in.
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(|ip| IpNet::from(ip.to_canonical()))
        .map_err(|_| InvalidProxy(s.to_string()))
}

/// Every `X-Forwarded-For` hop, left to right, over all of the header's lines; `None` for a hop
/// that names no address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        hops.extend(
            value
                .split(',')
                .map(str::trim)
                .filter(|hop| !hop.is_empty())
                .map(hop_address),
        );
    }
    hops
}

/// `198.51.100.7`, `198.51.100.7:4711`, `2001:db8::1` or `[2001:db8::1]:4711`; anything else is
/// no address.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim_matches('"');
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (v6, port) = rest.split_once("]:")?;
        return (is_port(port))
            .then(|| v6.parse::<Ipv6Addr>().ok())
            .flatten()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    let (v4, port) = hop.split_once(':')?;
    is_port(port)
        .then(|| v4.parse::<Ipv4Addr>().ok())
        .flatten()
        .map(IpAddr::V4)
}

fn is_port(s: &str) -> bool {
    (1..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// The header's value if it is one plausible id: 1 to 128 letters, digits and `-_.:` (what the
/// server itself takes as a request id). Anything else is dropped, not cleaned up: a value with
/// spaces or quotes is more likely an injection than an id.
fn plausible_id(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?.trim();
    let plausible = (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    plausible.then(|| value.to_string())
}

/// The trace id of a W3C `traceparent` (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`):
/// lowercase hex, neither id all zeros, version not `ff`; a version after `00` may append fields
/// after a `-`. Anything else is malformed and yields nothing.
fn trace_id(traceparent: &str) -> Option<&str> {
    let value = traceparent.trim();
    let head = value.get(..55)?;
    let rest = &value[55..];
    let mut parts = head.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let all_zero = |s: &str| s.bytes().all(|b| b == b'0');
    let valid = parts.next().is_none()
        && hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && !all_zero(trace)
        && hex(parent, 16)
        && !all_zero(parent)
        && hex(flags, 2)
        && if version == "00" {
            rest.is_empty()
        } else {
            rest.is_empty() || rest.starts_with('-')
        };
    valid.then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    fn request(peer: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri("/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(()).unwrap();
        request
            .extensions_mut()
            .insert(peer.parse::<SocketAddr>().unwrap());
        request
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn behind_proxies() -> SteleContextLayer {
        SteleContextLayer::new()
            .trusted_proxies(["10.0.0.0/8", "192.0.2.1"])
            .unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_address_is_the_peers_and_x_forwarded_for_is_ignored() {
        let layer = SteleContextLayer::new();
        let r = request("203.0.113.9:5000", &[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(layer.context_of(&r).ip, ip("203.0.113.9"));
    }

    #[test]
    fn a_spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored() {
        let r = request(
            "203.0.113.9:5000",
            &[("x-forwarded-for", "10.0.0.1, 198.51.100.1")],
        );
        assert_eq!(behind_proxies().context_of(&r).ip, ip("203.0.113.9"));
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        // The client wrote "1.2.3.4" itself; the proxies appended the rest.
        let r = request(
            "10.0.0.5:443",
            &[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.6")],
        );
        assert_eq!(behind_proxies().context_of(&r).ip, ip("198.51.100.7"));
    }

    #[test]
    fn several_header_lines_are_one_list_in_order() {
        let r = request(
            "10.0.0.5:443",
            &[
                ("x-forwarded-for", "1.2.3.4"),
                ("x-forwarded-for", "198.51.100.7:4711, 192.0.2.1"),
            ],
        );
        assert_eq!(behind_proxies().context_of(&r).ip, ip("198.51.100.7"));
    }

    #[test]
    fn a_trusted_proxy_without_a_header_is_the_client_and_all_trusted_hops_end_at_the_left_most() {
        let layer = behind_proxies();
        assert_eq!(
            layer.context_of(&request("10.0.0.5:443", &[])).ip,
            ip("10.0.0.5")
        );
        let r = request(
            "10.0.0.5:443",
            &[("x-forwarded-for", "10.9.9.9, 192.0.2.1")],
        );
        assert_eq!(layer.context_of(&r).ip, ip("10.9.9.9"));
    }

    #[test]
    fn a_hop_that_is_no_address_leaves_the_client_unknown() {
        let r = request(
            "10.0.0.5:443",
            &[("x-forwarded-for", "198.51.100.7, unknown")],
        );
        assert_eq!(behind_proxies().context_of(&r).ip, None);
    }

    #[test]
    fn ipv6_hops_and_ipv4_mapped_peers() {
        let layer = SteleContextLayer::new()
            .trusted_proxies(["fd00::/8", "10.0.0.0/8"])
            .unwrap();
        let r = request(
            "[fd00::5]:443",
            &[("x-forwarded-for", "[2001:db8::7]:4711, fd00::9")],
        );
        assert_eq!(layer.context_of(&r).ip, ip("2001:db8::7"));
        // A dual-stack listener shows an IPv4 proxy as ::ffff:10.0.0.5.
        let r = request(
            "[::ffff:10.0.0.5]:443",
            &[("x-forwarded-for", "198.51.100.7")],
        );
        assert_eq!(layer.context_of(&r).ip, ip("198.51.100.7"));
    }

    #[test]
    fn no_peer_address_means_no_client_address() {
        let r = Request::builder()
            .header("x-forwarded-for", "198.51.100.7")
            .body(())
            .unwrap();
        assert_eq!(behind_proxies().context_of(&r).ip, None);
    }

    #[test]
    fn trusted_proxies_must_be_addresses_or_networks() {
        let err = SteleContextLayer::new()
            .trusted_proxies(["10.0.0.0/8", "proxy.internal"])
            .unwrap_err();
        assert_eq!(err, InvalidProxy("proxy.internal".into()));
        assert!(
            SteleContextLayer::new()
                .trusted_proxies(["10.0.0.0/33"])
                .is_err()
        );
    }

    #[test]
    fn request_and_correlation_ids_come_from_their_headers() {
        let r = request(
            "203.0.113.9:5000",
            &[
                ("user-agent", "curl/8.5.0"),
                ("x-request-id", "req-42"),
                ("x-correlation-id", "order:7"),
                ("traceparent", TRACE),
            ],
        );
        let context = SteleContextLayer::new().context_of(&r);
        assert_eq!(context.user_agent.as_deref(), Some("curl/8.5.0"));
        assert_eq!(context.request_id.as_deref(), Some("req-42"));
        assert_eq!(context.correlation_id.as_deref(), Some("order:7"));
    }

    #[test]
    fn without_a_correlation_id_the_trace_id_of_traceparent_is_used() {
        let r = request("203.0.113.9:5000", &[("traceparent", TRACE)]);
        assert_eq!(
            SteleContextLayer::new()
                .context_of(&r)
                .correlation_id
                .as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
    }

    #[test]
    fn a_malformed_traceparent_is_ignored() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
            "00-0af7651916cd43dd8448eb211c80319-cb7ad6b7169203331-01",
            "0-00af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c8031zz-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
        ] {
            let r = request("203.0.113.9:5000", &[("traceparent", bad)]);
            assert_eq!(
                SteleContextLayer::new().context_of(&r).correlation_id,
                None,
                "{bad:?}"
            );
        }
        // A later version may add fields after its four.
        assert_eq!(
            trace_id("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-next"),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
    }

    #[test]
    fn implausible_ids_are_dropped() {
        let long = "a".repeat(129);
        for bad in ["", "two words", "<script>", "a\"b", long.as_str()] {
            let r = request(
                "203.0.113.9:5000",
                &[("x-request-id", bad), ("x-correlation-id", bad)],
            );
            let context = SteleContextLayer::new().context_of(&r);
            assert_eq!(context.request_id, None, "{bad:?}");
            assert_eq!(context.correlation_id, None, "{bad:?}");
        }
    }
}
