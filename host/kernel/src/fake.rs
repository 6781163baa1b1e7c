//! In-memory namespaces, NAT and leases for tests: they do what the kernel
//! and the lease store do with what wasmcni asks of them, and refuse what
//! those refuse with the same [`Error`]s (a netlink refusal carries the
//! kernel's errno and reads as the kernel's would). Nothing here touches the
//! machine.
//!
//! A [`Net`] models one network namespace: links (indexes never reused,
//! MACs, MTU, up/down, master, kind, veth peers in any two fake namespaces),
//! their addresses (IPv6 ones dropped when the link goes down, as by
//! default), routes (with the prefix route of each address of an up link,
//! gateways that must be reachable on-link, routes gone with their device),
//! and sysctls (integer values; forwarding set for all links at once). Left
//! out: IPv6 link-local addresses and their routes, carrier, and the state
//! that is only written, never read back (promiscuity, hairpin, VLANs: the
//! requests are checked, their effect not kept). VTEPs keep their VXLAN
//! parameters, and links their permanent neighbour and FDB entries.

use crate::addr::Addresses;
use crate::error::Existing;
use crate::ipam_store::Lease;
use crate::link::{BridgeParams, Link, Links, VethParams};
use crate::masquerade::{Owner, validate_network};
use crate::netns::Namespace;
use crate::overlay::{Fdb, Neighbor, Overlay, VtepParams};
use crate::route::{Listed, Routes, TABLE_LOCAL, TABLE_MAIN, V6_DEFAULT_METRIC};
use crate::sysctl::Sysctl;
use crate::{Error, Result};
use ipnet::IpNet;
use nix::errno::Errno;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::num::NonZeroI32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use wasmcni_cni::Mac;
use wasmcni_cni::result::Route;

/// RT_SCOPE_LINK.
const SCOPE_LINK: u8 = 253;
/// The metric the kernel gives IPv6 prefix routes (IP6_RT_PRIO_ADDRCONF).
const V6_PREFIX_METRIC: u32 = 256;

/// The kernel's answer `errno`, as rtnetlink reports it.
fn refusal(errno: Errno) -> rtnetlink::Error {
    let mut m = rtnetlink::packet_core::ErrorMessage::default();
    m.code = NonZeroI32::new(-(errno as i32));
    rtnetlink::Error::NetlinkError(m)
}

fn refused(op: String, errno: Errno) -> Error {
    Error::Netlink { op, source: refusal(errno) }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The kernel's rule for interface names (dev_valid_name).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.contains(['/', ':'])
        && !name.contains(char::is_whitespace)
}

/// The MTUs a veth or a bridge takes (ETH_MIN_MTU..=ETH_MAX_MTU); other kinds take any.
fn valid_mtu(kind: &str, mtu: u32) -> bool {
    !matches!(kind, "veth" | "bridge") || (68..=65535).contains(&mtu)
}

/// A locally administered unicast MAC no other fake link has.
fn new_mac() -> Mac {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let [a, b, c, d] = NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    Mac([0x02, 0xfa, a, b, c, d])
}

/// Per-link sysctls and their values in a fresh namespace (copied from
/// `default` onto each new link; `lo` differs in accept_dad).
const PER_LINK: &[(&str, &str, &str)] = &[
    ("ipv4", "arp_notify", "0"),
    ("ipv4", "forwarding", "0"),
    ("ipv4", "proxy_arp", "0"),
    ("ipv4", "route_localnet", "0"),
    ("ipv4", "rp_filter", "0"),
    ("ipv6", "accept_dad", "1"),
    ("ipv6", "accept_ra", "1"),
    ("ipv6", "disable_ipv6", "0"),
    ("ipv6", "forwarding", "0"),
];

/// An in-memory network namespace. Clones are the same namespace.
#[derive(Clone)]
pub struct Net {
    ns: Arc<Mutex<State>>,
}

struct State {
    /// The index the next link gets: never reused, as the kernel's.
    next_index: u32,
    links: BTreeMap<u32, Port>,
    routes: Vec<Entry>,
    sysctls: BTreeMap<String, String>,
}

struct Port {
    link: Link,
    /// In the order added.
    addresses: Vec<IpNet>,
    /// The namespace of a veth's other end (this one, or another).
    peer: Option<Weak<Mutex<State>>>,
    /// A VTEP's (VNI, port, local address, underlay index).
    vxlan: Option<(u32, u16, IpAddr, u32)>,
    /// Permanent neighbour entries, and (a VTEP's) FDB entries: gone with the link.
    neighbors: BTreeMap<IpAddr, Mac>,
    fdb: BTreeMap<Mac, IpAddr>,
}

