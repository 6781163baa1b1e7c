//! An in-memory host for native tests of plugin logic: a fake lease store,
//! fake links (behind handles, like the real ones), addresses, routes,
//! sysctls and masquerade rules, a scripted IPAM delegate, and captured
//! logs. A native build of a plugin calls these instead of the real imports
//! (see [`crate::cni`] and [`crate::ipam`]). It refuses what the host refuses,
//! through the same checks (`wasmcni_scope`): a host link outside the call's
//! scope, a host default route, a sysctl off the allow-list are code 101.
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

use crate::bindings::wasmcni::plugin::links::LinkInfo;
use crate::bindings::wasmcni::plugin::types::{
    self, Arg, CniError, CniResult, Invocation, IpAddress, IpPrefix, LinkKind, Requested, Route, Side,
};
use crate::host::log::Level;
use crate::ip;
use ipnet::IpNet;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use wasmcni_scope::HostLinks;

/// A link of the fake kernel.
#[derive(Debug, Clone)]
pub struct MockLink {
    pub info: LinkInfo,
    pub addresses: Vec<IpNet>,
    pub hairpin: bool,
    pub vlan: Option<u16>,
    /// Index of the other end, for veths.
    pub peer: Option<u32>,
}

impl MockLink {
    pub fn container(&self) -> bool {
        matches!(self.info.side, Side::Container)
    }
}

/// Everything the fake host holds.
#[derive(Debug)]
pub struct MockHost {
    /// ip → (container ID, ifname).
    pub leases: BTreeMap<IpAddr, (String, String)>,
    pub last_reserved: BTreeMap<u32, IpAddr>,
    pub logs: Vec<(String, String)>,
    pub links: Vec<MockLink>,
    /// Host links in this call's scope: `cni0` (the bridge key's default),
    /// what [`declare_host_link`] adds, and what the call creates.
    pub scope: HostLinks,
    /// The next link index: indexes are never reused, as in the kernel.
    pub next_index: u32,
    /// (in container, device, route).
    pub routes: Vec<(bool, Option<String>, Route)>,
    /// (in container, key) → value.
    pub sysctls: BTreeMap<(bool, String), String>,
    /// (source, exclude) of this call's container.
    pub masquerade: Vec<(IpAddr, IpNet)>,
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

impl Default for MockHost {
    fn default() -> Self {
        MockHost {
            leases: BTreeMap::new(),
            last_reserved: BTreeMap::new(),
            logs: Vec::new(),
            links: Vec::new(),
            scope: HostLinks::new(["cni0".to_string()]),
            next_index: 2,
            routes: Vec::new(),
            sysctls: BTreeMap::new(),
            masquerade: Vec::new(),
            ipam_result: None,
            ipam_errors: BTreeMap::new(),
            ipam_calls: Vec::new(),
            teardown: Vec::new(),
        }
    }
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

/// Puts a host link in scope, as a config's `bridge`, `master` or
/// `hostLinks` would.
pub fn declare_host_link(name: &str) {
    with(|h| h.scope.add(name));
}

/// Adds a link to the fake kernel (an uplink, say) and returns its index.
pub fn add_link(name: &str, kind: LinkKind, container: bool) -> u32 {
    with(|h| h.add_link(name, kind, container, 1500, None))
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
        requested: Requested { ips: Vec::new(), mac: None },
        prev_result: None,
    }
}

/// [`invocation`] for a Kubernetes pod: CNI_ARGS carries its namespace.
pub fn invocation_in(namespace: &str, id: &str, config: &str) -> Invocation {
    let mut inv = invocation(id, config);
    inv.args.push(Arg { key: "K8S_POD_NAMESPACE".into(), value: namespace.into() });
    inv
}

/// A prefix as CIDR text, for assertions (`"10.9.0.2/24"`).
pub fn cidr(p: IpPrefix) -> String {
    IpNet::try_from(p).map_or_else(|e| e.msg, |n| n.to_string())
}

/// An address as text, for assertions.
pub fn addr(a: IpAddress) -> String {
    IpAddr::from(a).to_string()
}

fn err(code: u32, msg: impl Into<String>) -> CniError {
    CniError { code, msg: msg.into(), details: String::new() }
}

/// The host's error, as the plugin sees it.
fn refused(e: wasmcni_cni::CniError) -> CniError {
    err(e.code, e.msg)
}

fn side(container: bool) -> Side {
    if container { Side::Container } else { Side::Host }
}

/// A WIT route in the host's model, for the host's checks.
fn model(r: &Route) -> Result<wasmcni_cni::result::Route, CniError> {
    Ok(wasmcni_cni::result::Route {
        dst: IpNet::try_from(r.dst).map_err(CniError::from)?,
        gw: r.gw.map(IpAddr::from),
        mtu: r.mtu,
        advmss: r.advmss,
        priority: r.priority,
        table: r.table,
        scope: None,
    })
}

impl MockHost {
    pub fn link(&self, container: bool, name: &str) -> Option<&MockLink> {
        self.links.iter().find(|l| l.container() == container && l.info.name == name)
    }

