//! The netlink capability: links, addresses, routes, sysctl and masquerade,
//! scoped to one invocation. Container-side calls act on the netns the host
//! opened from CNI_NETNS; host-side calls may touch only the bridge the config
//! names, links created in this call, host links named in prevResult, and the
//! host ends of the container's own veths.

use ipnet::IpNet;
pub use link::{BridgeParams, Link};
use rtnetlink::Handle;
use sha2::Digest;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use wasmcni_cni::Mac;
use wasmcni_cni::error::CniError;
use wasmcni_cni::result::Route;
use wasmcni_kernel::masquerade::Masquerade;
use wasmcni_kernel::netns::{self, Netns};
use wasmcni_kernel::{addr, link, route, sysctl};
use wasmcni_scope::HostLinks;

/// Who the call is for (network, container, ifname): names host links and
/// owns masquerade entries.
pub use wasmcni_kernel::masquerade::Owner;

/// Where a kernel call acts: the host's netns or the invocation's container netns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Host,
    Container,
}

/// A link as a plugin learns about it: the kernel's view and its master's name.
#[derive(Debug, Clone)]
pub struct LinkView {
    pub link: Link,
    pub master: Option<String>,
}

/// A route as listed, with the name of its device.
#[derive(Debug, Clone)]
pub struct RouteView {
    pub route: Route,
    pub dev: Option<String>,
}

/// What this call created on the host, to undo if the call fails.
#[derive(Debug, Default)]
pub struct Journal {
    pub created: Vec<String>,
    pub masquerade: bool,
}

pub struct NetlinkCap {
    owner: Owner,
    masquerade: Arc<Masquerade>,
    host: Handle,
    netns: Option<Netns>,
    container: Option<Handle>,
    scope: HostLinks,
    /// Links resolved by name in this call, keyed by (in container, name).
    /// Only their name and index are relied on: neither changes while the
    /// call runs, and it saves a netlink round trip per operation.
    known: HashMap<(bool, String), Link>,
    /// Whether a deletion may return once the link is gone, leaving the
    /// kernel's cleanup to finish in this (long-lived) process.
    early_delete: bool,
    pub journal: Journal,
}

impl NetlinkCap {
    /// `declared`: the host links the config declares and prevResult lists;
    /// `early_delete`: the process outlives the call (the daemon), see
    /// [`link::delete_unregistered`].
    pub fn new(
        owner: Owner,
        masquerade: Arc<Masquerade>,
        netns: Option<Netns>,
        declared: Vec<String>,
        early_delete: bool,
    ) -> Result<Self, CniError> {
        Ok(NetlinkCap {
            owner,
            masquerade,
            host: netns::connect(None)?,
            netns,
            container: None,
            scope: HostLinks::new(declared),
            known: HashMap::new(),
            early_delete,
            journal: Journal::default(),
        })
    }

    fn netns(&self) -> Result<&Netns, CniError> {
        self.netns.as_ref().ok_or_else(|| CniError::env("this call has no container netns (CNI_NETNS absent or gone)"))
    }

    async fn handle(&mut self, side: Side) -> Result<&Handle, CniError> {
        match side {
            Side::Host => Ok(&self.host),
            Side::Container => {
                if self.container.is_none() {
                    self.container = Some(netns::connect(Some(self.netns()?))?);
                }
                Ok(self.container.as_ref().expect("just set"))
            }
        }
    }

    fn allow_host(&self, name: &str) -> Result<(), CniError> {
        self.scope.check(name)
    }

    /// Resolves a link's name and index on `side`, enforcing the host-side scope.
    async fn link(&mut self, side: Side, name: &str) -> Result<Link, CniError> {
        if side == Side::Host {
            self.allow_host(name)?;
        }
        let key = (side == Side::Container, name.to_owned());
        if let Some(l) = self.known.get(&key) {
            return Ok(l.clone());
        }
        let l = link::require(self.handle(side).await?, name).await?;
        self.known.insert(key, l.clone());
        Ok(l)
    }

    /// A link as the kernel reports it now (MAC, MTU, state, master).
    async fn fresh(&mut self, side: Side, name: &str) -> Result<Link, CniError> {
        self.known.remove(&(side == Side::Container, name.to_owned()));
        self.link(side, name).await
    }

    async fn info(&mut self, side: Side, link: Link) -> Result<LinkView, CniError> {
        let master = match link.master {
            Some(i) => link::by_index(self.handle(side).await?, i).await?.map(|m| m.name),
            None => None,
        };
        Ok(LinkView { link, master })
    }

