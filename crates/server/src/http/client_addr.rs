//! The client's address. Behind a reverse proxy every connection comes from the proxy, which
//! names the client in `X-Forwarded-For`; the header is believed only from the peers of
//! `trusted_proxies`, and only as far as the trusted hops go: entries are read from the
//! right (the nearest hop first) and the first one that is not a trusted proxy is the
//! client. Whatever a client writes itself sits further left and is never reached.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&canonical(ip)));
    if !is_trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(str::trim)
        .collect();
    let mut nearest = peer;
    for entry in entries.iter().rev() {
        // Unreadable: the hop that wrote it is the client as far as anyone can tell.
        let Some(ip) = parse(entry) else {
            return nearest;
        };
        if !is_trusted(ip) {
            return ip;
        }
        nearest = ip;
    }
    nearest
}

/// `192.0.2.1`, `2001:db8::1`, and the forms with a port some proxies write.
fn parse(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// An IPv4 peer on a dual-stack listener shows as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&["203.0.113.9"]);
        assert_eq!(
            client_ip(ip("198.51.100.7"), &h, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(client_ip(ip("198.51.100.7"), &h, &[]), ip("198.51.100.7"));
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right() {
        let trusted: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().unwrap(),
            "127.0.0.1/32".parse().unwrap(),
        ];
        // The client forged the first entry; the proxies appended the real hops.
        let h = headers(&["1.2.3.4, 203.0.113.9", "10.0.0.5"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.9"));
        assert_eq!(
            client_ip(
                ip("::ffff:127.0.0.1"),
                &headers(&["[2001:db8::1]:4711"]),
                &trusted
            ),
            ip("2001:db8::1")
        );
        // No header, or nothing but trusted hops: the nearest of them.
        assert_eq!(
            client_ip(ip("10.1.1.1"), &HeaderMap::new(), &trusted),
            ip("10.1.1.1")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers(&["10.0.0.5"]), &trusted),
            ip("10.0.0.5")
        );
        // Garbage stops the walk at the last hop that could be read.
        assert_eq!(
            client_ip(
                ip("127.0.0.1"),
                &headers(&["203.0.113.9, nonsense"]),
                &trusted
            ),
            ip("127.0.0.1")
        );
    }
}