struct Entry {
    /// As the kernel keeps it: destination truncated, table, scope and (IPv6) metric filled in.
    route: Route,
    oif: u32,
    /// The prefix route of an address, which goes with the address.
    prefix: bool,
    onlink: bool,
}

impl Entry {
    /// What makes two routes the same to the kernel: table, destination, metric.
    fn key(&self) -> (u32, IpNet, u32) {
        key(&self.route)
    }
}

fn key(r: &Route) -> (u32, IpNet, u32) {
    (r.table.unwrap_or(TABLE_MAIN), r.dst, r.priority.unwrap_or(0))
}

/// The prefix route the kernel adds for `net` on link `oif`; none for an IPv4 /32.
fn prefix_route(net: IpNet, oif: u32) -> Option<Entry> {
    let route = match net {
        IpNet::V4(v4) if v4.prefix_len() == 32 => return None,
        IpNet::V4(_) => Route { table: Some(TABLE_MAIN), scope: Some(SCOPE_LINK), ..Route::to(net.trunc()) },
        IpNet::V6(_) => Route {
            table: Some(TABLE_MAIN),
            scope: Some(0),
            priority: Some(V6_PREFIX_METRIC),
            ..Route::to(net.trunc())
        },
    };
    Some(Entry { route, oif, prefix: true, onlink: false })
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

impl Net {
    /// A fresh namespace: only `lo` (index 1, down), as the kernel makes one.
    pub fn new() -> Net {
        let mut state = State { next_index: 1, links: BTreeMap::new(), routes: Vec::new(), sysctls: BTreeMap::new() };
        state.sysctls.insert("ipv4/ip_forward".into(), "0".into());
        for conf in ["all", "default"] {
            for (family, key, value) in PER_LINK {
                state.sysctls.insert(format!("{family}/conf/{conf}/{key}"), (*value).into());
            }
        }
        let lo = state.add("lo", "", 65536, Some(Mac([0; 6])), None);
        state.links.get_mut(&lo).expect("just added").link.loopback = true;
        state.sysctls.insert("ipv6/conf/lo/accept_dad".into(), "-1".into());
        Net { ns: Arc::new(Mutex::new(state)) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.ns)
    }

    /// Adds a link of `kind` (`dummy`, `ether`, ...), down, as `ip link add` would.
    pub fn add_link(&self, name: &str, kind: &str) -> Result<Link> {
        let op = || format!("add link {name}");
        let mut state = self.state();
        if !valid_name(name) {
            return Err(refused(op(), Errno::EINVAL));
        }
        if state.by_name(name).is_some() {
            return Err(refused(op(), Errno::EEXIST));
        }
        let index = state.add(name, kind, 1500, Some(new_mac()), None);
        Ok(state.links[&index].link.clone())
    }

    /// Both namespaces locked, the same one once; always in one order, so two
    /// calls locking the same pair cannot deadlock.
    fn lock_pair<'a>(&'a self, other: &'a Net) -> (MutexGuard<'a, State>, Option<MutexGuard<'a, State>>) {
        if Arc::ptr_eq(&self.ns, &other.ns) {
            (self.state(), None)
        } else if Arc::as_ptr(&self.ns) < Arc::as_ptr(&other.ns) {
            let here = self.state();
            (here, Some(other.state()))
        } else {
            let there = other.state();
            (self.state(), Some(there))
        }
    }
}

impl State {
    fn by_name(&self, name: &str) -> Option<&Port> {
        self.links.values().find(|p| p.link.name == name)
    }

    /// The link `index`, or the kernel's ENODEV for `op`.
    fn port(&mut self, index: u32, op: impl FnOnce() -> String) -> Result<&mut Port> {
        self.links.get_mut(&index).ok_or_else(|| refused(op(), Errno::ENODEV))
    }

