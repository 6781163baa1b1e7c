//! An in-memory host for native tests of plugin logic: a fake lease store,
//! fake links, addresses, routes, sysctls and masquerade rules, a scripted
//! IPAM delegate, and captured logs. A native build of a plugin calls these
//! instead of the real imports (see [`crate::cni`] and [`crate::ipam`]).
//!
//! ```text
//! #[test]
//! fn add_allocates() {
//!     wasmcni_sdk::testing::reset();
//!     let result = MyIpam::add(wasmcni_sdk::testing::invocation("c1", r#"{"ipam": {...}}"#)).unwrap();
//!     assert_eq!(wasmcni_sdk::testing::with(|h| h.leases.len()), 1);
//! }
//! ```
//!
//! The host is per test thread; `reset` clears it.

use crate::bindings::wasmcni::plugin::netlink::{LinkInfo, Side};
use crate::bindings::wasmcni::plugin::types::{Arg, CniError, CniResult, Invocation, Route};
use crate::host::log::Level;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A link of the fake kernel.
#[derive(Debug, Clone)]
pub struct MockLink {
    pub info: LinkInfo,
    pub container: bool,
    pub addresses: Vec<String>,
    pub hairpin: bool,
    pub vlan: Option<u16>,
    /// Index of the other end, for veths.
    pub peer: Option<u32>,
}

/// Everything the fake host holds.
#[derive(Debug, Default)]
pub struct MockHost {
    /// ip → (container ID, ifname).
    pub leases: BTreeMap<String, (String, String)>,
    pub last_reserved: BTreeMap<u32, String>,
    pub logs: Vec<(String, String)>,
    pub links: Vec<MockLink>,
    /// (in container, device, route).
    pub routes: Vec<(bool, Option<String>, Route)>,
    /// (in container, key) → value.
    pub sysctls: BTreeMap<(bool, String), String>,
    /// (source, exclude) of this call's container.
    pub masquerade: Vec<(String, String)>,
    /// What `delegate::ipam-add` returns; an empty result when unset.
    pub ipam_result: Option<CniResult>,
    /// What `delegate` failures to return, by command (e.g. "ADD").
    pub ipam_errors: BTreeMap<String, CniError>,
    /// IPAM commands delegated, in order.
    pub ipam_calls: Vec<String>,
    /// Teardown steps in the order the plugin took them ("delete-link
    /// eth0", "ipam DEL", "masquerade-del"), to check its ordering.
    pub teardown: Vec<String>,
}

thread_local! {
    static HOST: RefCell<MockHost> = RefCell::new(MockHost::default());
}

