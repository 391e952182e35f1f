//! Which address a request comes from, when proxies stand in front of the service.
//!
//! Each proxy appends the address it received the request from to `X-Forwarded-For`, so the
//! right end of the list was written by proxies we run and everything left of it by whoever
//! sent the request. A client can send its own `X-Forwarded-For` lines, forged at will; only the
//! entries our proxies appended are trustworthy. So every header line is read, in order, as one
//! list, and the client address is taken counting from the right: `proxy_hops` entries in
//! (1 = the address our one proxy saw), or, with `trusted_proxies`, the first entry from the
//! right that is not one of our proxies. Never the left end.

use std::net::IpAddr;

use ipnet::IpNet;

/// How far to trust `X-Forwarded-For` (from `[server]` settings).
#[derive(Debug, Clone, Copy)]
pub struct ProxyTrust<'a> {
    pub enabled: bool,
    pub hops: usize,
    pub trusted: &'a [IpNet],
}

/// The client address: from the forwarded chain as `trust` says, else the TCP peer.
pub fn client_ip<'h>(
    trust: ProxyTrust<'_>,
    forwarded_lines: impl Iterator<Item = &'h str>,
    peer: Option<IpAddr>,
) -> Option<IpAddr> {
    if !trust.enabled {
        return peer;
    }
    let chain: Vec<&str> = forwarded_lines
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    let from_chain = if trust.trusted.is_empty() {
        // Fewer entries than hops: the proxies did not append what they should; trust nothing.
        chain
            .len()
            .checked_sub(trust.hops.max(1))
            .and_then(|i| parse(chain[i]))
    } else {
        let mut hops = chain.iter().rev().map(|entry| parse(entry));
        // An unparseable entry on the way stops the walk: nothing left of it can be trusted.
        hops.find(|ip| ip.is_none_or(|ip| !trust.trusted.iter().any(|n| n.contains(&ip))))
            .flatten()
    };
    from_chain.or(peer)
}

fn parse(entry: &str) -> Option<IpAddr> {
    // Some proxies write "ip:port" or "[v6]:port".
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::limit_key;

    const PEER: &str = "10.0.0.2";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn resolve(hops: usize, trusted: &[&str], lines: &[&str]) -> IpAddr {
        let trusted: Vec<IpNet> = trusted.iter().map(|n| n.parse().unwrap()).collect();
        let trust = ProxyTrust {
            enabled: true,
            hops,
            trusted: &trusted,
        };
        client_ip(trust, lines.iter().copied(), Some(ip(PEER))).unwrap()
    }

    #[test]
    fn without_trust_the_peer_is_the_client() {
        let trust = ProxyTrust {
            enabled: false,
            hops: 1,
            trusted: &[],
        };
        let got = client_ip(trust, ["203.0.113.9"].into_iter(), Some(ip(PEER)));
        assert_eq!(got, Some(ip(PEER)));
    }

    #[test]
    fn a_forged_line_before_the_proxys_does_not_move_the_client() {
        // The client sent its own line; the proxy appended the real address as another line.
        let lines = ["6.6.6.6", "1.2.3.4, 203.0.113.9"];
        assert_eq!(resolve(1, &[], &lines), ip("203.0.113.9"));
        assert_eq!(
            resolve(1, &[], &["6.6.6.6, 7.7.7.7", "203.0.113.9"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn hops_count_from_the_right() {
        let lines = ["6.6.6.6, 198.51.100.7, 172.16.0.9"];
        assert_eq!(resolve(2, &[], &lines), ip("198.51.100.7"));
        // A chain shorter than the configured hops trusts nothing in it.
        assert_eq!(resolve(3, &[], &["198.51.100.7, 172.16.0.9"]), ip(PEER));
    }

    #[test]
    fn trusted_networks_are_skipped_from_the_right() {
        let lines = ["6.6.6.6, 198.51.100.7", "172.16.0.9, 10.1.2.3"];
        let trusted = ["10.0.0.0/8", "172.16.0.0/12"];
        assert_eq!(resolve(1, &trusted, &lines), ip("198.51.100.7"));
        // All of it our proxies: nothing in it names the client, so the peer counts.
        assert_eq!(resolve(1, &trusted, &["172.16.0.9, 10.1.2.3"]), ip(PEER));
    }

    #[test]
    fn ports_and_garbage_are_handled() {
        assert_eq!(resolve(1, &[], &["[2001:db8::1]:443"]), ip("2001:db8::1"));
        assert_eq!(resolve(1, &[], &["1.2.3.4:5678"]), ip("1.2.3.4"));
        assert_eq!(resolve(1, &[], &["not an address"]), ip(PEER));
    }

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa::1")),
            limit_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_eq!(limit_key(ip("203.0.113.9")), ip("203.0.113.9"));
        assert_eq!(limit_key(ip("::ffff:203.0.113.9")), ip("203.0.113.9"));
    }
}