    /// A new link (down) with its per-link sysctls; its index.
    fn add(&mut self, name: &str, kind: &str, mtu: u32, mac: Option<Mac>, peer: Option<Weak<Mutex<State>>>) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        let link = Link {
            name: name.to_owned(),
            index,
            mac,
            mtu,
            up: false,
            loopback: false,
            kind: kind.to_owned(),
            master: None,
            peer_index: None,
        };
        let port =
            Port { link, addresses: Vec::new(), peer, vxlan: None, neighbors: BTreeMap::new(), fdb: BTreeMap::new() };
        self.links.insert(index, port);
        for (family, key, _) in PER_LINK {
            let value = self.sysctls.get(&format!("{family}/conf/default/{key}")).cloned().unwrap_or_default();
            self.sysctls.insert(format!("{family}/conf/{name}/{key}"), value);
        }
        index
    }

    /// Removes link `index` with its addresses, routes and sysctls; where its veth peer is.
    fn remove(&mut self, index: u32) -> Option<(Weak<Mutex<State>>, u32)> {
        let port = self.links.remove(&index)?;
        // VTEPs on it go with it, as the kernel deletes them.
        let vteps: Vec<u32> =
            self.links.values().filter(|p| p.vxlan.is_some_and(|v| v.3 == index)).map(|p| p.link.index).collect();
        for vtep in vteps {
            self.remove(vtep);
        }
        self.routes.retain(|e| e.oif != index);
        for other in self.links.values_mut() {
            if other.link.master == Some(index) {
                other.link.master = None;
            }
        }
        let name = &port.link.name;
        self.sysctls.retain(|k, _| {
            !k.starts_with(&format!("ipv4/conf/{name}/")) && !k.starts_with(&format!("ipv6/conf/{name}/"))
        });
        port.peer.zip(port.link.peer_index)
    }

    fn add_prefix_route(&mut self, net: IpNet, oif: u32) {
        if let Some(entry) = prefix_route(net, oif)
            && !self.routes.iter().any(|e| e.key() == entry.key())
        {
            self.routes.push(entry);
        }
    }

    fn set_up(&mut self, link: &Link, up: bool) -> Result<()> {
        let port = self.port(link.index, || format!("set {} {}", link.name, if up { "up" } else { "down" }))?;
        if port.link.up == up {
            return Ok(());
        }
        port.link.up = up;
        let index = link.index;
        if !up {
            // Routes through a link that goes down go, and so do its IPv6 addresses (keep_addr_on_down=0).
            port.addresses.retain(|n| n.addr().is_ipv4());
            self.routes.retain(|e| e.oif != index);
        } else if port.link.loopback {
            for net in ["127.0.0.1/8", "::1/128"] {
                let net = net.parse().expect("valid");
                if !port.addresses.contains(&net) {
                    port.addresses.push(net);
                }
            }
        } else {
            for net in port.addresses.clone() {
                self.add_prefix_route(net, index);
            }
        }
        Ok(())
    }

    /// The link a route through `gw` leaves by, or why there is none: an IPv4
    /// gateway must be covered by a route of narrower scope than the route
    /// (the prefix route of an address, a device route), an IPv6 one by a
    /// route without a gateway, or be link-local on a given device.
    fn gateway_link(&self, gw: IpAddr, oif: Option<u32>, table: u32, scope: u8) -> Result<u32, Errno> {
        let on = |e: &&Entry| oif.is_none_or(|i| e.oif == i) && e.route.dst.contains(&gw);
        let best =
            |candidates: Vec<&Entry>| candidates.into_iter().max_by_key(|e| e.route.dst.prefix_len()).map(|e| e.oif);
        match gw {
            IpAddr::V4(_) => {
                let usable = |e: &&Entry| {
                    let t = e.route.table.unwrap_or(TABLE_MAIN);
                    (t == table || t == TABLE_MAIN) && e.route.scope.unwrap_or(0) > scope
                };
                best(self.routes.iter().filter(on).filter(usable).collect()).ok_or(Errno::ENETUNREACH)
            }
            IpAddr::V6(v6) if v6.is_unicast_link_local() => oif.ok_or(Errno::EINVAL),
            IpAddr::V6(_) => best(self.routes.iter().filter(on).filter(|e| e.route.gw.is_none()).collect())
                .ok_or(Errno::EHOSTUNREACH),
        }
    }

    fn add_route(&mut self, route: &Route, oif: Option<u32>, replace: bool, onlink: bool) -> Result<()> {
        crate::route::build(route, oif)?;
        let op = || format!("add route to {}", route.dst);
        if let Some(i) = oif
            && !self.links.contains_key(&i)
        {
            return Err(refused(op(), Errno::ENODEV));
        }
        let v6 = route.dst.addr().is_ipv6();
        let table = route.table.unwrap_or(TABLE_MAIN);
        // As the request sets it: a device route without a gateway is link-scoped; IPv6 has no scopes.
        let scope = match (route.scope, route.gw) {
            _ if v6 => 0,
            (Some(s), _) => s,
            (None, None) if oif.is_some() => SCOPE_LINK,
            _ => 0,
        };
        let oif = match route.gw {
            // Onlink: the gateway is on the link named, whatever its routes say.
            Some(_) if onlink => oif.ok_or_else(|| refused(op(), Errno::EINVAL))?,
            Some(gw) => self.gateway_link(gw, oif, table, scope).map_err(|errno| refused(op(), errno))?,
            None => oif.ok_or_else(|| refused(op(), Errno::ENODEV))?,
        };
        if !self.links[&oif].link.up {
            return Err(refused(op(), Errno::ENETDOWN));
        }
        let priority = if v6 {
            Some(route.priority.filter(|p| *p != 0).unwrap_or(V6_DEFAULT_METRIC))
        } else {
            route.priority.filter(|p| *p != 0)
        };
        let listed = Route {
            gw: route.gw,
            mtu: route.mtu,
            priority,
            table: Some(table),
            scope: Some(scope),
            ..Route::to(route.dst.trunc())
        };
        let entry = Entry { route: listed, oif, prefix: false, onlink };
        match self.routes.iter().position(|e| e.key() == entry.key()) {
            Some(i) if replace => self.routes[i] = entry,
            Some(_) => return Err(Error::Exists { op: op(), what: Existing::Route, source: refusal(Errno::EEXIST) }),
            None => self.routes.push(entry),
        }
        Ok(())
    }

    fn del_route(&mut self, route: &Route, oif: Option<u32>) -> Result<()> {
        crate::route::build(route, oif)?;
        let (table, dst) = (route.table.unwrap_or(TABLE_MAIN), route.dst.trunc());
        let matches = |e: &Entry| {
            key(&e.route).0 == table
                && e.route.dst == dst
                && route.priority.filter(|p| *p != 0).is_none_or(|p| e.route.priority.unwrap_or(0) == p)
                && route.gw.is_none_or(|gw| e.route.gw == Some(gw))
                && oif.is_none_or(|i| e.oif == i)
        };
        if let Some(i) = self.routes.iter().position(matches) {
            self.routes.remove(i);
        }
        Ok(())
    }

    fn write_sysctl(&mut self, key: &str, value: &str) -> Result<()> {
        let refused = |errno: Errno| Error::Sysctl {
            key: key.to_owned(),
            value: Some(value.to_owned()),
            source: std::io::Error::from_raw_os_error(errno as i32),
        };
        if !self.sysctls.contains_key(key) {
            return Err(refused(Errno::ENOENT));
        }
        // Every key here is an integer; the kernel reads the first word and takes an empty write as no change.
        let Some(word) = value.split_whitespace().next() else { return Ok(()) };
        let value = word.parse::<i64>().map_err(|_| refused(Errno::EINVAL))?.to_string();
        // Forwarding on for all is forwarding on for each link (and for the ones to come).
        let all = match key {
            "ipv4/ip_forward" | "ipv4/conf/all/forwarding" => Some("ipv4"),
            "ipv6/conf/all/forwarding" => Some("ipv6"),
            _ => None,
        };
        if let Some(family) = all {
            let prefix = format!("{family}/conf/");
            for (k, v) in self.sysctls.iter_mut() {
                if k.strip_prefix(&prefix).is_some_and(|rest| rest.ends_with("/forwarding")) {
                    v.clone_from(&value);
                }
            }
            if family == "ipv4" {
                self.sysctls.insert("ipv4/ip_forward".into(), value);
            }
        } else {
            self.sysctls.insert(key.to_owned(), value);
        }
        Ok(())
    }
}