    pub async fn ensure_bridge(&mut self, params: &BridgeParams<'_>) -> Result<LinkView, CniError> {
        self.allow_host(params.name)?;
        wasmcni_cni::env::validate_ifname(params.name).map_err(|e| CniError::config(e.msg))?;
        let l = link::ensure_bridge(&self.host, params).await?;
        self.known.insert((false, l.name.clone()), l.clone());
        self.info(Side::Host, l).await
    }

    /// Host end name: stable per (network, container, ifname), so a retry finds it.
    fn host_veth_name(&self, container_ifname: &str) -> String {
        let digest =
            sha2::Sha256::digest(format!("{}/{}/{}", self.owner.network, self.owner.container_id, container_ifname));
        format!("veth{}", &hex::encode(digest)[..8])
    }

    /// Creates a veth pair for `container_ifname`; returns (host end, container end).
    pub async fn create_veth(
        &mut self,
        container_ifname: &str,
        mtu: Option<u32>,
        container_mac: Option<Mac>,
    ) -> Result<(LinkView, LinkView), CniError> {
        wasmcni_cni::env::validate_ifname(container_ifname)?;
        let host_name = self.host_veth_name(container_ifname);
        let params = link::VethParams { host_name: &host_name, container_name: container_ifname, mtu, container_mac };
        link::create_veth(&self.host, self.netns()?.file(), &params).await?;
        self.journal.created.push(host_name.clone());
        self.scope.add(&host_name);
        let host = self.fresh(Side::Host, &host_name).await?;
        let container = self.fresh(Side::Container, container_ifname).await?;
        Ok((self.info(Side::Host, host).await?, self.info(Side::Container, container).await?))
    }

    pub async fn set_master(&mut self, name: &str, bridge: &str) -> Result<(), CniError> {
        let l = self.link(Side::Host, name).await?;
        let br = self.link(Side::Host, bridge).await?;
        link::set_master(&self.host, &l, &br).await
    }

    pub async fn set_hairpin(&mut self, name: &str, on: bool) -> Result<(), CniError> {
        let l = self.link(Side::Host, name).await?;
        link::set_hairpin(&self.host, &l, on).await
    }

    pub async fn set_port_vlan(&mut self, name: &str, vid: u16) -> Result<(), CniError> {
        wasmcni_scope::vlan(vid)?;
        let l = self.link(Side::Host, name).await?;
        link::set_port_vlan(&self.host, &l, vid).await
    }

    pub async fn set_link_up(&mut self, side: Side, name: &str, up: bool) -> Result<(), CniError> {
        let l = self.link(side, name).await?;
        link::set_up(self.handle(side).await?, &l, up).await
    }

    pub async fn set_mtu(&mut self, side: Side, name: &str, mtu: u32) -> Result<(), CniError> {
        let l = self.link(side, name).await?;
        link::set_mtu(self.handle(side).await?, &l, mtu).await
    }

    pub async fn get_link(&mut self, side: Side, name: &str) -> Result<Option<LinkView>, CniError> {
        if side == Side::Host {
            self.allow_host(name)?;
        }
        match link::by_name(self.handle(side).await?, name).await? {
            Some(l) => Ok(Some(self.info(side, l).await?)),
            None => Ok(None),
        }
    }

    pub async fn delete_link(&mut self, side: Side, name: &str) -> Result<(), CniError> {
        if side == Side::Host {
            self.allow_host(name)?;
        }
        self.known.remove(&(side == Side::Container, name.to_owned()));
        let Some(l) = link::by_name(self.handle(side).await?, name).await? else {
            return Ok(());
        };
        if !self.early_delete {
            return link::delete(self.handle(side).await?, &l).await;
        }
        let ns = match side {
            Side::Host => None,
            Side::Container => Some(self.netns()?),
        };
        let events = netns::link_events(ns)?;
        link::delete_unregistered(self.handle(side).await?, events, &l).await
    }

    pub async fn veth_peer(&mut self, container_link: &str) -> Result<Option<LinkView>, CniError> {
        let Some(l) = link::by_name(self.handle(Side::Container).await?, container_link).await? else {
            return Ok(None);
        };
        let Some(peer) = l.peer_index else {
            return Ok(None);
        };
        let Some(host) = link::by_index(&self.host, peer).await? else {
            return Ok(None);
        };
        // The index is only meaningful if that host veth points back at us:
        // the peer might live in another netns, where indexes collide.
        if host.kind != "veth" || host.peer_index != Some(l.index) {
            return Ok(None);
        }
        self.scope.add(&host.name);
        Ok(Some(self.info(Side::Host, host).await?))
    }

    pub async fn add_address(&mut self, side: Side, name: &str, net: IpNet) -> Result<(), CniError> {
        let l = self.link(side, name).await?;
        addr::add(self.handle(side).await?, &l, net).await
    }

