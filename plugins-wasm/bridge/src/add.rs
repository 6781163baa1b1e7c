//! ADD: bridge, veth, IPAM, addresses and routes, gateway, masquerade.

use crate::config::BridgeConf;
use ipnet::IpNet;
use std::net::IpAddr;
use wasmcni_sdk::Error;
use wasmcni_sdk::cni::links::{self, BridgeSpec, Link, LinkInfo, VethSpec};
use wasmcni_sdk::cni::routes::{self, RouteDev};
use wasmcni_sdk::cni::types::{AddressFamily, CniResult, Iface, Invocation, IpConfig, Side};
use wasmcni_sdk::cni::{addresses, delegate, log, nat, sysctl};
use wasmcni_sdk::ip::route_via;

/// Index of the container interface in the result's `interfaces`.
const CONTAINER_IFACE: u32 = 2;

pub fn add(inv: &Invocation, conf: &BridgeConf) -> Result<CniResult, Error> {
    let netns =
        inv.netns.clone().ok_or_else(|| Error::new(wasmcni_sdk::Code::InvalidEnv, "CNI_NETNS is required for ADD"))?;
    let bridge = links::ensure_bridge(&BridgeSpec {
        name: conf.bridge.clone(),
        mtu: conf.mtu,
        promisc: conf.promisc_mode,
        vlan_filtering: conf.vlan != 0,
    })?;
    let bridge_info = bridge.info()?;
    let pair = links::create_veth(&VethSpec {
        container_ifname: inv.ifname.clone(),
        mtu: conf.mtu.or(Some(bridge_info.mtu)),
        container_mac: inv.requested.mac,
    })?;
    pair.host.set_master(&bridge)?;
    if conf.hairpin_mode {
        pair.host.set_hairpin(true)?;
    }
    if conf.vlan != 0 {
        pair.host.set_port_vlan(conf.vlan)?;
    }

    let mut result = CniResult {
        interfaces: vec![
            iface(&bridge_info, None),
            iface(&pair.host.info()?, None),
            iface(&pair.container.info()?, Some(netns)),
        ],
        ips: Vec::new(),
        routes: Vec::new(),
        dns: None,
    };
    if conf.has_ipam() {
        let ipam = delegate::ipam_add()?;
        result.ips = ipam.ips;
        result.routes = ipam.routes;
        result.dns = ipam.dns;
        for ip in &mut result.ips {
            ip.iface = Some(CONTAINER_IFACE);
        }
        configure_container(&pair.container, conf, &mut result)?;
        if conf.is_gateway {
            configure_gateway(&bridge, conf, &result, bridge_info.up)?;
        }
        if conf.ip_masq {
            for ip in &result.ips {
                let net = address(ip)?;
                let cluster = conf.cluster_network.iter().find(|c| c.contains(&net.addr()));
                let exclude = cluster.map_or(net.trunc(), |c| c.trunc());
                nat::masquerade_add(net.addr().into(), exclude.into())?;
            }
        }
    } else {
        pair.container.set_up(true)?;
    }
    // The bridge's MAC is pinned when it is made, so what ensure-bridge
    // reported still holds.
    Ok(result)
}

fn iface(link: &LinkInfo, sandbox: Option<String>) -> Iface {
    Iface { name: link.name.clone(), mac: link.mac, mtu: Some(link.mtu), sandbox }
}

/// An IPAM address (with its prefix) as `IpNet`.
pub fn address(ip: &IpConfig) -> Result<IpNet, Error> {
    IpNet::try_from(ip.address).map_err(|e| Error::plugin(format!("IPAM returned an invalid address: {}", e.msg)))
}

fn default_dst(v4: bool) -> IpNet {
    if v4 { "0.0.0.0/0" } else { "::/0" }.parse().expect("a default route")
}

/// Addresses, link up, then routes, inside the container.
fn configure_container(eth: &Link, conf: &BridgeConf, result: &mut CniResult) -> Result<(), Error> {
    let nets: Vec<IpNet> = result.ips.iter().map(address).collect::<Result<_, _>>()?;
    if nets.iter().any(|n| n.addr().is_ipv6()) && !conf.enabledad {
        sysctl::set_conf(eth, AddressFamily::Ipv6, "accept_dad", "0")?;
    }
    if nets.iter().any(|n| n.addr().is_ipv4()) {
        sysctl::set_conf(eth, AddressFamily::Ipv4, "arp_notify", "1")?;
    }
    for ip in &result.ips {
        addresses::add_address(eth, ip.address)?;
    }
    eth.set_up(true)?;
    if conf.is_default_gateway {
        for (ip, net) in result.ips.iter().zip(&nets) {
            let Some(gw) = ip.gateway else { continue };
            let dst = default_dst(net.addr().is_ipv4());
            if !result.routes.iter().any(|r| IpNet::try_from(r.dst).is_ok_and(|d| d == dst)) {
                result.routes.push(route_via(dst, gw.into()));
            }
        }
    }
    // Like the reference, a route without a gateway goes via its family's gateway.
    for r in &result.routes {
        let mut r = *r;
        if r.gw.is_none() {
            let v6 = IpAddr::from(r.dst.address).is_ipv6();
            r.gw = result.ips.iter().zip(&nets).find(|(_, n)| n.addr().is_ipv6() == v6).and_then(|(ip, _)| ip.gateway);
        }
        routes::add_route(&RouteDev::Link(eth), r)?;
    }
    Ok(())
}

/// Puts each gateway address on the bridge and turns on forwarding.
fn configure_gateway(bridge: &Link, conf: &BridgeConf, result: &CniResult, bridge_up: bool) -> Result<(), Error> {
    for ip in &result.ips {
        let Some(gw) = ip.gateway.map(IpAddr::from) else { continue };
        let net = address(ip)?;
        let want = IpNet::new(gw, net.prefix_len()).map_err(|_| Error::plugin(format!("invalid gateway {gw}")))?;
        // A tentative gateway answers no neighbour solicitation: the first
        // pod could not reach it for the second DAD takes.
        if gw.is_ipv6() && !conf.enabledad {
            sysctl::set_conf(bridge, AddressFamily::Ipv6, "accept_dad", "0")?;
        }
        ensure_bridge_addr(bridge, &conf.bridge, want, conf.force_address)?;
        let key = if gw.is_ipv4() { "ipv4/ip_forward" } else { "ipv6/conf/all/forwarding" };
        sysctl::set(Side::Host, key, "1")?;
    }
    if !bridge_up {
        bridge.set_up(true)?;
    }
    Ok(())
}

fn ensure_bridge_addr(bridge: &Link, br: &str, want: IpNet, force: bool) -> Result<(), Error> {
    for have in addresses::list_addresses(bridge, None)? {
        let have = IpNet::try_from(have)?;
        if have == want {
            return Ok(());
        }
        let same_family = have.addr().is_ipv4() == want.addr().is_ipv4();
        let link_local = matches!(have.addr(), IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80);
        let conflicts = want.addr().is_ipv4() || have.contains(&want.addr()) || want.contains(&have.addr());
        if !same_family || link_local || !conflicts {
            continue;
        }
        if !force {
            return Err(Error::plugin(format!(
                "bridge {br:?} already has an IP address {have} different from {want}; \
                 set \"forceAddress\": true to replace it"
            )));
        }
        log::emit(log::Level::Info, &format!("replacing {have} on {br} with {want}"));
        addresses::del_address(bridge, have.into())?;
    }
    addresses::add_address(bridge, want.into())?;
    Ok(())
}