impl Links for Net {
    async fn link_by_name(&self, name: &str) -> Result<Option<Link>> {
        Ok(self.state().by_name(name).map(|p| p.link.clone()))
    }

    async fn link_by_index(&self, index: u32) -> Result<Option<Link>> {
        Ok(self.state().links.get(&index).map(|p| p.link.clone()))
    }

    async fn set_up(&self, link: &Link, up: bool) -> Result<()> {
        self.state().set_up(link, up)
    }

    async fn set_mtu(&self, link: &Link, mtu: u32) -> Result<()> {
        let op = || format!("set mtu {mtu} on {}", link.name);
        let mut state = self.state();
        let port = state.port(link.index, op)?;
        if !valid_mtu(&port.link.kind, mtu) {
            return Err(refused(op(), Errno::EINVAL));
        }
        port.link.mtu = mtu;
        Ok(())
    }

    async fn set_master(&self, link: &Link, master: &Link) -> Result<()> {
        let op = || format!("attach {} to {}", link.name, master.name);
        let mut state = self.state();
        let master_kind = state.port(master.index, op)?.link.kind.clone();
        let port = state.port(link.index, op)?;
        let errno = if master_kind != "bridge" {
            Errno::EOPNOTSUPP
        } else if port.link.loopback {
            Errno::EINVAL
        } else if port.link.kind == "bridge" {
            // No bridges in bridges (nor a bridge in itself).
            Errno::ELOOP
        } else {
            port.link.master = Some(master.index);
            return Ok(());
        };
        Err(refused(op(), errno))
    }

    async fn set_hairpin(&self, link: &Link, _on: bool) -> Result<()> {
        let op = || format!("hairpin on {}", link.name);
        let mut state = self.state();
        match state.port(link.index, op)?.link.master {
            Some(_) => Ok(()),
            None => Err(refused(op(), Errno::EOPNOTSUPP)),
        }
    }