    pub async fn del_address(&mut self, side: Side, name: &str, net: IpNet) -> Result<(), CniError> {
        let l = self.link(side, name).await?;
        addr::del(self.handle(side).await?, &l, net).await
    }

    pub async fn list_addresses(&mut self, side: Side, name: &str) -> Result<Vec<IpNet>, CniError> {
        let l = self.link(side, name).await?;
        addr::list(self.handle(side).await?, &l).await
    }

    /// Host-side routes must name a device in scope; container-side ones need not.
    async fn route_dev(&mut self, side: Side, dev: Option<&str>) -> Result<Option<u32>, CniError> {
        match dev {
            Some(name) => Ok(Some(self.link(side, name).await?.index)),
            None if side == Side::Host => Err(CniError::denied("host-side routes must name a device")),
            None => Ok(None),
        }
    }

    pub async fn change_route(
        &mut self,
        side: Side,
        dev: Option<&str>,
        route: &Route,
        op: RouteOp,
    ) -> Result<(), CniError> {
        let oif = self.route_dev(side, dev).await?;
        if side == Side::Host {
            wasmcni_scope::host_route(route)?;
        }
        let h = self.handle(side).await?;
        match op {
            RouteOp::Add => route::add(h, route, oif, false).await,
            RouteOp::Replace => route::add(h, route, oif, true).await,
            RouteOp::Delete => route::del(h, route, oif).await,
        }
    }

    pub async fn list_routes(&mut self, side: Side, dev: Option<&str>) -> Result<Vec<RouteView>, CniError> {
        let filter = self.route_dev(side, dev).await?;
        let h = self.handle(side).await?.clone();
        let mut out = Vec::new();
        for listed in route::list(&h).await? {
            if filter.is_some() && listed.oif != filter {
                continue;
            }
            let dev = match listed.oif {
                Some(i) => link::by_index(&h, i).await?.map(|l| l.name),
                None => None,
            };
            out.push(RouteView { route: listed.route, dev });
        }
        Ok(out)
    }

    /// Checks a sysctl key against the allow-list and this call's scope.
    fn sysctl_key<'k>(&self, side: Side, key: &'k str) -> Result<&'k str, CniError> {
        if let (Side::Host, wasmcni_scope::sysctl::Key::Link(name)) = (side, wasmcni_scope::sysctl::parse_key(key)?) {
            self.allow_host(name)?;
        }
        Ok(key)
    }

    pub fn sysctl_set(&self, side: Side, key: &str, value: &str) -> Result<(), CniError> {
        wasmcni_scope::sysctl::value(value)?;
        let key = self.sysctl_key(side, key)?;
        match side {
            Side::Host => sysctl::write(key, value),
            Side::Container => {
                let (key, value) = (key.to_owned(), value.to_owned());
                self.netns()?.run(move || sysctl::write(&key, &value))
            }
        }
    }

    pub fn sysctl_get(&self, side: Side, key: &str) -> Result<String, CniError> {
        let key = self.sysctl_key(side, key)?;
        match side {
            Side::Host => sysctl::read(key),
            Side::Container => {
                let key = key.to_owned();
                self.netns()?.run(move || sysctl::read(&key))
            }
        }
    }

    pub fn masquerade_add(&mut self, source: IpAddr, exclude: IpNet) -> Result<(), CniError> {
        // Journaled first: an add that fails halfway is still undone.
        self.journal.masquerade = true;
        Ok(self.masquerade.add(&self.owner, source, exclude)?)
    }

    pub fn masquerade_del(&self) -> Result<(), CniError> {
        Ok(self.masquerade.delete(&self.owner)?)
    }

    /// `keep`: container IDs whose entries stay, on any ifname.
    pub fn masquerade_gc(&self, keep: &[String]) -> Result<(), CniError> {
        let keep: HashSet<&str> = keep.iter().map(String::as_str).collect();
        Ok(self.masquerade.gc(&self.owner.network, |container, _| keep.contains(container))?)
    }

    /// Removes what this call created: the host veths (their container ends
    /// go with them) and its masquerade rules.
    pub async fn undo(&mut self) {
        for name in std::mem::take(&mut self.journal.created) {
            if let Ok(Some(l)) = link::by_name(&self.host, &name).await
                && let Err(e) = link::delete(&self.host, &l).await
            {
                tracing::warn!("undo: {e}");
            }
        }
        if self.journal.masquerade
            && let Err(e) = self.masquerade_del()
        {
            tracing::warn!("undo: {e}");
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum RouteOp {
    Add,
    Replace,
    Delete,
}
