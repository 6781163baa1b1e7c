//! host-local IPAM: hands out addresses from the configured ranges,
//! round-robin after the last reserved one, like the reference host-local,
//! with leases kept by the host in the reference on-disk layout.

mod allocate;

use std::collections::HashSet;
use std::net::IpAddr;
use wasmcni_sdk::ipam_config::RangeSet;
use wasmcni_sdk::range_ipam::{Policy, RangeIpam};

struct RoundRobin;

impl Policy for RoundRobin {
    fn pick(set: &RangeSet, last_reserved: Option<IpAddr>, taken: &HashSet<IpAddr>) -> Option<IpAddr> {
        allocate::next_free(set, last_reserved, taken)
    }
}

type HostLocal = RangeIpam<RoundRobin>;
wasmcni_sdk::export_ipam!(HostLocal);

#[cfg(test)]
mod tests {
    use super::HostLocal;
    use wasmcni_sdk::ipam::Handler;
    use wasmcni_sdk::testing::{self, cidr, invocation};

    const CONF: &str = r#"{"ipam": {"subnet": "10.9.0.0/24"}}"#;

    #[test]
    fn allocation_goes_round_robin_after_a_release() {
        testing::reset();
        assert_eq!(cidr(HostLocal::add(invocation("a", CONF)).unwrap().ips[0].address), "10.9.0.2/24");
        assert_eq!(cidr(HostLocal::add(invocation("b", CONF)).unwrap().ips[0].address), "10.9.0.3/24");
        HostLocal::del(invocation("a", CONF)).unwrap();
        assert_eq!(cidr(HostLocal::add(invocation("c", CONF)).unwrap().ips[0].address), "10.9.0.4/24");
    }
}
