//! vxlan, as flannel's backend of that name: every other node's pod subnet is
//! reached through this node's VTEP. For each peer, a permanent neighbour
//! entry (the peer subnet's first address is at the peer's VTEP MAC), an FDB
//! entry (that MAC is behind the peer's underlay address) and a route (the
//! peer's subnet via that first address, onlink on the VTEP), so the kernel
//! encapsulates without flooding or asking. With `directRouting`, a peer on
//! a network of the underlay gets a plain route via its address instead
//! (flannel's DirectRouting): no encapsulation where none is needed. The
//! daemon owns the VTEP and applies what this computes.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;
use wasmcni_sdk::Error;
use wasmcni_sdk::invocation::parse_config;
use wasmcni_sdk::ip::route_via;
use wasmcni_sdk::overlay::types::CniError;
use wasmcni_sdk::overlay::{
    Forward, Neighbor, Overlay, OverlayEntries, OverlayLease, OverlayRoute, Underlay, Via, Vtep,
};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Config {
    /// Peers on a network of the underlay get a direct route (no VXLAN).
    #[serde(default)]
    direct_routing: bool,
}

fn compute(
    config: &str,
    local: &OverlayLease,
    peers: &[OverlayLease],
    underlay: &Underlay,
) -> Result<OverlayEntries, Error> {
    let config: Config = if config.trim().is_empty() { Config::default() } else { parse_config(config)? };
    let connected: Vec<IpNet> = underlay.addresses.iter().map(|a| IpNet::try_from(*a)).collect::<Result<_, _>>()?;
    let local_ip = IpAddr::from(local.ip);
    let local_subnet = IpNet::try_from(local.subnet)?;
    let mut peers: Vec<(IpNet, &OverlayLease)> = peers
        .iter()
        .filter(|p| IpAddr::from(p.ip) != local_ip)
        .map(|p| Ok((IpNet::try_from(p.subnet)?.trunc(), p)))
        .collect::<Result<_, Error>>()?;
    peers.sort_by_key(|(subnet, _)| *subnet);
    let mut out = OverlayEntries { routes: Vec::new(), neighbors: Vec::new(), fdb: Vec::new() };
    for (subnet, peer) in peers {
        let ip = IpAddr::from(peer.ip);
        if subnet.contains(&local_subnet.network()) || local_subnet.contains(&subnet.network()) {
            return Err(Error::plugin(format!("node {ip} claims {subnet}, which overlaps this node's {local_subnet}")));
        }
        if config.direct_routing && connected.iter().any(|net| net.contains(&ip)) {
            out.routes.push(OverlayRoute { route: route_via(subnet, ip), dev: Via::Underlay, onlink: false });
            continue;
        }
        let Some(mac) = peer.vtep_mac else {
            return Err(Error::plugin(format!(
                "node {ip} (subnet {subnet}) has no VTEP MAC in its lease, so it is not on the vxlan backend"
            )));
        };
        // The peer's VTEP answers for its subnet's first address (flannel's layout).
        let gateway = subnet.network();
        out.neighbors.push(Neighbor { ip: gateway.into(), mac });
        out.fdb.push(Forward { mac, dst: peer.ip });
        out.routes.push(OverlayRoute { route: route_via(subnet, gateway), dev: Via::Vtep, onlink: true });
    }
    Ok(out)
}

struct Vxlan;

impl Overlay for Vxlan {
    fn entries(
        config: String,
        local: OverlayLease,
        peers: Vec<OverlayLease>,
        underlay: Underlay,
        _vtep: Vtep,
    ) -> Result<OverlayEntries, CniError> {
        compute(&config, &local, &peers, &underlay).map_err(Into::into)
    }
}

wasmcni_sdk::export_overlay!(Vxlan);

#[cfg(test)]
mod tests;
