//! The SSRF policy: which addresses a delivery may connect to.
//!
//! Checked on the addresses actually connected to — the resolver hands the HTTP client only
//! allowed addresses — so a host name that resolves to a blocked address is refused even if
//! its DNS answer changes between checks (DNS rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Debug, Clone, Default)]
pub struct NetworkPolicy {
    /// Blocked networks that are allowed all the same.
    allow: Vec<IpNet>,
    /// When not empty, the only networks that may be reached.
    restrict: Vec<IpNet>,
}

/// The address is refused by the SSRF policy.
#[derive(Debug, thiserror::Error)]
#[error("{0} is in a blocked network")]
pub struct Blocked(pub IpAddr);

/// The host name did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("{name} did not resolve: {source}")]
pub struct Unresolved {
    name: String,
    source: std::io::Error,
}

impl NetworkPolicy {
    pub fn new(allow: Vec<IpNet>, restrict: Vec<IpNet>) -> Self {
        Self { allow, restrict }
    }

    /// Whether `ip` is outside `delivery.restrict_to_networks` (when that is set).
    pub fn outside_restriction(&self, ip: IpAddr) -> bool {
        !self.restrict.is_empty() && !self.restrict.iter().any(|net| net.contains(&ip))
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        if self.outside_restriction(ip) || (is_blocked(ip) && !self.allow.iter().any(|net| net.contains(&ip))) {
            return Err(Blocked(ip));
        }
        Ok(())
    }
}

/// Loopback, private, link-local (incl. cloud metadata), CGNAT, multicast, unspecified,
/// broadcast and reserved addresses, and the IPv6 forms that embed such an IPv4 address.
fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_v4(v4),
        IpAddr::V6(v6) => is_blocked_v6(v6),
    }
}

fn is_blocked_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

fn is_blocked_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_blocked_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
        || (seg[0] == 0x64 && seg[1] == 0xff9b && is_blocked_v4(embedded(seg[6], seg[7]))) // NAT64
        || (seg[0] == 0x2002 && is_blocked_v4(embedded(seg[1], seg[2]))) // 6to4
        || (seg[..6] == [0; 6] && is_blocked_v4(embedded(seg[6], seg[7]))) // IPv4-compatible
}

/// A warning when `url`'s host is, or resolves to, an address the policy blocks (for the
/// webhook API to say so at once, rather than at the first delivery).
pub async fn warning_for(policy: &NetworkPolicy, url: &url::Url) -> Option<String> {
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses: Vec<IpAddr> = match url.host()? {
        url::Host::Ipv4(ip) => vec![ip.into()],
        url::Host::Ipv6(ip) => vec![ip.into()],
        url::Host::Domain(name) => {
            let lookup =
                tokio::time::timeout(std::time::Duration::from_secs(1), tokio::net::lookup_host((name, port))).await;
            match lookup {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                _ => return None, // unknown yet: the delivery will say
            }
        }
    };
    let blocked = addresses.into_iter().find(|ip| policy.check(*ip).is_err())?;
    Some(if policy.outside_restriction(blocked) {
        format!("the URL's host is {blocked}, outside delivery.restrict_to_networks: deliveries will fail")
    } else {
        format!(
            "the URL's host is {blocked}, an address the SSRF policy blocks (loopback, private, link-local, …): deliveries will fail unless delivery.allow_networks includes it"
        )
    })
}

/// A DNS resolver for the HTTP client that drops blocked addresses.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: Arc<NetworkPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|source| Unresolved {
                    name: host.clone(),
                    source,
                })?
                .collect();
            let mut first_blocked = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match policy.check(addr.ip()) {
                    Ok(()) => true,
                    Err(blocked) => {
                        first_blocked.get_or_insert(blocked);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), first_blocked) {
                (true, Some(blocked)) => Err(Box::new(blocked) as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_every_internal_range_and_their_ipv6_forms() {
        let policy = NetworkPolicy::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            assert!(policy.check(ip.parse().unwrap()).is_err(), "{ip} should be blocked");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1", "64:ff9b::5db8:d822"] {
            assert!(policy.check(ip.parse().unwrap()).is_ok(), "{ip} should be allowed");
        }
    }

    #[test]
    fn the_allow_list_opens_a_blocked_network() {
        let policy = NetworkPolicy::new(vec!["127.0.0.0/8".parse().unwrap()], vec![]);
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("10.0.0.1".parse().unwrap()).is_err());
    }

    #[test]
    fn a_restriction_closes_everything_outside_it() {
        let loopback: IpNet = "127.0.0.0/8".parse().unwrap();
        let policy = NetworkPolicy::new(vec![loopback], vec![loopback]);
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("93.184.216.34".parse().unwrap()).is_err());
    }
}
