//! Address arithmetic on `IpAddr` that the standard library lacks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
    fn span_counts_inclusive() {
        assert_eq!(span(ip("10.0.0.2"), ip("10.0.0.254")), 253);
        assert_eq!(span(ip("::"), ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), u128::MAX);
    }
}
