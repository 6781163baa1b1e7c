//! A VXLAN overlay as flannel's vxlan backend programs it: a tunnel endpoint
//! (VTEP) without learning, and per peer a permanent neighbour entry (the
//! peer's overlay address → its VTEP's MAC) and an FDB entry (that MAC → the
//! peer's underlay address), so the kernel encapsulates without flooding or
//! asking.

use crate::link::{Link, Links, exists, message_by_name, no_such_entry};
use crate::netns::Kernel;
use crate::{Error, Result};
use futures::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::link::{InfoData, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::{Handle, LinkVxlan};
use std::net::IpAddr;
use wasmcni_cni::Mac;

/// The VTEP to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VtepParams<'a> {
    pub name: &'a str,
    pub vni: u32,
    /// The UDP port (8472 is the kernel's and flannel's default).
    pub port: u16,
    /// This node's underlay address, the tunnels' source.
    pub local: IpAddr,
    /// The underlay link's index.
    pub underlay: u32,
    pub mtu: u32,
    /// Stable across restarts, so peers' entries for this node stay right.
    pub mac: Mac,
}

/// A permanent neighbour entry on the VTEP: `ip` is at `mac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Neighbor {
    pub ip: IpAddr,
    pub mac: Mac,
}

/// A forwarding entry on the VTEP: frames for `mac` go to `dst` on the underlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fdb {
    pub mac: Mac,
    pub dst: IpAddr,
}

/// What a namespace does with its overlay.
pub trait Overlay: Links {
    /// The VTEP `p` describes, up: created if missing, recreated if its VNI,
    /// port, local address or underlay differ, its MTU and MAC set.
    fn ensure_vtep(&self, p: &VtepParams<'_>) -> impl Future<Output = Result<Link>> + Send;

    /// The permanent neighbour entries on `link`.
    fn neighbors(&self, link: &Link) -> impl Future<Output = Result<Vec<Neighbor>>> + Send;

    /// Adds `n`, replacing an entry for the same address.
    fn set_neighbor(&self, link: &Link, n: &Neighbor) -> impl Future<Output = Result<()>> + Send;

    /// Removes the entry for `n.ip`; none there is not an error.
    fn del_neighbor(&self, link: &Link, n: &Neighbor) -> impl Future<Output = Result<()>> + Send;

    /// The permanent FDB entries with a destination on `link`.
    fn fdb(&self, link: &Link) -> impl Future<Output = Result<Vec<Fdb>>> + Send;

    /// Adds `e`, replacing the entry for the same MAC.
    fn set_fdb(&self, link: &Link, e: &Fdb) -> impl Future<Output = Result<()>> + Send;

    /// Removes `e`; none there is not an error.
    fn del_fdb(&self, link: &Link, e: &Fdb) -> impl Future<Output = Result<()>> + Send;
}

/// What the kernel says of a VXLAN link: (VNI, port, local address, underlay).
fn vxlan_of(msg: &LinkMessage) -> Option<(u32, u16, Option<IpAddr>, Option<u32>)> {
    let data = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Data(InfoData::Vxlan(v)) => Some(v),
            _ => None,
        }),
        _ => None,
    })?;
    let (mut vni, mut port, mut local, mut dev) = (None, 8472, None, None);
    for info in data {
        match info {
            InfoVxlan::Id(id) => vni = Some(*id),
            InfoVxlan::Port(p) => port = *p,
            InfoVxlan::Local(a) => local = Some(IpAddr::V4(*a)),
            InfoVxlan::Local6(a) => local = Some(IpAddr::V6(*a)),
            InfoVxlan::Link(i) => dev = Some(*i),
            _ => {}
        }
    }
    Some((vni?, port, local, dev))
}

fn neighbor_message(link: &Link, family: AddressFamily) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = family;
    m.header.ifindex = link.index;
    m
}

fn address(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }
}

fn ip_of(a: &NeighbourAddress) -> Option<IpAddr> {
    match a {
        NeighbourAddress::Inet(a) => Some((*a).into()),
        NeighbourAddress::Inet6(a) => Some((*a).into()),
        // An FDB entry's destination comes in a bridge-family message, as bytes.
        NeighbourAddress::Other(b) => match b.len() {
            4 => <[u8; 4]>::try_from(b.as_slice()).ok().map(IpAddr::from),
            16 => <[u8; 16]>::try_from(b.as_slice()).ok().map(IpAddr::from),
            _ => None,
        },
        _ => None,
    }
}

/// (destination, link-layer address) of a permanent entry on `index`.
fn entry_of(m: &NeighbourMessage, index: u32) -> Option<(IpAddr, Mac)> {
    if m.header.ifindex != index || m.header.state != NeighbourState::Permanent {
        return None;
    }
    let (mut ip, mut mac) = (None, None);
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(d) => ip = ip_of(d),
            NeighbourAttribute::LinkLayerAddress(l) => mac = <[u8; 6]>::try_from(l.as_slice()).ok().map(Mac),
            _ => {}
        }
    }
    Some((ip?, mac?))
}

async fn dump(h: &Handle, family: AddressFamily, op: &str) -> Result<Vec<NeighbourMessage>> {
    h.neighbours()
        .get()
        .set_address_family(family)
        .execute()
        .try_collect()
        .await
        .map_err(|source| Error::Netlink { op: op.to_owned(), source })
}

