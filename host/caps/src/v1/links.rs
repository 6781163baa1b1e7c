//! `links`: link handles, and creating, changing and deleting links. A
//! handle is made only for a link in scope (`NetlinkCap` checks the name on
//! the host side), so every later call through it is in scope too.

use super::convert::{link_kind, mac, to_mac};
use super::{Res, State};
use crate::bindings::wasmcni::plugin::links::{self, BridgeSpec, LinkInfo, VethPair, VethSpec};
use crate::netlink::{BridgeParams, LinkView, Side};
use wasmcni_cni::error::{CniError, Code};
use wasmtime::component::Resource;

/// What a `link` handle holds: which netns, and the link's name and index
/// when the handle was made.
#[derive(Debug, Clone)]
pub struct LinkHandle {
    pub side: Side,
    pub name: String,
    pub index: u32,
}

impl LinkHandle {
    fn of(side: Side, v: &LinkView) -> LinkHandle {
        LinkHandle { side, name: v.link.name.clone(), index: v.link.index }
    }

    /// Refuses a host-only operation on a container-side link.
    fn host_only(&self, what: &str) -> Result<(), CniError> {
        match self.side {
            Side::Host => Ok(()),
            Side::Container => {
                Err(CniError::denied(format!("{what} is for host links; {} is a container's", self.name)))
            }
        }
    }
}

fn info(side: Side, v: LinkView) -> LinkInfo {
    LinkInfo {
        kind: link_kind(&v.link),
        name: v.link.name,
        index: v.link.index,
        side: side.into(),
        mac: v.link.mac.map(to_mac),
        mtu: v.link.mtu,
        up: v.link.up,
        master: v.master,
    }
}

impl State {
    /// A handle to the link `name` on `side`, if it exists (and is in scope).
    async fn open(&mut self, side: Side, name: &str) -> Result<Option<Resource<LinkHandle>>, CniError> {
        match self.netlink()?.get_link(side, name).await? {
            Some(v) => Ok(Some(self.hand_out(LinkHandle::of(side, &v))?)),
            None => Ok(None),
        }
    }
}

impl links::HostLink for State {
    async fn name(&mut self, this: Resource<LinkHandle>) -> String {
        self.link(&this).map(|l| l.name).unwrap_or_default()
    }

    async fn index(&mut self, this: Resource<LinkHandle>) -> u32 {
        self.link(&this).map(|l| l.index).unwrap_or_default()
    }

    async fn side(&mut self, this: Resource<LinkHandle>) -> links::Side {
        self.link(&this).map(|l| l.side).unwrap_or(Side::Container).into()
    }

    async fn info(&mut self, this: Resource<LinkHandle>) -> Res<LinkInfo> {
        let l = self.link(&this)?;
        match self.netlink()?.get_link(l.side, &l.name).await? {
            Some(v) => Ok(info(l.side, v)),
            None => Err(CniError::new(Code::Kernel, format!("link {}: no such device", l.name)).into()),
        }
    }

    async fn set_up(&mut self, this: Resource<LinkHandle>, up: bool) -> Res<()> {
        let l = self.link(&this)?;
        Ok(self.netlink()?.set_link_up(l.side, &l.name, up).await?)
    }

    async fn set_mtu(&mut self, this: Resource<LinkHandle>, mtu: u32) -> Res<()> {
        let l = self.link(&this)?;
        Ok(self.netlink()?.set_mtu(l.side, &l.name, mtu).await?)
    }

    async fn set_master(&mut self, this: Resource<LinkHandle>, bridge: Resource<LinkHandle>) -> Res<()> {
        let (l, br) = (self.link(&this)?, self.link(&bridge)?);
        l.host_only("set-master")?;
        br.host_only("set-master")?;
        Ok(self.netlink()?.set_master(&l.name, &br.name).await?)
    }

    async fn set_hairpin(&mut self, this: Resource<LinkHandle>, on: bool) -> Res<()> {
        let l = self.link(&this)?;
        l.host_only("set-hairpin")?;
        Ok(self.netlink()?.set_hairpin(&l.name, on).await?)
    }

    async fn set_port_vlan(&mut self, this: Resource<LinkHandle>, vid: u16) -> Res<()> {
        let l = self.link(&this)?;
        l.host_only("set-port-vlan")?;
        Ok(self.netlink()?.set_port_vlan(&l.name, vid).await?)
    }

    async fn delete(&mut self, this: Resource<LinkHandle>) -> Res<()> {
        let l = self.take_back(this)?;
        Ok(self.netlink()?.delete_link(l.side, &l.name).await?)
    }

    async fn drop(&mut self, this: Resource<LinkHandle>) -> wasmtime::Result<()> {
        self.take_back(this)?;
        Ok(())
    }
}

impl links::Host for State {
    async fn ensure_bridge(&mut self, spec: BridgeSpec) -> Res<Resource<LinkHandle>> {
        let params = BridgeParams {
            name: &spec.name,
            mtu: spec.mtu,
            promisc: spec.promisc,
            vlan_filtering: spec.vlan_filtering,
        };
        let v = self.netlink()?.ensure_bridge(&params).await?;
        Ok(self.hand_out(LinkHandle::of(Side::Host, &v))?)
    }

    async fn create_veth(&mut self, spec: VethSpec) -> Res<VethPair> {
        let container_mac = spec.container_mac.map(mac);
        let (host, container) = self.netlink()?.create_veth(&spec.container_ifname, spec.mtu, container_mac).await?;
        Ok(VethPair {
            host: self.hand_out(LinkHandle::of(Side::Host, &host))?,
            container: self.hand_out(LinkHandle::of(Side::Container, &container))?,
        })
    }

    async fn open_host_link(&mut self, name: String) -> Res<Option<Resource<LinkHandle>>> {
        Ok(self.open(Side::Host, &name).await?)
    }

    async fn open_container_link(&mut self, name: String) -> Res<Option<Resource<LinkHandle>>> {
        Ok(self.open(Side::Container, &name).await?)
    }

    async fn veth_peer(&mut self, container_end: Resource<LinkHandle>) -> Res<Option<Resource<LinkHandle>>> {
        let l = self.link(&container_end)?;
        if l.side != Side::Container {
            return Err(CniError::config(format!("veth-peer takes a container link; {} is a host one", l.name)).into());
        }
        match self.netlink()?.veth_peer(&l.name).await? {
            Some(v) => Ok(Some(self.hand_out(LinkHandle::of(Side::Host, &v))?)),
            None => Ok(None),
        }
    }
}
