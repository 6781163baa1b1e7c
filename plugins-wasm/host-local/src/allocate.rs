//! Round-robin search for a free address in a range set.

use std::collections::HashSet;
use std::net::IpAddr;
use wasmcni_sdk::ip;
use wasmcni_sdk::ipam_config::RangeSet;

/// The first free address after `last` (or from the start of the set when
/// `last` is absent or outside it), wrapping around once. The gateway and
/// addresses in `taken` are skipped.
pub fn next_free(set: &RangeSet, last: Option<IpAddr>, taken: &HashSet<IpAddr>) -> Option<IpAddr> {
    let (start_range, start_ip) = match last.and_then(|l| set.iter().position(|r| r.contains(l))) {
        Some(i) => (i, last.and_then(ip::next)),
        None => (0, None),
    };
    let count = set.len();
    // Visit the ranges cyclically beginning at the one holding `last`; the
    // first range is revisited from its start so addresses before `last` count.
    (0..=count).find_map(|step| {
        let range = &set[(start_range + step) % count];
        let from = if step == 0 { start_ip.unwrap_or(range.start) } else { range.start };
        range.first_free(from, taken)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmcni_sdk::ipam_config::{Range, RangeConfig};

    fn set(specs: &[(&str, &str, &str)]) -> RangeSet {
        specs
            .iter()
            .map(|(subnet, start, end)| {
                Range::canonical(&RangeConfig {
                    subnet: subnet.to_string(),
                    range_start: Some(start.parse().unwrap()),
                    range_end: Some(end.parse().unwrap()),
                    gateway: None,
                })
                .unwrap()
            })
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn starts_after_last_and_skips_gateway_and_taken() {
        let s = set(&[("10.0.0.0/24", "10.0.0.1", "10.0.0.5")]);
        let none = HashSet::new();
        assert_eq!(next_free(&s, None, &none), Some(ip("10.0.0.2")));
        assert_eq!(next_free(&s, Some(ip("10.0.0.3")), &none), Some(ip("10.0.0.4")));
        let taken: HashSet<IpAddr> = [ip("10.0.0.4"), ip("10.0.0.5")].into();
        assert_eq!(next_free(&s, Some(ip("10.0.0.3")), &taken), Some(ip("10.0.0.2")));
    }

    #[test]
    fn wraps_across_ranges_and_reports_exhaustion() {
        let s = set(&[("10.0.0.0/24", "10.0.0.10", "10.0.0.11"), ("10.0.1.0/24", "10.0.1.10", "10.0.1.10")]);
        let none = HashSet::new();
        assert_eq!(next_free(&s, Some(ip("10.0.0.11")), &none), Some(ip("10.0.1.10")));
        assert_eq!(next_free(&s, Some(ip("10.0.1.10")), &none), Some(ip("10.0.0.10")));
        let all: HashSet<IpAddr> = [ip("10.0.0.10"), ip("10.0.0.11"), ip("10.0.1.10")].into();
        assert_eq!(next_free(&s, Some(ip("10.0.0.10")), &all), None);
    }
}
