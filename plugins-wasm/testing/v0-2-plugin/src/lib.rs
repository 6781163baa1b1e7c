//! A point-to-point network plugin built against the frozen WIT 0.2.0
//! (wit/compat/0.2.0) with wit-bindgen directly, as a module built before 1.0
//! was: every address, prefix and MAC crosses the contract as a string. The
//! version-skew tests run it on the current host, through the 0.x adapter:
//! a veth, the IPAM address on the container end, the gateway address on the
//! host end, routes both ways, a per-link sysctl and masquerade.

wit_bindgen::generate!({ world: "cni-plugin", path: "../../../wit/compat/0.2.0" });

use exports::wasmcni::plugin::handler::Guest;
use ipnet::IpNet;
use wasmcni::plugin::netlink::{self, Side, VethSpec};
use wasmcni::plugin::types::{Attachment, CniError, CniResult, Iface, Invocation, Route};
use wasmcni::plugin::{delegate, log};

fn fail(msg: String) -> CniError {
    CniError { code: 100, msg, details: String::new() }
}

fn route(dst: String, gw: Option<String>) -> Route {
    Route { dst, gw, mtu: None, advmss: None, priority: None, table: None, scope: None }
}

fn ip_masq(inv: &Invocation) -> bool {
    let config: serde_json::Value = serde_json::from_str(&inv.config).unwrap_or_default();
    config["ipMasq"].as_bool().unwrap_or(false)
}

struct V02Plugin;

impl Guest for V02Plugin {
    fn add(inv: Invocation) -> Result<CniResult, CniError> {
        let pair =
            netlink::create_veth(&VethSpec { container_ifname: inv.ifname.clone(), mtu: None, container_mac: None })?;
        let mut result = delegate::ipam_add()?;
        let ip = result.ips.first().cloned().ok_or_else(|| fail("IPAM gave no address".into()))?;
        let net: IpNet = ip.address.parse().map_err(|_| fail(format!("bad address {}", ip.address)))?;
        let gw = ip.gateway.clone().ok_or_else(|| fail("IPAM gave no gateway".into()))?;
        netlink::add_address(Side::Container, &inv.ifname, &ip.address)?;
        netlink::set_link_up(Side::Container, &inv.ifname, true)?;
        netlink::add_route(Side::Container, Some(&inv.ifname), &route(format!("{gw}/32"), None))?;
        netlink::add_route(Side::Container, Some(&inv.ifname), &route("0.0.0.0/0".into(), Some(gw.clone())))?;
        netlink::add_address(Side::Host, &pair.host.name, &format!("{gw}/32"))?;
        netlink::add_route(Side::Host, Some(&pair.host.name), &route(format!("{}/32", net.addr()), None))?;
        netlink::sysctl_set(Side::Host, &format!("ipv4/conf/{}/proxy_arp", pair.host.name), "1")?;
        if ip_masq(&inv) {
            netlink::masquerade_add(&net.addr().to_string(), &net.trunc().to_string())?;
        }
        log::emit(log::Level::Info, &format!("v0-2-plugin: {} via {}", ip.address, pair.host.name));
        let sandbox = inv.netns.unwrap_or_default();
        let container = netlink::get_link(Side::Container, &inv.ifname)?.ok_or_else(|| fail("eth gone".into()))?;
        result.interfaces = vec![
            Iface { name: pair.host.name, mac: pair.host.mac, mtu: Some(pair.host.mtu), sandbox: String::new() },
            Iface { name: container.name, mac: container.mac, mtu: Some(container.mtu), sandbox },
        ];
        for ip in &mut result.ips {
            ip.iface = Some(1);
        }
        Ok(result)
    }

    fn del(inv: Invocation) -> Result<(), CniError> {
        if inv.netns.is_some() {
            netlink::delete_link(Side::Container, &inv.ifname)?;
        }
        delegate::ipam_del()?;
        if ip_masq(&inv) {
            netlink::masquerade_del()?;
        }
        Ok(())
    }

    fn check(inv: Invocation) -> Result<(), CniError> {
        let prev = inv.prev_result.ok_or_else(|| fail("CHECK needs prevResult".into()))?;
        let have = netlink::list_addresses(Side::Container, &inv.ifname)?;
        match prev.ips.iter().find(|ip| !have.contains(&ip.address)) {
            Some(missing) => Err(fail(format!("{} is missing on {}", missing.address, inv.ifname))),
            None => delegate::ipam_check(),
        }
    }

    fn status(_inv: Invocation) -> Result<(), CniError> {
        delegate::ipam_status()
    }

    fn gc(_inv: Invocation, valid: Vec<Attachment>) -> Result<(), CniError> {
        delegate::ipam_gc(&valid)
    }
}

export!(V02Plugin);