async fn del(h: &Handle, m: NeighbourMessage, op: impl FnOnce() -> String) -> Result<()> {
    match h.neighbours().del(m).execute().await {
        Err(source) if !no_such_entry(&source) => Err(Error::Netlink { op: op(), source }),
        _ => Ok(()),
    }
}

impl Overlay for Kernel {
    async fn ensure_vtep(&self, p: &VtepParams<'_>) -> Result<Link> {
        let h = self.handle().await?;
        if let Some(m) = message_by_name(h, p.name).await? {
            let link = crate::link::to_link(&m);
            if link.kind != "vxlan" {
                return Err(Error::NotAVtep { name: p.name.to_owned(), kind: link.kind });
            }
            let wanted = (p.vni, p.port, Some(p.local), Some(p.underlay));
            if vxlan_of(&m) != Some(wanted) {
                tracing::info!("{} is not the VTEP wanted ({wanted:?}): recreating it", p.name);
                self.delete_link(&link).await?;
            }
        }
        if message_by_name(h, p.name).await?.is_none() {
            let b = LinkVxlan::new(p.name, p.vni).dev(p.underlay).port(p.port).learning(false);
            let b = match p.local {
                IpAddr::V4(a) => b.local(a),
                IpAddr::V6(a) => b.local6(a),
            };
            match h.link().add(b.mtu(p.mtu).address(p.mac.0.to_vec()).up().build()).execute().await {
                Ok(()) => {}
                // Created meanwhile by another caller, unless another device holds this VNI and port.
                Err(e) if exists(&e) && message_by_name(h, p.name).await?.is_some() => {}
                Err(source) => {
                    let op = format!(
                        "create VTEP {} (VNI {}, port {}; another VXLAN device may hold them)",
                        p.name, p.vni, p.port
                    );
                    return Err(Error::Netlink { op, source });
                }
            }
        }
        let link = self.require_link(p.name).await?;
        if link.mtu != p.mtu {
            self.set_mtu(&link, p.mtu).await?;
        }
        if link.mac != Some(p.mac) {
            let msg = rtnetlink::LinkUnspec::new_with_index(link.index).address(p.mac.0.to_vec()).build();
            h.link()
                .set(msg)
                .execute()
                .await
                .map_err(|source| Error::Netlink { op: format!("set the MAC of {}", p.name), source })?;
        }
        if !link.up {
            self.set_up(&link, true).await?;
        }
        self.require_link(p.name).await
    }

    async fn neighbors(&self, link: &Link) -> Result<Vec<Neighbor>> {
        let h = self.handle().await?;
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let msgs = dump(h, family, &format!("list neighbours of {}", link.name)).await?;
            out.extend(msgs.iter().filter_map(|m| entry_of(m, link.index)).map(|(ip, mac)| Neighbor { ip, mac }));
        }
        out.sort();
        Ok(out)
    }

    async fn set_neighbor(&self, link: &Link, n: &Neighbor) -> Result<()> {
        let h = self.handle().await?;
        h.neighbours()
            .add(link.index, n.ip)
            .link_layer_address(&n.mac.0)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(|source| Error::Netlink {
                op: format!("add neighbour {} at {} on {}", n.ip, n.mac, link.name),
                source,
            })
    }

    async fn del_neighbor(&self, link: &Link, n: &Neighbor) -> Result<()> {
        let family = if n.ip.is_ipv6() { AddressFamily::Inet6 } else { AddressFamily::Inet };
        let mut m = neighbor_message(link, family);
        m.attributes.push(NeighbourAttribute::Destination(address(n.ip)));
        del(self.handle().await?, m, || format!("delete neighbour {} on {}", n.ip, link.name)).await
    }

    async fn fdb(&self, link: &Link) -> Result<Vec<Fdb>> {
        let msgs = dump(self.handle().await?, AddressFamily::Bridge, &format!("list the FDB of {}", link.name)).await?;
        let mut out: Vec<Fdb> =
            msgs.iter().filter_map(|m| entry_of(m, link.index)).map(|(dst, mac)| Fdb { mac, dst }).collect();
        out.sort();
        Ok(out)
    }

    async fn set_fdb(&self, link: &Link, e: &Fdb) -> Result<()> {
        let h = self.handle().await?;
        h.neighbours()
            .add_bridge(link.index, &e.mac.0)
            .destination(e.dst)
            .flags(NeighbourFlags::Own)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(|source| Error::Netlink {
                op: format!("add FDB entry {} to {} on {}", e.mac, e.dst, link.name),
                source,
            })
    }

    async fn del_fdb(&self, link: &Link, e: &Fdb) -> Result<()> {
        let mut m = neighbor_message(link, AddressFamily::Bridge);
        m.header.flags = NeighbourFlags::Own;
        m.attributes.push(NeighbourAttribute::LinkLayerAddress(e.mac.0.to_vec()));
        m.attributes.push(NeighbourAttribute::Destination(address(e.dst)));
        del(self.handle().await?, m, || format!("delete FDB entry {} on {}", e.mac, link.name)).await
    }
}