    fn by_index(&mut self, index: u32) -> Result<&mut MockLink, CniError> {
        self.links
            .iter_mut()
            .find(|l| l.info.index == index)
            .ok_or_else(|| err(102, format!("link {index}: no such device")))
    }

    fn add_link(&mut self, name: &str, kind: LinkKind, container: bool, mtu: u32, mac: Option<types::Mac>) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        let mac = mac.unwrap_or((0x0a, 0x58, 0, 0, (index >> 8) as u8, index as u8));
        let info = LinkInfo {
            name: name.into(),
            index,
            side: side(container),
            mac: Some(mac),
            mtu,
            up: false,
            kind,
            master: None,
        };
        self.links.push(MockLink { info, addresses: Vec::new(), hairpin: false, vlan: None, peer: None });
        index
    }

    /// The link a host-side call names, if it is in scope.
    fn in_scope(&self, l: &MockLink) -> Result<(), CniError> {
        if l.container() { Ok(()) } else { self.scope.check(&l.info.name).map_err(refused) }
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

    pub fn reserve(ip: IpAddress, container_id: &str, ifname: &str, range_set: u32) -> Result<bool, CniError> {
        let ip = IpAddr::from(ip);
        with(|h| {
            if h.leases.contains_key(&ip) {
                return Ok(false);
            }
            h.leases.insert(ip, (container_id.into(), ifname.into()));
            h.last_reserved.insert(range_set, ip);
            Ok(true)
        })
    }

    pub fn last_reserved(range_set: u32) -> Result<Option<IpAddress>, CniError> {
        Ok(with(|h| h.last_reserved.get(&range_set).map(|ip| (*ip).into())))
    }

    pub fn leases() -> Result<Vec<Lease>, CniError> {
        Ok(with(|h| {
            h.leases
                .iter()
                .map(|(ip, (id, ifname))| Lease { ip: (*ip).into(), container_id: id.clone(), ifname: ifname.clone() })
                .collect()
        }))
    }

    pub fn release_owner(container_id: &str, ifname: &str) -> Result<Vec<IpAddress>, CniError> {
        Ok(with(|h| {
            // As the host's store: the ID as trimmed, and a lease written
            // without an ifname (an older host-local's) on any ifname.
            let ours = |id: &String, i: &String| id == container_id.trim() && (i == ifname || i.is_empty());
            let freed: Vec<IpAddr> = h.leases.iter().filter(|(_, (id, i))| ours(id, i)).map(|(ip, _)| *ip).collect();
            for ip in &freed {
                h.leases.remove(ip);
            }
            freed.into_iter().map(Into::into).collect()
        }))
    }
}

/// Link handles over the fake kernel's links, with the methods of the real ones.
pub mod links {
    use super::*;
    use crate::bindings::wasmcni::plugin::links::{BridgeSpec, VethSpec};

    /// A handle to a fake link, by index.
    #[derive(Debug)]
    pub struct Link {
        index: u32,
    }

    /// The two ends [`create_veth`] made.
    #[derive(Debug)]
    pub struct VethPair {
        pub host: Link,
        pub container: Link,
    }

    impl Link {
        fn on<R>(&self, f: impl FnOnce(&mut MockLink) -> R) -> Result<R, CniError> {
            with(|h| h.by_index(self.index).map(f))
        }

        fn host_only(&self, what: &str) -> Result<(), CniError> {
            if self.on(|l| l.container())? {
                return Err(err(101, format!("{what} is for host links")));
            }
            Ok(())
        }

        pub(crate) fn container(&self) -> Result<bool, CniError> {
            self.on(|l| l.container())
        }

        pub(crate) fn index_of(&self) -> u32 {
            self.index
        }

        pub fn name(&self) -> String {
            self.on(|l| l.info.name.clone()).unwrap_or_default()
        }

        pub fn index(&self) -> u32 {
            self.index
        }

        pub fn side(&self) -> Side {
            self.on(|l| l.info.side).unwrap_or(Side::Container)
        }

        pub fn info(&self) -> Result<LinkInfo, CniError> {
            self.on(|l| l.info.clone())
        }