    async fn set_port_vlan(&self, link: &Link, vid: u16) -> Result<()> {
        let op = || format!("vlan {vid} on {}", link.name);
        let mut state = self.state();
        match state.port(link.index, op)?.link.master {
            None => Err(refused(op(), Errno::EOPNOTSUPP)),
            Some(_) if !(1..4095).contains(&vid) => Err(refused(op(), Errno::EINVAL)),
            Some(_) => Ok(()),
        }
    }

    async fn delete_link(&self, link: &Link) -> Result<()> {
        let peer = self.state().remove(link.index);
        // The peer's namespace is locked only now, this one released: never two at once.
        if let Some((ns, index)) = peer
            && let Some(ns) = ns.upgrade()
        {
            lock(&ns).remove(index);
        }
        Ok(())
    }

    async fn delete_link_unregistered(&self, link: &Link) -> Result<()> {
        self.delete_link(link).await
    }

    async fn ensure_bridge(&self, p: &BridgeParams<'_>) -> Result<Link> {
        let op = || format!("create bridge {}", p.name);
        let mut state = self.state();
        let link = match state.by_name(p.name) {
            Some(port) => port.link.clone(),
            None => {
                let mtu = p.mtu.unwrap_or(1500);
                if !valid_name(p.name) || !valid_mtu("bridge", mtu) {
                    return Err(refused(op(), Errno::EINVAL));
                }
                let index = state.add(p.name, "bridge", mtu, Some(new_mac()), None);
                let port = state.links.get_mut(&index).expect("just added");
                port.link.up = true;
                port.link.clone()
            }
        };
        if link.kind != "bridge" {
            return Err(Error::NotABridge { name: p.name.to_owned(), kind: link.kind });
        }
        Ok(link)
    }
}

impl Namespace for Net {
    type Netns = Net;

    fn connect(netns: &Net) -> Net {
        netns.clone()
    }

    async fn create_veth(&self, peer: &Net, p: &VethParams<'_>) -> Result<()> {
        let op = || format!("create veth {}<->{}", p.host_name, p.container_name);
        let mtu = p.mtu.unwrap_or(1500);
        if !valid_name(p.host_name) || !valid_name(p.container_name) || !valid_mtu("veth", mtu) {
            return Err(refused(op(), Errno::EINVAL));
        }
        if p.container_mac.is_some_and(|m| m.0[0] & 1 == 1 || m.0 == [0; 6]) {
            return Err(refused(op(), Errno::EADDRNOTAVAIL));
        }
        let (mut here, mut there) = self.lock_pair(peer);
        let same = there.is_none();
        let taken = here.by_name(p.host_name).is_some()
            || there.as_deref().unwrap_or(&*here).by_name(p.container_name).is_some()
            || (same && p.host_name == p.container_name);
        if taken {
            return Err(Error::Exists { op: op(), what: Existing::Link, source: refusal(Errno::EEXIST) });
        }
        let host = here.add(p.host_name, "veth", mtu, Some(new_mac()), Some(Arc::downgrade(&peer.ns)));
        let mac = Some(p.container_mac.unwrap_or_else(new_mac));
        let back = Some(Arc::downgrade(&self.ns));
        let far = there.as_deref_mut().unwrap_or(&mut *here);
        let container = far.add(p.container_name, "veth", mtu, mac, back);
        far.links.get_mut(&container).expect("just added").link.peer_index = Some(host);
        let near = here.links.get_mut(&host).expect("just added");
        near.link.peer_index = Some(container);
        near.link.up = true;
        Ok(())
    }
}

impl Addresses for Net {
    /// IPv4 first, each family in the order added.
    async fn addresses(&self, link: &Link) -> Result<Vec<IpNet>> {
        let state = self.state();
        let Some(port) = state.links.get(&link.index) else { return Ok(Vec::new()) };
        let (v4, v6): (Vec<IpNet>, Vec<IpNet>) = port.addresses.iter().partition(|n| n.addr().is_ipv4());
        Ok(v4.into_iter().chain(v6).collect())
    }

    async fn add_address(&self, link: &Link, net: IpNet) -> Result<()> {
        let mut state = self.state();
        let port = state.port(link.index, || format!("add {net} to {}", link.name))?;
        // The kernel's EEXIST, which is success here: the same IPv4 address and
        // prefix, or the same IPv6 address with any prefix.
        let there = |n: &IpNet| n.addr() == net.addr() && (net.addr().is_ipv6() || n.prefix_len() == net.prefix_len());
        if port.addresses.iter().any(there) {
            return Ok(());
        }
        port.addresses.push(net);
        if port.link.up && !port.link.loopback {
            state.add_prefix_route(net, link.index);
        }
        Ok(())
    }

