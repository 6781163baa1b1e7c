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