        pub fn set_up(&self, up: bool) -> Result<(), CniError> {
            self.on(|l| l.info.up = up)
        }

        pub fn set_mtu(&self, mtu: u32) -> Result<(), CniError> {
            self.on(|l| l.info.mtu = mtu)
        }

        pub fn set_master(&self, bridge: &Link) -> Result<(), CniError> {
            self.host_only("set-master")?;
            bridge.host_only("set-master")?;
            let name = bridge.name();
            self.on(|l| l.info.master = Some(name))
        }

        pub fn set_hairpin(&self, on: bool) -> Result<(), CniError> {
            self.host_only("set-hairpin")?;
            self.on(|l| l.hairpin = on)
        }

        pub fn set_port_vlan(&self, vid: u16) -> Result<(), CniError> {
            self.host_only("set-port-vlan")?;
            wasmcni_scope::vlan(vid).map_err(refused)?;
            self.on(|l| l.vlan = Some(vid))
        }

        /// Deletes the link (and a veth's peer); fine when it is already gone.
        pub fn delete(this: Link) -> Result<(), CniError> {
            with(|h| {
                let Some(pos) = h.links.iter().position(|l| l.info.index == this.index) else {
                    return Ok(());
                };
                let gone = h.links.remove(pos);
                h.teardown.push(format!("delete-link {}", gone.info.name));
                if let Some(peer) = gone.peer {
                    h.links.retain(|l| l.info.index != peer);
                }
                Ok(())
            })
        }
    }

    pub fn ensure_bridge(spec: &BridgeSpec) -> Result<Link, CniError> {
        with(|h| {
            h.scope.check(&spec.name).map_err(refused)?;
            wasmcni_cni::env::validate_ifname(&spec.name).map_err(|e| err(7, e.msg))?;
            if let Some(l) = h.link(false, &spec.name) {
                return if matches!(l.info.kind, LinkKind::Bridge) {
                    Ok(Link { index: l.info.index })
                } else {
                    Err(err(7, format!("{} exists but is not a bridge", spec.name)))
                };
            }
            let index = h.add_link(&spec.name, LinkKind::Bridge, false, spec.mtu.unwrap_or(1500), None);
            h.by_index(index)?.info.up = true;
            Ok(Link { index })
        })
    }

    pub fn create_veth(spec: &VethSpec) -> Result<VethPair, CniError> {
        wasmcni_cni::env::validate_ifname(&spec.container_ifname).map_err(refused)?;
        with(|h| {
            if h.link(true, &spec.container_ifname).is_some() {
                return Err(err(102, format!("{} already exists", spec.container_ifname)));
            }
            let mtu = spec.mtu.unwrap_or(1500);
            let host_name = format!("veth{:08x}", h.next_index);
            let host = h.add_link(&host_name, LinkKind::Veth, false, mtu, None);
            let container = h.add_link(&spec.container_ifname, LinkKind::Veth, true, mtu, spec.container_mac);
            h.scope.add(&host_name);
            h.by_index(host)?.peer = Some(container);
            h.by_index(host)?.info.up = true;
            h.by_index(container)?.peer = Some(host);
            Ok(VethPair { host: Link { index: host }, container: Link { index: container } })
        })
    }

    pub fn open_host_link(name: &str) -> Result<Option<Link>, CniError> {
        with(|h| {
            h.scope.check(name).map_err(refused)?;
            Ok(h.link(false, name).map(|l| Link { index: l.info.index }))
        })
    }

    pub fn open_container_link(name: &str) -> Result<Option<Link>, CniError> {
        Ok(with(|h| h.link(true, name).map(|l| Link { index: l.info.index })))
    }

    pub fn veth_peer(container_end: &Link) -> Result<Option<Link>, CniError> {
        with(|h| {
            // A container end that is gone has no peer, as with the real host.
            let Some(end) = h.links.iter().find(|l| l.info.index == container_end.index) else {
                return Ok(None);
            };
            if !end.container() {
                return Err(err(7, "veth-peer takes a container link"));
            }
            let Some(peer) = end.peer else {
                return Ok(None);
            };
            let Some(name) = h.links.iter().find(|l| l.info.index == peer).map(|l| l.info.name.clone()) else {
                return Ok(None);
            };
            h.scope.add(&name);
            Ok(Some(Link { index: peer }))
        })
    }
}

pub mod addresses {
    use super::links::Link;
    use super::*;
    use crate::bindings::wasmcni::plugin::types::AddressFamily;