/// Runs `f` on this thread's fake host.
pub fn with<R>(f: impl FnOnce(&mut MockHost) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

/// Starts over with an empty host.
pub fn reset() {
    with(|h| *h = MockHost::default());
}

/// An invocation for container `id` on `eth0` in netns `/run/netns/test`.
pub fn invocation(id: &str, config: &str) -> Invocation {
    Invocation {
        container_id: id.into(),
        ifname: "eth0".into(),
        netns: Some("/run/netns/test".into()),
        args: Vec::<Arg>::new(),
        network_name: "test".into(),
        config: config.into(),
        prev_result: None,
    }
}

/// [`invocation`] for a Kubernetes pod: CNI_ARGS carries its namespace.
pub fn invocation_in(namespace: &str, id: &str, config: &str) -> Invocation {
    let mut inv = invocation(id, config);
    inv.args.push(Arg { key: "K8S_POD_NAMESPACE".into(), value: namespace.into() });
    inv
}

fn err(code: u32, msg: impl Into<String>) -> CniError {
    CniError { code, msg: msg.into(), details: String::new() }
}

impl MockHost {
    pub fn link(&self, container: bool, name: &str) -> Option<&MockLink> {
        self.links.iter().find(|l| l.container == container && l.info.name == name)
    }

    fn link_mut(&mut self, side: Side, name: &str) -> Result<&mut MockLink, CniError> {
        let container = side == Side::Container;
        self.links
            .iter_mut()
            .find(|l| l.container == container && l.info.name == name)
            .ok_or_else(|| err(102, format!("link {name}: no such link")))
    }

    fn add_link(&mut self, name: &str, kind: &str, container: bool, mtu: u32, mac: Option<String>) -> u32 {
        let index = self.links.len() as u32 + 2;
        let mac = mac.unwrap_or_else(|| format!("0a:58:00:00:00:{index:02x}"));
        let info = LinkInfo { name: name.into(), index, mac, mtu, up: false, kind: kind.into(), master: None };
        self.links.push(MockLink { info, container, addresses: Vec::new(), hairpin: false, vlan: None, peer: None });
        index
    }
}

pub mod log {
    use super::*;

    pub fn emit(level: Level, msg: &str) {
        with(|h| h.logs.push((format!("{level:?}"), msg.to_owned())));
    }
}

pub mod ipam_store {
    use super::*;
    use crate::bindings::wasmcni::plugin::ipam_store::Lease;

    pub fn reserve(ip: &str, container_id: &str, ifname: &str, range_set: u32) -> Result<bool, CniError> {
        with(|h| {
            if h.leases.contains_key(ip) {
                return Ok(false);
            }
            h.leases.insert(ip.into(), (container_id.into(), ifname.into()));
            h.last_reserved.insert(range_set, ip.into());
            Ok(true)
        })
    }

    pub fn last_reserved(range_set: u32) -> Result<Option<String>, CniError> {
        Ok(with(|h| h.last_reserved.get(&range_set).cloned()))
    }

    pub fn leases() -> Result<Vec<Lease>, CniError> {
        Ok(with(|h| {
            h.leases
                .iter()
                .map(|(ip, (id, ifname))| Lease { ip: ip.clone(), container_id: id.clone(), ifname: ifname.clone() })
                .collect()
        }))
    }

    pub fn release_owner(container_id: &str, ifname: &str) -> Result<Vec<String>, CniError> {
        Ok(with(|h| {
            let freed: Vec<String> = h
                .leases
                .iter()
                .filter(|(_, (id, i))| id == container_id && i == ifname)
                .map(|(ip, _)| ip.clone())
                .collect();
            for ip in &freed {
                h.leases.remove(ip);
            }
            freed
        }))
    }
}

pub mod netlink {
    use super::*;
    use crate::bindings::wasmcni::plugin::netlink::{BridgeSpec, RouteInfo, VethPair, VethSpec};

    fn is_container(side: Side) -> bool {
        side == Side::Container
    }

    pub fn ensure_bridge(spec: &BridgeSpec) -> Result<LinkInfo, CniError> {
        with(|h| {
            if let Some(l) = h.link(false, &spec.name) {
                return if l.info.kind == "bridge" {
                    Ok(l.info.clone())
                } else {
                    Err(err(7, format!("{} exists but is not a bridge", spec.name)))
                };
            }
            h.add_link(&spec.name, "bridge", false, spec.mtu.unwrap_or(1500), None);
            let l = h.link_mut(Side::Host, &spec.name)?;
            l.info.up = true;
            Ok(l.info.clone())
        })
    }

    pub fn create_veth(spec: &VethSpec) -> Result<VethPair, CniError> {
        with(|h| {
            if h.link(true, &spec.container_ifname).is_some() {
                return Err(err(102, format!("{} already exists", spec.container_ifname)));
            }
            let mtu = spec.mtu.unwrap_or(1500);
            let host_name = format!("veth{:08x}", h.links.len());
            let host = h.add_link(&host_name, "veth", false, mtu, None);
            let container = h.add_link(&spec.container_ifname, "veth", true, mtu, spec.container_mac.clone());
            h.link_mut(Side::Host, &host_name)?.peer = Some(container);
            h.link_mut(Side::Host, &host_name)?.info.up = true;
            h.link_mut(Side::Container, &spec.container_ifname)?.peer = Some(host);
            Ok(VethPair {
                host: h.link_mut(Side::Host, &host_name)?.info.clone(),
                container: h.link_mut(Side::Container, &spec.container_ifname)?.info.clone(),
            })
        })
    }

    pub fn set_master(link: &str, bridge: &str) -> Result<(), CniError> {
        with(|h| {
            h.link_mut(Side::Host, bridge)?;
            h.link_mut(Side::Host, link)?.info.master = Some(bridge.into());
            Ok(())
        })
    }

    pub fn set_hairpin(link: &str, on: bool) -> Result<(), CniError> {
        with(|h| {
            h.link_mut(Side::Host, link)?.hairpin = on;
            Ok(())
        })
    }

    pub fn set_port_vlan(link: &str, vid: u16) -> Result<(), CniError> {
        with(|h| {
            h.link_mut(Side::Host, link)?.vlan = Some(vid);
            Ok(())
        })
    }

    pub fn set_link_up(side: Side, link: &str, up: bool) -> Result<(), CniError> {
        with(|h| {
            h.link_mut(side, link)?.info.up = up;
            Ok(())
        })
    }

    pub fn set_mtu(side: Side, link: &str, mtu: u32) -> Result<(), CniError> {
        with(|h| {
            h.link_mut(side, link)?.info.mtu = mtu;
            Ok(())
        })
    }

    pub fn get_link(side: Side, link: &str) -> Result<Option<LinkInfo>, CniError> {
        Ok(with(|h| h.link(is_container(side), link).map(|l| l.info.clone())))
    }

    pub fn delete_link(side: Side, link: &str) -> Result<(), CniError> {
        with(|h| {
            h.teardown.push(format!("delete-link {link}"));
            let Some(pos) = h.links.iter().position(|l| l.container == is_container(side) && l.info.name == link)
            else {
                return Ok(());
            };
            let gone = h.links.remove(pos);
            // A veth takes its peer with it.
            if let Some(peer) = gone.peer {
                h.links.retain(|l| l.info.index != peer);
            }
            Ok(())
        })
    }

    pub fn veth_peer(container_link: &str) -> Result<Option<LinkInfo>, CniError> {
        Ok(with(|h| {
            let peer = h.link(true, container_link)?.peer?;
            h.links.iter().find(|l| l.info.index == peer).map(|l| l.info.clone())
        }))
    }

    pub fn add_address(side: Side, link: &str, cidr: &str) -> Result<(), CniError> {
        with(|h| {
            let l = h.link_mut(side, link)?;
            if !l.addresses.iter().any(|a| a == cidr) {
                l.addresses.push(cidr.into());
            }
            Ok(())
        })
    }

    pub fn del_address(side: Side, link: &str, cidr: &str) -> Result<(), CniError> {
        with(|h| {
            h.link_mut(side, link)?.addresses.retain(|a| a != cidr);
            Ok(())
        })
    }

    pub fn list_addresses(side: Side, link: &str) -> Result<Vec<String>, CniError> {
        with(|h| Ok(h.link_mut(side, link)?.addresses.clone()))
    }

    pub fn add_route(side: Side, dev: Option<&str>, route: &Route) -> Result<(), CniError> {
        with(|h| {
            let c = is_container(side);
            if h.routes.iter().any(|(rc, _, r)| *rc == c && r.dst == route.dst && r.table == route.table) {
                return Err(err(102, format!("a route to {} already exists", route.dst)));
            }
            h.routes.push((c, dev.map(str::to_owned), route.clone()));
            Ok(())
        })
    }

    pub fn replace_route(side: Side, dev: Option<&str>, route: &Route) -> Result<(), CniError> {
        del_route(side, dev, route)?;
        add_route(side, dev, route)
    }

    pub fn del_route(side: Side, _dev: Option<&str>, route: &Route) -> Result<(), CniError> {
        with(|h| {
            let c = is_container(side);
            h.routes.retain(|(rc, _, r)| !(*rc == c && r.dst == route.dst && r.table == route.table));
            Ok(())
        })
    }

    pub fn list_routes(side: Side, dev: Option<&str>) -> Result<Vec<RouteInfo>, CniError> {
        Ok(with(|h| {
            h.routes
                .iter()
                .filter(|(c, d, _)| *c == is_container(side) && (dev.is_none() || d.as_deref() == dev))
                .map(|(_, d, r)| RouteInfo {
                    route: r.clone(),
                    dev: d.clone(),
                    family: if r.dst.contains(':') { "ipv6" } else { "ipv4" }.into(),
                })
                .collect()
        }))
    }

    pub fn sysctl_set(side: Side, key: &str, value: &str) -> Result<(), CniError> {
        with(|h| {
            h.sysctls.insert((is_container(side), key.into()), value.into());
            Ok(())
        })
    }

    pub fn sysctl_get(side: Side, key: &str) -> Result<String, CniError> {
        Ok(with(|h| h.sysctls.get(&(is_container(side), key.to_owned())).cloned().unwrap_or_else(|| "0".into())))
    }

    pub fn masquerade_add(source: &str, exclude: &str) -> Result<(), CniError> {
        with(|h| {
            h.masquerade.push((source.into(), exclude.into()));
            Ok(())
        })
    }

    pub fn masquerade_del() -> Result<(), CniError> {
        with(|h| {
            h.teardown.push("masquerade-del".into());
            h.masquerade.clear();
            Ok(())
        })
    }

    pub fn masquerade_gc(_keep: &[String]) -> Result<(), CniError> {
        Ok(())
    }
}

pub mod delegate {
    use super::*;
    use crate::bindings::wasmcni::plugin::types::Attachment;

    fn call(command: &str) -> Result<(), CniError> {
        with(|h| {
            h.ipam_calls.push(command.into());
            h.teardown.push(format!("ipam {command}"));
            match h.ipam_errors.get(command) {
                Some(e) => Err(e.clone()),
                None => Ok(()),
            }
        })
    }

    pub fn ipam_add() -> Result<CniResult, CniError> {
        call("ADD")?;
        Ok(with(|h| {
            h.ipam_result.clone().unwrap_or(CniResult { interfaces: vec![], ips: vec![], routes: vec![], dns: None })
        }))
    }

    pub fn ipam_del() -> Result<(), CniError> {
        call("DEL")
    }

    pub fn ipam_check() -> Result<(), CniError> {
        call("CHECK")
    }

    pub fn ipam_status() -> Result<(), CniError> {
        call("STATUS")
    }

    pub fn ipam_gc(_valid: &[Attachment]) -> Result<(), CniError> {
        call("GC")
    }
}
