//! The WIT's addresses, prefixes and MACs as `IpAddr`, `IpNet` and [`Mac`]
//! (both ways), route builders, and the address arithmetic on `IpAddr` that
//! the standard library lacks.

use crate::Error;
use crate::bindings::wasmcni::plugin::types::{self, AddressFamily, IpAddress, IpPrefix, Route};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use wasmcni_cni::Mac;

impl From<IpAddress> for IpAddr {
    fn from(a: IpAddress) -> IpAddr {
        match a {
            IpAddress::V4((a, b, c, d)) => Ipv4Addr::new(a, b, c, d).into(),
            IpAddress::V6((a, b, c, d, e, f, g, h)) => Ipv6Addr::new(a, b, c, d, e, f, g, h).into(),
        }
    }
}

impl From<IpAddr> for IpAddress {
    fn from(a: IpAddr) -> IpAddress {
        match a {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                IpAddress::V4((a, b, c, d))
            }
            IpAddr::V6(v6) => {
                let [a, b, c, d, e, f, g, h] = v6.segments();
                IpAddress::V6((a, b, c, d, e, f, g, h))
            }
        }
    }
}

impl From<IpNet> for IpPrefix {
    fn from(n: IpNet) -> IpPrefix {
        IpPrefix { address: n.addr().into(), prefix_len: n.prefix_len() }
    }
}

impl TryFrom<IpPrefix> for IpNet {
    type Error = Error;

    /// Code 7 for a prefix length beyond the family's (the host refuses those too).
    fn try_from(p: IpPrefix) -> Result<IpNet, Error> {
        let addr = IpAddr::from(p.address);
        IpNet::new(addr, p.prefix_len)
            .map_err(|_| Error::config(format!("prefix length {} is too long for {addr}", p.prefix_len)))
    }
}

/// A MAC in the WIT's form.
pub fn to_wit_mac(m: Mac) -> types::Mac {
    let [a, b, c, d, e, f] = m.0;
    (a, b, c, d, e, f)
}

/// A MAC from the WIT's form.
pub fn mac(m: types::Mac) -> Mac {
    let (a, b, c, d, e, f) = m;
    Mac([a, b, c, d, e, f])
}

/// The family of `ip`.
pub fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv6() { AddressFamily::Ipv6 } else { AddressFamily::Ipv4 }
}

/// A route to `dst` on the link, with nothing else set.
pub fn route_to(dst: IpNet) -> Route {
    Route { dst: dst.into(), gw: None, mtu: None, advmss: None, priority: None, table: None, scope: None }
}

/// A route to `dst` through `gw`.
pub fn route_via(dst: IpNet, gw: IpAddr) -> Route {
    Route { gw: Some(gw.into()), ..route_to(dst) }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(like: IpAddr, n: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

fn max_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(_) => u32::MAX as u128,
        IpAddr::V6(_) => u128::MAX,
    }
}

/// The next address, or `None` past the end of the family's space.
pub fn next(ip: IpAddr) -> Option<IpAddr> {
    let n = to_u128(ip);
    (n < max_of(ip)).then(|| from_u128(ip, n + 1))
}

/// The previous address, or `None` before the start of the family's space.
pub fn prev(ip: IpAddr) -> Option<IpAddr> {
    let n = to_u128(ip);
    n.checked_sub(1).map(|p| from_u128(ip, p))
}

/// Number of addresses in `[start, end]` (saturating at `u128::MAX`).
pub fn span(start: IpAddr, end: IpAddr) -> u128 {
    to_u128(end).saturating_sub(to_u128(start)).saturating_add(1)
}

/// Orders two addresses of one family.
pub fn cmp(a: IpAddr, b: IpAddr) -> std::cmp::Ordering {
    to_u128(a).cmp(&to_u128(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn next_and_prev_cross_octets_and_stop_at_the_ends() {
        assert_eq!(next(ip("10.0.0.255")), Some(ip("10.0.1.0")));
        assert_eq!(prev(ip("10.0.1.0")), Some(ip("10.0.0.255")));
        assert_eq!(next(ip("255.255.255.255")), None);
        assert_eq!(prev(ip("0.0.0.0")), None);
        assert_eq!(next(ip("fd00::ffff")), Some(ip("fd00::1:0")));
    }

    #[test]
    fn wit_addresses_prefixes_and_macs_round_trip() {
        for s in ["10.1.2.3", "fd00::1", "::", "255.255.255.255"] {
            assert_eq!(IpAddr::from(IpAddress::from(ip(s))), ip(s));
        }
        assert!(matches!(IpAddress::from(ip("10.0.0.1")), IpAddress::V4((10, 0, 0, 1))));
        for s in ["10.22.0.5/16", "fd00::/64", "0.0.0.0/0"] {
            let n: IpNet = s.parse().unwrap();
            assert_eq!(IpNet::try_from(IpPrefix::from(n)).unwrap(), n);
        }
        let too_long = IpPrefix { address: ip("10.0.0.1").into(), prefix_len: 33 };
        assert_eq!(IpNet::try_from(too_long).unwrap_err().code, crate::Code::InvalidConfig);
        let m: Mac = "0a:1b:2c:3d:4e:5f".parse().unwrap();
        assert_eq!(mac(to_wit_mac(m)), m);
        assert!(matches!(family(ip("fd00::1")), AddressFamily::Ipv6));
    }

    #[test]
    fn span_counts_inclusive() {
        assert_eq!(span(ip("10.0.0.2"), ip("10.0.0.254")), 253);
        assert_eq!(span(ip("::"), ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), u128::MAX);
    }
}