    fn on<R>(link: &Link, f: impl FnOnce(&mut MockLink) -> R) -> Result<R, CniError> {
        with(|h| {
            let l = h.by_index(link.index_of())?.clone();
            h.in_scope(&l)?;
            h.by_index(link.index_of()).map(f)
        })
    }

    pub fn add_address(link: &Link, address: IpPrefix) -> Result<(), CniError> {
        let net = IpNet::try_from(address)?;
        on(link, |l| {
            if !l.addresses.contains(&net) {
                l.addresses.push(net);
            }
        })
    }

    pub fn del_address(link: &Link, address: IpPrefix) -> Result<(), CniError> {
        let net = IpNet::try_from(address)?;
        on(link, |l| l.addresses.retain(|a| *a != net))
    }

    pub fn list_addresses(link: &Link, family: Option<AddressFamily>) -> Result<Vec<IpPrefix>, CniError> {
        on(link, |l| {
            l.addresses
                .iter()
                .filter(|a| family.is_none_or(|f| ip::family(a.addr()) == f))
                .map(|a| (*a).into())
                .collect()
        })
    }
}

pub mod routes {
    use super::links::Link;
    use super::*;
    use crate::bindings::wasmcni::plugin::routes::RouteInfo;
    use crate::bindings::wasmcni::plugin::types::AddressFamily;

    /// Where a route goes, as in the real `routes` interface.
    #[derive(Debug)]
    pub enum RouteDev<'a> {
        Link(&'a Link),
        Container,
    }

    /// (in container, device name) of `dev`, after the host's checks for `route`.
    fn place(dev: &RouteDev<'_>, route: &Route) -> Result<(bool, Option<String>), CniError> {
        match dev {
            RouteDev::Link(link) => {
                let container = link.container()?;
                if !container {
                    with(|h| {
                        let l = h.by_index(link.index_of())?.clone();
                        h.in_scope(&l)
                    })?;
                    wasmcni_scope::host_route(&model(route)?).map_err(refused)?;
                }
                Ok((container, Some(link.name())))
            }
            RouteDev::Container => Ok((true, None)),
        }
    }

    fn same(a: &Route, b: &Route) -> bool {
        IpNet::try_from(a.dst).ok() == IpNet::try_from(b.dst).ok() && a.table == b.table
    }

    pub fn add_route(dev: &RouteDev<'_>, route: Route) -> Result<(), CniError> {
        let (c, name) = place(dev, &route)?;
        with(|h| {
            if h.routes.iter().any(|(rc, _, r)| *rc == c && same(r, &route)) {
                return Err(err(102, "the route already exists"));
            }
            h.routes.push((c, name, route));
            Ok(())
        })
    }

    pub fn replace_route(dev: &RouteDev<'_>, route: Route) -> Result<(), CniError> {
        let (c, name) = place(dev, &route)?;
        with(|h| {
            h.routes.retain(|(rc, _, r)| !(*rc == c && same(r, &route)));
            h.routes.push((c, name, route));
            Ok(())
        })
    }

    pub fn del_route(dev: &RouteDev<'_>, route: Route) -> Result<(), CniError> {
        let (c, _) = place(dev, &route)?;
        with(|h| {
            h.routes.retain(|(rc, _, r)| !(*rc == c && same(r, &route)));
            Ok(())
        })
    }

    fn listed(container: bool, dev: Option<&str>, family: Option<AddressFamily>) -> Vec<RouteInfo> {
        with(|h| {
            h.routes
                .iter()
                .filter(|(c, d, _)| *c == container && (dev.is_none() || d.as_deref() == dev))
                .map(|(_, d, r)| RouteInfo { route: *r, dev: d.clone(), family: ip::family(r.dst.address.into()) })
                .filter(|i| family.is_none_or(|f| i.family == f))
                .collect()
        })
    }

    pub fn list_routes(link: &Link, family: Option<AddressFamily>) -> Result<Vec<RouteInfo>, CniError> {
        let container = link.container()?;
        Ok(listed(container, Some(&link.name()), family))
    }

    pub fn list_container_routes(family: Option<AddressFamily>) -> Result<Vec<RouteInfo>, CniError> {
        Ok(listed(true, None, family))
    }
}

pub mod sysctl {
    use super::links::Link;
    use super::*;
    use crate::bindings::wasmcni::plugin::types::AddressFamily;
    use wasmcni_scope::sysctl::{global_key, link_key, parse_key, value};

    fn global(key: &str) -> Result<(), CniError> {
        global_key(key).map_err(refused)
    }

