//! An IPAM policy that always hands out the lowest free address, instead of
//! host-local's round-robin. It reads the same config and the same leases, so
//! it can replace host-local on a live node (see the daemon's hot swap).

use std::collections::HashSet;
use std::net::IpAddr;
use wasmcni_sdk::ipam_config::RangeSet;
use wasmcni_sdk::range_ipam::{Policy, RangeIpam};

struct LowestFree;

impl Policy for LowestFree {
    fn pick(set: &RangeSet, _last_reserved: Option<IpAddr>, taken: &HashSet<IpAddr>) -> Option<IpAddr> {
        set.iter().find_map(|range| range.first_free(range.start, taken))
    }
}

type Plugin = RangeIpam<LowestFree>;
wasmcni_sdk::export_ipam!(Plugin);

#[cfg(test)]
mod tests {
    use super::Plugin;
    use wasmcni_sdk::ipam::Handler;
    use wasmcni_sdk::testing::{self, invocation};

    const CONF: &str = r#"{"ipam": {"subnet": "10.9.0.0/24"}}"#;

    #[test]
    fn a_released_low_address_is_handed_out_again() {
        testing::reset();
        let address = |id: &str| ipnet::IpNet::try_from(Plugin::add(invocation(id, CONF)).unwrap().ips[0].address);
        let first = address("a").unwrap();
        Plugin::add(invocation("b", CONF)).unwrap();
        Plugin::del(invocation("a", CONF)).unwrap();
        // Round-robin would move on to .4; this policy goes back to .2.
        assert_eq!(address("c").unwrap(), first);
    }
}
