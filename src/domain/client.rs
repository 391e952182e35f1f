//! Who is calling: recorded on new sessions and audit events, and the key per-client limits
//! count under.

use std::net::{IpAddr, Ipv6Addr};

#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
}

impl ClientInfo {
    /// The address per-client limits count under (IPv6: its /64), if there is one.
    pub fn limit_key(&self) -> Option<IpAddr> {
        self.ip_address
            .as_deref()
            .and_then(|ip| ip.parse().ok())
            .map(limit_key)
    }

    /// [`ClientInfo::limit_key`] as text for a database key (`unknown` without an address).
    pub fn limit_key_text(&self) -> String {
        self.limit_key()
            .map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
    }
}

/// The key per-address limits count under: an IPv4 address, or an IPv6 address's /64 (one
/// subscriber usually holds a whole /64, so per-address keys would be free to rotate).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}