    async fn del_address(&self, link: &Link, net: IpNet) -> Result<()> {
        let mut state = self.state();
        let Some(port) = state.links.get_mut(&link.index) else { return Ok(()) };
        let Some(i) = port.addresses.iter().position(|n| *n == net) else { return Ok(()) };
        port.addresses.remove(i);
        // Its prefix route goes unless another address of the link has that prefix.
        if !port.addresses.iter().any(|n| n.trunc() == net.trunc()) {
            state.routes.retain(|e| !(e.prefix && e.oif == link.index && e.route.dst == net.trunc()));
        }
        Ok(())
    }
}

impl Routes for Net {
    /// IPv4 first, then by table and destination.
    async fn routes(&self) -> Result<Vec<Listed>> {
        let state = self.state();
        let mut out: Vec<Listed> = state
            .routes
            .iter()
            .filter(|e| e.route.table != Some(TABLE_LOCAL))
            .map(|e| {
                // A gateway of the other family (RTA_VIA) is not read back by the listing.
                let gw = e.route.gw.filter(|gw| gw.is_ipv6() == e.route.dst.addr().is_ipv6());
                Listed { route: Route { gw, ..e.route.clone() }, oif: Some(e.oif), onlink: e.onlink }
            })
            .collect();
        out.sort_by_key(|l| (l.route.dst.addr().is_ipv6(), key(&l.route)));
        Ok(out)
    }

    async fn add_route(&self, route: &Route, oif: Option<u32>) -> Result<()> {
        self.state().add_route(route, oif, false, false)
    }

    async fn replace_route(&self, route: &Route, oif: Option<u32>) -> Result<()> {
        self.state().add_route(route, oif, true, false)
    }

    async fn replace_onlink_route(&self, route: &Route, oif: u32) -> Result<()> {
        self.state().add_route(route, Some(oif), true, true)
    }

    async fn del_route(&self, route: &Route, oif: Option<u32>) -> Result<()> {
        self.state().del_route(route, oif)
    }
}

impl Overlay for Net {
    async fn ensure_vtep(&self, p: &VtepParams<'_>) -> Result<Link> {
        let op = || format!("create VTEP {}", p.name);
        let wanted = (p.vni, p.port, p.local, p.underlay);
        let mut state = self.state();
        if !state.links.contains_key(&p.underlay) {
            return Err(refused(op(), Errno::ENODEV));
        }
        if let Some(port) = state.by_name(p.name)
            && port.vxlan.is_none()
        {
            return Err(Error::NotAVtep { name: p.name.to_owned(), kind: port.link.kind.clone() });
        }
        let existing = state.by_name(p.name).map(|port| (port.link.index, port.vxlan));
        let index = match existing {
            Some((index, Some(have))) if have == wanted => index,
            other => {
                if let Some((index, _)) = other {
                    state.remove(index);
                }
                if !valid_name(p.name) {
                    return Err(refused(op(), Errno::EINVAL));
                }
                if p.vni >= 1 << 24 {
                    return Err(refused(op(), Errno::ERANGE));
                }
                let index = state.add(p.name, "vxlan", p.mtu, Some(p.mac), None);
                state.links.get_mut(&index).expect("just added").vxlan = Some(wanted);
                index
            }
        };
        let port = state.links.get_mut(&index).expect("present");
        port.link.mtu = p.mtu;
        port.link.mac = Some(p.mac);
        let link = port.link.clone();
        state.set_up(&link, true)?;
        Ok(state.links[&index].link.clone())
    }

    async fn neighbors(&self, link: &Link) -> Result<Vec<Neighbor>> {
        let mut state = self.state();
        let port = state.port(link.index, || format!("list neighbours of {}", link.name))?;
        Ok(port.neighbors.iter().map(|(ip, mac)| Neighbor { ip: *ip, mac: *mac }).collect())
    }

    async fn set_neighbor(&self, link: &Link, n: &Neighbor) -> Result<()> {
        let mut state = self.state();
        let port = state.port(link.index, || format!("add neighbour {} on {}", n.ip, link.name))?;
        port.neighbors.insert(n.ip, n.mac);
        Ok(())
    }

    async fn del_neighbor(&self, link: &Link, n: &Neighbor) -> Result<()> {
        // As the kernel: nothing to delete on a link that is gone.
        if let Some(port) = self.state().links.get_mut(&link.index) {
            port.neighbors.remove(&n.ip);
        }
        Ok(())
    }