    fn conf(link: &Link, family: AddressFamily, key: &str) -> Result<(bool, String), CniError> {
        let container = link.container()?;
        let full = link_key(matches!(family, AddressFamily::Ipv6), &link.name(), key).map_err(refused)?;
        parse_key(&full).map_err(refused)?;
        if !container {
            with(|h| h.scope.check(&link.name())).map_err(refused)?;
        }
        Ok((container, full))
    }

    pub fn set(side: Side, key: &str, v: &str) -> Result<(), CniError> {
        global(key)?;
        value(v).map_err(refused)?;
        with(|h| h.sysctls.insert((matches!(side, Side::Container), key.into()), v.into()));
        Ok(())
    }

    pub fn get(side: Side, key: &str) -> Result<String, CniError> {
        global(key)?;
        Ok(with(|h| h.sysctls.get(&(matches!(side, Side::Container), key.to_owned())).cloned()).unwrap_or("0".into()))
    }

    pub fn set_conf(link: &Link, family: AddressFamily, key: &str, v: &str) -> Result<(), CniError> {
        let at = conf(link, family, key)?;
        value(v).map_err(refused)?;
        with(|h| h.sysctls.insert(at, v.into()));
        Ok(())
    }

    pub fn get_conf(link: &Link, family: AddressFamily, key: &str) -> Result<String, CniError> {
        let at = conf(link, family, key)?;
        Ok(with(|h| h.sysctls.get(&at).cloned()).unwrap_or("0".into()))
    }
}

pub mod nat {
    use super::*;

    pub fn masquerade_add(source: IpAddress, exclude: IpPrefix) -> Result<(), CniError> {
        let exclude = IpNet::try_from(exclude)?;
        with(|h| h.masquerade.push((source.into(), exclude)));
        Ok(())
    }

    pub fn masquerade_del() -> Result<(), CniError> {
        with(|h| {
            h.teardown.push("masquerade-del".into());
            h.masquerade.clear();
        });
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::wasmcni::plugin::links::{BridgeSpec, VethSpec};

    fn veth(name: &str) -> Result<links::VethPair, CniError> {
        links::create_veth(&VethSpec { container_ifname: name.into(), mtu: None, container_mac: None })
    }

    #[test]
    fn it_refuses_what_the_host_refuses() {
        reset();
        add_link("eth0", LinkKind::Device, false);
        assert_eq!(links::open_host_link("eth0").unwrap_err().code, 101, "an undeclared host link");
        declare_host_link("eth0");
        assert!(links::open_host_link("eth0").unwrap().is_some());
        let bridge = BridgeSpec { name: "br-x".into(), mtu: None, promisc: false, vlan_filtering: false };
        assert_eq!(links::ensure_bridge(&bridge).unwrap_err().code, 101, "a bridge the config does not name");
        assert_eq!(veth("bad/name").unwrap_err().code, 4);
        let pair = veth("eth1").unwrap();
        let default = route_to_default();
        assert_eq!(routes::add_route(&routes::RouteDev::Link(&pair.host), default).unwrap_err().code, 101);
        assert_eq!(sysctl::set(Side::Host, "kernel/panic", "1").unwrap_err().code, 101);
        assert_eq!(pair.host.set_port_vlan(5000).unwrap_err().code, 7);
    }

    fn route_to_default() -> Route {
        crate::ip::route_to("0.0.0.0/0".parse().unwrap())
    }

    #[test]
    fn link_indexes_are_never_reused_and_a_gone_link_is_code_102() {
        reset();
        let first = veth("eth0").unwrap();
        let (host, container) = (first.host.index(), first.container.index());
        links::Link::delete(first.container).unwrap();
        assert_eq!(first.host.info().unwrap_err().code, 102, "the peer went with its veth");
        let second = veth("eth0").unwrap();
        assert!(second.host.index() > container && second.container.index() > host);
    }

    #[test]
    fn release_owner_frees_as_the_host_s_store_does() {
        reset();
        let ip = |s: &str| IpAddress::from(s.parse::<IpAddr>().unwrap());
        ipam_store::reserve(ip("10.0.0.2"), "c1", "eth0", 0).unwrap();
        ipam_store::reserve(ip("10.0.0.3"), "c1", "", 0).unwrap();
        ipam_store::reserve(ip("10.0.0.4"), "c1", "net1", 0).unwrap();
        let freed: Vec<String> = ipam_store::release_owner(" c1 ", "eth0").unwrap().into_iter().map(addr).collect();
        assert_eq!(freed, ["10.0.0.2", "10.0.0.3"]);
        assert_eq!(with(|h| h.leases.len()), 1);
    }
}
