//! CHECK: the container's interface, addresses and routes match prevResult,
//! and its host end is still on the bridge.

use crate::config::BridgeConf;
use ipnet::IpNet;
use std::net::IpAddr;
use wasmcni_sdk::cni::types::Invocation;
use wasmcni_sdk::cni::{addresses, delegate, links, routes};
use wasmcni_sdk::ip::mac;
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
        .find(|(_, i)| i.name == inv.ifname && i.sandbox.is_some())
        .ok_or_else(|| Error::plugin(format!("prevResult has no interface {} in a sandbox", inv.ifname)))?;
    let link = links::open_container_link(&inv.ifname)?
        .ok_or_else(|| Error::plugin(format!("interface {} is gone from the container", inv.ifname)))?;
    let info = link.info()?;
    if let Some(want) = expected.mac
        && info.mac != Some(want)
    {
        let have = info.mac.map_or("none".into(), |m| mac(m).to_string());
        return Err(Error::plugin(format!("interface {} has MAC {have}, expected {}", inv.ifname, mac(want))));
    }
    let addrs: Vec<IpNet> =
        addresses::list_addresses(&link, None)?.into_iter().map(IpNet::try_from).collect::<Result<_, _>>()?;
    for ip in prev.ips.iter().filter(|ip| ip.iface == Some(index as u32)) {
        let want = IpNet::try_from(ip.address)?;
        if !addrs.contains(&want) {
            return Err(Error::plugin(format!("address {want} is missing on {}", inv.ifname)));
        }
    }
    let routes = routes::list_container_routes(None)?;
    for want in &prev.routes {
        let dst = IpNet::try_from(want.dst)?;
        let gw = want.gw.map(IpAddr::from);
        let found = routes.iter().any(|r| {
            IpNet::try_from(r.route.dst).is_ok_and(|d| d == dst) && (gw.is_none() || r.route.gw.map(IpAddr::from) == gw)
        });
        if !found {
            return Err(Error::plugin(format!("route to {dst} is missing in the container")));
        }
    }
    let peer =
        links::veth_peer(&link)?.ok_or_else(|| Error::plugin(format!("the host end of {} is gone", inv.ifname)))?;
    let peer = peer.info()?;
    if peer.master.as_deref() != Some(conf.bridge.as_str()) {
        return Err(Error::plugin(format!("{} is not attached to bridge {}", peer.name, conf.bridge)));
    }
    Ok(())
}