    async fn fdb(&self, link: &Link) -> Result<Vec<Fdb>> {
        let mut state = self.state();
        let port = state.port(link.index, || format!("list the FDB of {}", link.name))?;
        let mut out: Vec<Fdb> = port.fdb.iter().map(|(mac, dst)| Fdb { mac: *mac, dst: *dst }).collect();
        out.sort();
        Ok(out)
    }

    async fn set_fdb(&self, link: &Link, e: &Fdb) -> Result<()> {
        let op = || format!("add FDB entry {} to {} on {}", e.mac, e.dst, link.name);
        let mut state = self.state();
        state.port(link.index, op)?.fdb.insert(e.mac, e.dst);
        Ok(())
    }

    async fn del_fdb(&self, link: &Link, e: &Fdb) -> Result<()> {
        if let Some(port) = self.state().links.get_mut(&link.index)
            && port.fdb.get(&e.mac) == Some(&e.dst)
        {
            port.fdb.remove(&e.mac);
        }
        Ok(())
    }
}

impl Sysctl for Net {
    fn sysctl(&self, key: &str) -> Result<String> {
        self.state().sysctls.get(key).cloned().ok_or_else(|| Error::Sysctl {
            key: key.to_owned(),
            value: None,
            source: std::io::Error::from_raw_os_error(Errno::ENOENT as i32),
        })
    }

    fn set_sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.state().write_sysctl(key, value)
    }
}

/// Masquerade entries in memory, with the claims of the real one: an address
/// belongs to the attachment that added it last, and only its owner's
/// delete removes it.
#[derive(Default)]
pub struct Nat {
    state: Mutex<NatState>,
}

/// A network's records: per attachment (container, ifname), its (source, exclude) entries.
type Records = BTreeMap<(String, String), BTreeSet<(IpAddr, IpNet)>>;

#[derive(Default)]
struct NatState {
    /// Per network, each attachment's entries.
    records: BTreeMap<String, Records>,
    /// The elements there are, (network, exclude, source), and the key of the attachment that owns each.
    elements: BTreeMap<(String, IpNet, IpAddr), String>,
}

impl Nat {
    /// The sources masqueraded in `network` for traffic not bound for `exclude`.
    pub fn elements(&self, network: &str, exclude: IpNet) -> Vec<IpAddr> {
        let exclude = exclude.trunc();
        let state = lock(&self.state);
        state.elements.keys().filter(|(n, e, _)| n == network && *e == exclude).map(|(_, _, s)| *s).collect()
    }
}

impl NatState {
    fn delete(&mut self, network: &str, container_id: &str, ifname: &str, key: &str) {
        let entries =
            self.records.get_mut(network).and_then(|r| r.remove(&(container_id.to_owned(), ifname.to_owned())));
        for (source, exclude) in entries.unwrap_or_default() {
            let element = (network.to_owned(), exclude, source);
            if self.elements.get(&element).is_some_and(|owner| owner == key) {
                self.elements.remove(&element);
            }
        }
    }
}

impl crate::masquerade::Nat for Nat {
    fn add(&self, owner: &Owner, source: IpAddr, exclude: IpNet) -> Result<()> {
        let key = owner.key()?;
        if source.is_ipv4() != exclude.addr().is_ipv4() {
            let e = crate::masquerade::Error::Invalid {
                what: "exclude (other address family than the source)",
                value: exclude.to_string(),
            };
            return Err(e.into());
        }
        let exclude = exclude.trunc();
        let mut state = lock(&self.state);
        let record = (owner.container_id.clone(), owner.ifname.clone());
        state.records.entry(owner.network.clone()).or_default().entry(record).or_default().insert((source, exclude));
        state.elements.insert((owner.network.clone(), exclude, source), key);
        Ok(())
    }

    fn delete(&self, owner: &Owner) -> Result<()> {
        let key = owner.key()?;
        lock(&self.state).delete(&owner.network, &owner.container_id, &owner.ifname, &key);
        Ok(())
    }

    fn gc(&self, network: &str, keep: impl Fn(&str, &str) -> bool) -> Result<()> {
        validate_network(network)?;
        let mut state = lock(&self.state);
        let stale: Vec<(String, String)> = state
            .records
            .get(network)
            .map(|r| r.keys().filter(|(c, i)| !keep(c, i)).cloned().collect())
            .unwrap_or_default();
        for (container_id, ifname) in stale {
            let key = format!("{container_id}:{ifname}");
            state.delete(network, &container_id, &ifname, &key);
        }
        Ok(())
    }
}

/// One network's leases in memory, as the store keeps them on disk.
#[derive(Default)]
pub struct Leases {
    state: Mutex<LeaseState>,
}

#[derive(Default)]
struct LeaseState {
    /// Address -> (container, ifname), both trimmed as the store reads them back.
    leases: BTreeMap<IpAddr, (String, String)>,
    last_reserved: BTreeMap<u32, IpAddr>,
}

