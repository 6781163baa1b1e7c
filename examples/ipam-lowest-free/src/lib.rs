//! An IPAM policy that always hands out the lowest free address, instead of
//! host-local's round-robin. It reads the same config and the same leases, so
//! it can replace host-local on a live node (see the daemon's hot swap).

use std::collections::HashSet;
use std::net::IpAddr;
use wasmcni_sdk::ip;
use wasmcni_sdk::ipam_config::RangeSet;
use wasmcni_sdk::range_ipam::{Policy, RangeIpam};

struct LowestFree;

impl Policy for LowestFree {
    fn pick(set: &RangeSet, _last_reserved: Option<IpAddr>, taken: &HashSet<IpAddr>) -> Option<IpAddr> {
        set.iter().find_map(|range| {
            let mut cursor = range.start;
            while range.contains(cursor) {
                if cursor != range.gateway && !taken.contains(&cursor) {
                    return Some(cursor);
                }
                cursor = ip::next(cursor)?;
            }
            None
        })
    }
}

type Plugin = RangeIpam<LowestFree>;
wasmcni_sdk::export_ipam!(Plugin);
