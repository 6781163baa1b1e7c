//! The node-overlay export (1.1): leases in, and out the routes, neighbour
//! and forwarding entries an overlay plugin asks for, typed for the daemon's
//! applier (which decides what of it to install).

use super::convert::{mac, route, to_mac};
use crate::bindings::exports::wasmcni::plugin::node_overlay as w;
use ipnet::IpNet;
use std::net::IpAddr;
use wasmcni_cni::Mac;
use wasmcni_cni::error::CniError;
use wasmcni_cni::result::Route;
use wasmcni_kernel::overlay::{Fdb, Neighbor};

/// A route an overlay plugin asks for, with the link it leaves through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayRoute {
    pub route: Route,
    /// Through the VTEP (else the underlay).
    pub via_vtep: bool,
    pub onlink: bool,
}

/// Everything an overlay plugin asks for, in the host's types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries {
    pub routes: Vec<OverlayRoute>,
    pub neighbors: Vec<Neighbor>,
    pub fdb: Vec<Fdb>,
}

pub fn lease(ip: IpAddr, subnet: IpNet, vtep_mac: Option<Mac>) -> w::OverlayLease {
    w::OverlayLease { ip: ip.into(), subnet: subnet.into(), vtep_mac: vtep_mac.map(to_mac) }
}

pub fn vtep(name: &str, vni: u32, mac: Mac, mtu: u32) -> w::Vtep {
    w::Vtep { name: name.to_owned(), vni, mac: to_mac(mac), mtu }
}

pub fn underlay(name: &str, addresses: &[IpNet]) -> w::Underlay {
    w::Underlay { name: name.to_owned(), addresses: addresses.iter().map(|a| (*a).into()).collect() }
}

/// What the plugin returned; a prefix out of range is a bad return.
pub fn entries(e: w::OverlayEntries) -> Result<Entries, CniError> {
    let routes = e
        .routes
        .into_iter()
        .map(|r| Ok(OverlayRoute { route: route(r.route)?, via_vtep: matches!(r.dev, w::Via::Vtep), onlink: r.onlink }))
        .collect::<Result<_, CniError>>()?;
    Ok(Entries {
        routes,
        neighbors: e.neighbors.into_iter().map(|n| Neighbor { ip: n.ip.into(), mac: mac(n.mac) }).collect(),
        fdb: e.fdb.into_iter().map(|f| Fdb { mac: mac(f.mac), dst: f.dst.into() }).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::wasmcni::plugin::types;
    use wasmcni_cni::error::Code;

    #[test]
    fn entries_come_back_typed_and_a_bad_prefix_is_refused() {
        let m: Mac = "0e:00:00:00:00:02".parse().unwrap();
        let dst: IpNet = "10.244.2.0/24".parse().unwrap();
        let gw: IpAddr = "10.244.2.0".parse().unwrap();
        let peer: IpAddr = "192.168.2.2".parse().unwrap();
        let wire = |dst: types::IpPrefix| w::OverlayEntries {
            routes: vec![w::OverlayRoute {
                route: types::Route { dst, ..Route { gw: Some(gw), ..Route::to(IpNet::default()) }.into() },
                dev: w::Via::Vtep,
                onlink: true,
            }],
            neighbors: vec![w::Neighbor { ip: gw.into(), mac: to_mac(m) }],
            fdb: vec![w::Forward { mac: to_mac(m), dst: peer.into() }],
        };
        let got = entries(wire(dst.into())).unwrap();
        let want = OverlayRoute { route: Route { gw: Some(gw), ..Route::to(dst) }, via_vtep: true, onlink: true };
        assert_eq!(got.routes, [want]);
        assert_eq!(got.neighbors, [Neighbor { ip: gw, mac: m }]);
        assert_eq!(got.fdb, [Fdb { mac: m, dst: peer }]);
        let bad = types::IpPrefix { address: gw.into(), prefix_len: 33 };
        assert_eq!(entries(wire(bad)).unwrap_err().code, Code::InvalidConfig);
    }
}