impl crate::ipam_store::Leases for Leases {
    fn reserve(&self, ip: IpAddr, container_id: &str, ifname: &str, range_set: u32) -> Result<bool> {
        let mut state = lock(&self.state);
        if state.leases.contains_key(&ip) {
            return Ok(false);
        }
        state.leases.insert(ip, (container_id.trim().to_owned(), ifname.trim().to_owned()));
        state.last_reserved.insert(range_set, ip);
        Ok(true)
    }

    fn last_reserved(&self, range_set: u32) -> Result<Option<IpAddr>> {
        Ok(lock(&self.state).last_reserved.get(&range_set).copied())
    }

    fn list(&self) -> Result<Vec<Lease>> {
        let state = lock(&self.state);
        Ok(state
            .leases
            .iter()
            .map(|(ip, (c, i))| Lease { ip: *ip, container_id: c.clone(), ifname: i.clone() })
            .collect())
    }

    fn release_owner(&self, container_id: &str, ifname: &str) -> Result<Vec<IpAddr>> {
        let mut state = lock(&self.state);
        let ours = |(c, i): &(String, String)| c == container_id.trim() && (i == ifname || i.is_empty());
        let freed: Vec<IpAddr> = state.leases.iter().filter(|&(_, owner)| ours(owner)).map(|(ip, _)| *ip).collect();
        for ip in &freed {
            state.leases.remove(ip);
        }
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use wasmcni_cni::error::CniError;

    fn errno<T: std::fmt::Debug>(r: Result<T>) -> Option<i32> {
        r.unwrap_err().errno()
    }

    #[test]
    fn a_veth_within_one_namespace_goes_as_a_whole() {
        let ns = Net::new();
        block_on(async {
            let same = VethParams { host_name: "a", container_name: "a", mtu: None, container_mac: None };
            assert!(matches!(ns.create_veth(&ns, &same).await, Err(Error::Exists { .. })));
            ns.create_veth(&ns, &VethParams { container_name: "b", ..same }).await.unwrap();
            let (a, b) = (ns.require_link("a").await.unwrap(), ns.require_link("b").await.unwrap());
            assert_eq!((a.peer_index, b.peer_index), (Some(b.index), Some(a.index)));
            ns.delete_link(&b).await.unwrap();
            assert_eq!(ns.link_by_name("a").await.unwrap(), None);
        });
    }

    #[test]
    fn a_bridge_s_ports_are_freed_with_it_and_take_vlans() {
        let ns = Net::new();
        block_on(async {
            let br = ns.ensure_bridge(&BridgeParams { name: "br0", mtu: None, promisc: false, vlan_filtering: true });
            let br = br.await.unwrap();
            let port = ns.add_link("d0", "dummy").unwrap();
            ns.set_master(&port, &br).await.unwrap();
            ns.set_port_vlan(&port, 10).await.unwrap();
            assert_eq!(errno(ns.set_port_vlan(&port, 4095).await), Some(nix::libc::EINVAL));
            ns.delete_link(&br).await.unwrap();
            assert_eq!(ns.require_link("d0").await.unwrap().master, None);
            assert_eq!(errno(ns.set_hairpin(&port, true).await), Some(nix::libc::EOPNOTSUPP));
        });
    }

    #[test]
    fn links_added_by_hand_are_checked_like_any_other() {
        let ns = Net::new();
        let eth0 = ns.add_link("eth0", "dummy").unwrap();
        assert!(!eth0.up && eth0.index > 1 && eth0.mac.is_some());
        assert_eq!(errno(ns.add_link("eth0", "dummy")), Some(nix::libc::EEXIST));
        assert_eq!(errno(ns.add_link("a/b", "dummy")), Some(nix::libc::EINVAL));
        assert_eq!(ns.sysctl("ipv6/conf/eth0/disable_ipv6").unwrap(), "0");
        // Any MTU for a dummy, as the kernel's.
        block_on(ns.set_mtu(&eth0, 9000)).unwrap();
    }

    #[test]
    fn its_refusals_become_the_cni_errors_the_kernel_s_do() {
        let ns = Net::new();
        let gone = block_on(async {
            let l = ns.add_link("eth0", "dummy").unwrap();
            ns.delete_link(&l).await.unwrap();
            ns.set_up(&l, true).await.unwrap_err()
        });
        let e = CniError::from(gone);
        assert_eq!(
            (e.code, e.msg.as_str()),
            (102, "set eth0 up: Received a netlink error message No such device (os error 19)")
        );
        assert_eq!(CniError::from(block_on(ns.require_link("eth9")).unwrap_err()).code, 102);
    }
}
