//! ADD: bridge, veth, IPAM, addresses and routes, gateway, masquerade.

use crate::config::BridgeConf;
use ipnet::IpNet;
use std::net::IpAddr;
use wasmcni_sdk::Error;
use wasmcni_sdk::cni::netlink::{self, BridgeSpec, LinkInfo, Side, VethSpec};
use wasmcni_sdk::cni::types::{CniResult, Iface, Invocation, Route};
use wasmcni_sdk::cni::{delegate, log};

/// Index of the container interface in the result's `interfaces`.
const CONTAINER_IFACE: u32 = 2;

pub fn add(inv: &Invocation, conf: &BridgeConf) -> Result<CniResult, Error> {
    let netns =
        inv.netns.clone().ok_or_else(|| Error::new(wasmcni_sdk::Code::InvalidEnv, "CNI_NETNS is required for ADD"))?;
    let bridge = netlink::ensure_bridge(&BridgeSpec {
        name: conf.bridge.clone(),
        mtu: conf.mtu,
        promisc: conf.promisc_mode,
        vlan_filtering: conf.vlan != 0,
    })?;
    let pair = netlink::create_veth(&VethSpec {
        container_ifname: inv.ifname.clone(),
        mtu: conf.mtu.or(Some(bridge.mtu)),
        container_mac: conf.mac.clone(),
    })?;
    netlink::set_master(&pair.host.name, &bridge.name)?;
    if conf.hairpin_mode {
        netlink::set_hairpin(&pair.host.name, true)?;
    }
    if conf.vlan != 0 {
        netlink::set_port_vlan(&pair.host.name, conf.vlan)?;
    }

    let mut result = CniResult {
        interfaces: vec![iface(&bridge, ""), iface(&pair.host, ""), iface(&pair.container, &netns)],
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
        configure_container(inv, conf, &mut result)?;
        if conf.is_gateway {
            configure_gateway(conf, &result, bridge.up)?;
        }
        if conf.ip_masq {
            for ip in &result.ips {
                let net = parse_net(&ip.address)?;
                let exclude = match conf.cluster_network {
                    Some(c) if c.contains(&net.addr()) => c.trunc(),
                    _ => net.trunc(),
                };
                netlink::masquerade_add(&net.addr().to_string(), &exclude.to_string())?;
            }
        }
    } else {
        netlink::set_link_up(Side::Container, &inv.ifname, true)?;
    }
    // Report the bridge as it is now (its MAC settles once the first port joins).
    if let Some(now) = netlink::get_link(Side::Host, &bridge.name)? {
        result.interfaces[0] = iface(&now, "");
    }
    Ok(result)
}

fn iface(link: &LinkInfo, sandbox: &str) -> Iface {
    Iface { name: link.name.clone(), mac: link.mac.clone(), mtu: Some(link.mtu), sandbox: sandbox.into() }
}

pub fn parse_net(cidr: &str) -> Result<IpNet, Error> {
    cidr.parse().map_err(|_| Error::plugin(format!("IPAM returned an invalid address {cidr:?}")))
}

fn default_dst(v4: bool) -> &'static str {
    if v4 { "0.0.0.0/0" } else { "::/0" }
}

/// Addresses, link up, then routes, inside the container.
fn configure_container(inv: &Invocation, conf: &BridgeConf, result: &mut CniResult) -> Result<(), Error> {
    let ifname = &inv.ifname;
    let has_v6 = result.ips.iter().any(|ip| ip.address.contains(':'));
    if has_v6 && !conf.enabledad {
        netlink::sysctl_set(Side::Container, &format!("ipv6/conf/{ifname}/accept_dad"), "0")?;
    }
    if result.ips.iter().any(|ip| !ip.address.contains(':')) {
        netlink::sysctl_set(Side::Container, &format!("ipv4/conf/{ifname}/arp_notify"), "1")?;
    }
    for ip in &result.ips {
        netlink::add_address(Side::Container, ifname, &ip.address)?;
    }
    netlink::set_link_up(Side::Container, ifname, true)?;
    if conf.is_default_gateway {
        for ip in &result.ips {
            let Some(gw) = &ip.gateway else { continue };
            let dst = default_dst(!ip.address.contains(':'));
            if !result.routes.iter().any(|r| r.dst == dst) {
                result.routes.push(route(dst, Some(gw.clone())));
            }
        }
    }
    // Like the reference, a route without a gateway goes via its family's gateway.
    for r in &result.routes {
        let mut r = r.clone();
        if r.gw.is_none() {
            let v6 = r.dst.contains(':');
            r.gw = result.ips.iter().find(|ip| ip.address.contains(':') == v6).and_then(|ip| ip.gateway.clone());
        }
        netlink::add_route(Side::Container, Some(ifname), &r)?;
    }
    Ok(())
}

fn route(dst: &str, gw: Option<String>) -> Route {
    Route { dst: dst.into(), gw, mtu: None, advmss: None, priority: None, table: None, scope: None }
}

/// Puts each gateway address on the bridge and turns on forwarding.
fn configure_gateway(conf: &BridgeConf, result: &CniResult, bridge_up: bool) -> Result<(), Error> {
    let br = &conf.bridge;
    for ip in &result.ips {
        let Some(gw) = &ip.gateway else { continue };
        let net = parse_net(&ip.address)?;
        let gw: IpAddr = gw.parse().map_err(|_| Error::plugin(format!("invalid gateway {gw:?}")))?;
        let want = IpNet::new(gw, net.prefix_len()).map_err(|_| Error::plugin(format!("invalid gateway {gw}")))?;
        ensure_bridge_addr(br, want, conf.force_address)?;
        let key = if gw.is_ipv4() { "ipv4/ip_forward" } else { "ipv6/conf/all/forwarding" };
        netlink::sysctl_set(Side::Host, key, "1")?;
    }
    if !bridge_up {
        netlink::set_link_up(Side::Host, br, true)?;
    }
    Ok(())
}

fn ensure_bridge_addr(br: &str, want: IpNet, force: bool) -> Result<(), Error> {
    for have in netlink::list_addresses(Side::Host, br)? {
        let Ok(have) = have.parse::<IpNet>() else {
            continue;
        };
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
        netlink::del_address(Side::Host, br, &have.to_string())?;
    }
    netlink::add_address(Side::Host, br, &want.to_string())?;
    Ok(())
}
