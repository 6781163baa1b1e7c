//! CHECK: the container's interface, addresses and routes match prevResult,
//! and its host end is still on the bridge.

use crate::config::BridgeConf;
use wasmcni_sdk::cni::delegate;
use wasmcni_sdk::cni::netlink::{self, Side};
use wasmcni_sdk::cni::types::Invocation;
use wasmcni_sdk::{Code, Error};

pub fn check(inv: &Invocation, conf: &BridgeConf) -> Result<(), Error> {
    let prev = inv.prev_result.as_ref().ok_or_else(|| Error::config("CHECK needs prevResult"))?;
    if inv.netns.is_none() {
        return Err(Error::new(Code::InvalidEnv, "CNI_NETNS is required for CHECK"));
    }
    if conf.has_ipam() {
        delegate::ipam_check()?;
    }
    let (index, expected) = prev
        .interfaces
        .iter()
        .enumerate()
        .find(|(_, i)| i.name == inv.ifname && !i.sandbox.is_empty())
        .ok_or_else(|| Error::plugin(format!("prevResult has no interface {} in a sandbox", inv.ifname)))?;
    let link = netlink::get_link(Side::Container, &inv.ifname)?
        .ok_or_else(|| Error::plugin(format!("interface {} is gone from the container", inv.ifname)))?;
    if !expected.mac.is_empty() && !expected.mac.eq_ignore_ascii_case(&link.mac) {
        return Err(Error::plugin(format!("interface {} has MAC {}, expected {}", inv.ifname, link.mac, expected.mac)));
    }
    let addrs = netlink::list_addresses(Side::Container, &inv.ifname)?;
    for ip in prev.ips.iter().filter(|ip| ip.iface == Some(index as u32)) {
        if !addrs.contains(&ip.address) {
            return Err(Error::plugin(format!("address {} is missing on {}", ip.address, inv.ifname)));
        }
    }
    let routes = netlink::list_routes(Side::Container, None)?;
    for want in &prev.routes {
        let found = routes.iter().any(|r| r.route.dst == want.dst && (want.gw.is_none() || r.route.gw == want.gw));
        if !found {
            return Err(Error::plugin(format!("route to {} is missing in the container", want.dst)));
        }
    }
    let peer = netlink::veth_peer(&inv.ifname)?
        .ok_or_else(|| Error::plugin(format!("the host end of {} is gone", inv.ifname)))?;
    if peer.master.as_deref() != Some(conf.bridge.as_str()) {
        return Err(Error::plugin(format!("{} is not attached to bridge {}", peer.name, conf.bridge)));
    }
    Ok(())
}
