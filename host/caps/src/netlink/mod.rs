//! The netlink capability: links, addresses, routes, sysctl and masquerade,
//! scoped to one invocation. Container-side calls act on the netns the host
//! opened from CNI_NETNS; host-side calls may touch only the bridge the config
//! names, links created in this call, host links named in prevResult, and the
//! host ends of the container's own veths.

use ipnet::IpNet;
pub use link::{BridgeParams, Link};
use sha2::Digest;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use wasmcni_cni::Mac;
use wasmcni_cni::error::CniError;
use wasmcni_cni::result::Route;
use wasmcni_kernel::link;
use wasmcni_kernel::masquerade::{Masquerade, Nat};
use wasmcni_kernel::netns::{Kernel, Namespace};
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

/// The capability over the kernel's namespaces (`N`) and masquerade (`M`);
/// the fakes stand in for both in tests.
pub struct NetlinkCap<N: Namespace = Kernel, M: Nat = Masquerade> {
    owner: Owner,
    masquerade: Arc<M>,
    host: N,
    /// The container's netns as opened, and the namespace reached through it.
    netns: Option<(N::Netns, N)>,
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

impl<N: Namespace, M: Nat> NetlinkCap<N, M> {
    /// `host`: the host's namespace; `netns`: the container's, if open;
    /// `declared`: the host links the config declares and prevResult lists;
    /// `early_delete`: the process outlives the call (the daemon), see
    /// [`Links::delete_link_unregistered`].
    pub fn new(
        owner: Owner,
        masquerade: Arc<M>,
        host: N,
        netns: Option<N::Netns>,
        declared: Vec<String>,
        early_delete: bool,
    ) -> Self {
        NetlinkCap {
            owner,
            masquerade,
            host,
            netns: netns.map(|ns| {
                let reached = N::connect(&ns);
                (ns, reached)
            }),
            scope: HostLinks::new(declared),
            known: HashMap::new(),
            early_delete,
            journal: Journal::default(),
        }
    }

    fn container(&self) -> Result<&(N::Netns, N), CniError> {
        self.netns.as_ref().ok_or_else(|| CniError::env("this call has no container netns (CNI_NETNS absent or gone)"))
    }

    fn on(&self, side: Side) -> Result<&N, CniError> {
        match side {
            Side::Host => Ok(&self.host),
            Side::Container => Ok(&self.container()?.1),
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
        let l = self.on(side)?.require_link(name).await?;
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
            Some(i) => self.on(side)?.link_by_index(i).await?.map(|m| m.name),
            None => None,
        };
        Ok(LinkView { link, master })
    }

    pub async fn ensure_bridge(&mut self, params: &BridgeParams<'_>) -> Result<LinkView, CniError> {
        self.allow_host(params.name)?;
        wasmcni_cni::env::validate_ifname(params.name).map_err(|e| CniError::config(e.msg))?;
        let l = self.host.ensure_bridge(params).await?;
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
        self.host.create_veth(&self.container()?.0, &params).await?;
        self.journal.created.push(host_name.clone());
        self.scope.add(&host_name);
        let host = self.fresh(Side::Host, &host_name).await?;
        let container = self.fresh(Side::Container, container_ifname).await?;
        Ok((self.info(Side::Host, host).await?, self.info(Side::Container, container).await?))
    }

    pub async fn set_master(&mut self, name: &str, bridge: &str) -> Result<(), CniError> {
        let l = self.link(Side::Host, name).await?;
        let br = self.link(Side::Host, bridge).await?;
        Ok(self.host.set_master(&l, &br).await?)
    }

    pub async fn set_hairpin(&mut self, name: &str, on: bool) -> Result<(), CniError> {
        let l = self.link(Side::Host, name).await?;
        Ok(self.host.set_hairpin(&l, on).await?)
    }

    pub async fn set_port_vlan(&mut self, name: &str, vid: u16) -> Result<(), CniError> {
        wasmcni_scope::vlan(vid)?;
        let l = self.link(Side::Host, name).await?;
        Ok(self.host.set_port_vlan(&l, vid).await?)
    }

    pub async fn set_link_up(&mut self, side: Side, name: &str, up: bool) -> Result<(), CniError> {
        let l = self.link(side, name).await?;
        Ok(self.on(side)?.set_up(&l, up).await?)
    }

    pub async fn set_mtu(&mut self, side: Side, name: &str, mtu: u32) -> Result<(), CniError> {
        let l = self.link(side, name).await?;
        Ok(self.on(side)?.set_mtu(&l, mtu).await?)
    }

    pub async fn get_link(&mut self, side: Side, name: &str) -> Result<Option<LinkView>, CniError> {
        if side == Side::Host {
            self.allow_host(name)?;
        }
        match self.on(side)?.link_by_name(name).await? {
            Some(l) => Ok(Some(self.info(side, l).await?)),
            None => Ok(None),
        }
    }

    pub async fn delete_link(&mut self, side: Side, name: &str) -> Result<(), CniError> {
        if side == Side::Host {
            self.allow_host(name)?;
        }
        self.known.remove(&(side == Side::Container, name.to_owned()));
        let on = self.on(side)?;
        let Some(l) = on.link_by_name(name).await? else {
            return Ok(());
        };
        if self.early_delete { Ok(on.delete_link_unregistered(&l).await?) } else { Ok(on.delete_link(&l).await?) }
    }

    pub async fn veth_peer(&mut self, container_link: &str) -> Result<Option<LinkView>, CniError> {
        let Some(l) = self.on(Side::Container)?.link_by_name(container_link).await? else {
            return Ok(None);
        };
        let Some(peer) = l.peer_index else {
            return Ok(None);
        };
        let Some(host) = self.host.link_by_index(peer).await? else {
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
        Ok(self.on(side)?.add_address(&l, net).await?)
    }

    pub async fn del_address(&mut self, side: Side, name: &str, net: IpNet) -> Result<(), CniError> {
        let l = self.link(side, name).await?;
        Ok(self.on(side)?.del_address(&l, net).await?)
    }

    pub async fn list_addresses(&mut self, side: Side, name: &str) -> Result<Vec<IpNet>, CniError> {
        let l = self.link(side, name).await?;
        Ok(self.on(side)?.addresses(&l).await?)
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
        let on = self.on(side)?;
        Ok(match op {
            RouteOp::Add => on.add_route(route, oif).await,
            RouteOp::Replace => on.replace_route(route, oif).await,
            RouteOp::Delete => on.del_route(route, oif).await,
        }?)
    }

    pub async fn list_routes(&mut self, side: Side, dev: Option<&str>) -> Result<Vec<RouteView>, CniError> {
        let filter = self.route_dev(side, dev).await?;
        let on = self.on(side)?;
        let mut out = Vec::new();
        for listed in on.routes().await? {
            if filter.is_some() && listed.oif != filter {
                continue;
            }
            let dev = match listed.oif {
                Some(i) => on.link_by_index(i).await?.map(|l| l.name),
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
        Ok(self.on(side)?.set_sysctl(key, value)?)
    }

    pub fn sysctl_get(&self, side: Side, key: &str) -> Result<String, CniError> {
        let key = self.sysctl_key(side, key)?;
        Ok(self.on(side)?.sysctl(key)?)
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
            if let Ok(Some(l)) = self.host.link_by_name(&name).await
                && let Err(e) = self.host.delete_link(&l).await
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

#[cfg(test)]
mod tests;
