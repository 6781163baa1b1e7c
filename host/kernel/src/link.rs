//! Link requests over one rtnetlink handle.

use crate::netns::LinkEvents;
use futures::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{
    BridgeVlanInfoFlags, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkBridgeVlan, LinkMessageBuilder, LinkUnspec};
use std::os::fd::AsRawFd;
use wasmcni_cni::Mac;
use wasmcni_cni::error::CniError;

/// What a plugin learns about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    /// None for links without an Ethernet address (tun, wireguard, ...).
    pub mac: Option<Mac>,
    pub mtu: u32,
    pub up: bool,
    pub loopback: bool,
    /// The kernel's IFLA_INFO_KIND (`bridge`, `veth`, ...); empty for a plain device.
    pub kind: String,
    pub master: Option<u32>,
    /// IFLA_LINK: for a veth, the peer's index in the other netns.
    pub peer_index: Option<u32>,
}

fn to_link(msg: &LinkMessage) -> Link {
    let mut link = Link {
        name: String::new(),
        index: msg.header.index,
        mac: None,
        mtu: 0,
        up: msg.header.flags.contains(LinkFlags::Up),
        loopback: msg.header.flags.contains(LinkFlags::Loopback),
        kind: String::new(),
        master: None,
        peer_index: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(a.as_slice()).ok().map(Mac),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::Controller(i) => link.master = Some(*i),
            LinkAttribute::Link(i) => link.peer_index = Some(*i),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let NlLinkInfo::Kind(kind) = info {
                        link.kind = kind.to_string();
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

pub fn not_found(e: &rtnetlink::Error) -> bool {
    is_errno(e, libc_errno::ENODEV) || is_errno(e, libc_errno::ENOENT)
}

pub fn exists(e: &rtnetlink::Error) -> bool {
    is_errno(e, libc_errno::EEXIST)
}

pub fn no_such_entry(e: &rtnetlink::Error) -> bool {
    is_errno(e, libc_errno::ESRCH) || is_errno(e, libc_errno::EADDRNOTAVAIL) || not_found(e)
}

/// errno values the kernel answers with.
pub mod libc_errno {
    pub const ENOENT: i32 = nix::errno::Errno::ENOENT as i32;
    pub const ESRCH: i32 = nix::errno::Errno::ESRCH as i32;
    pub const EEXIST: i32 = nix::errno::Errno::EEXIST as i32;
    pub const ENODEV: i32 = nix::errno::Errno::ENODEV as i32;
    pub const EADDRNOTAVAIL: i32 = nix::errno::Errno::EADDRNOTAVAIL as i32;
}

pub async fn by_name(h: &Handle, name: &str) -> Result<Option<Link>, CniError> {
    match h.link().get().match_name(name.to_owned()).execute().try_next().await {
        Ok(msg) => Ok(msg.as_ref().map(to_link)),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(CniError::kernel(format!("get link {name}"), e)),
    }
}

pub async fn by_index(h: &Handle, index: u32) -> Result<Option<Link>, CniError> {
    match h.link().get().match_index(index).execute().try_next().await {
        Ok(msg) => Ok(msg.as_ref().map(to_link)),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(CniError::kernel(format!("get link #{index}"), e)),
    }
}

pub async fn require(h: &Handle, name: &str) -> Result<Link, CniError> {
    by_name(h, name).await?.ok_or_else(|| CniError::kernel(format!("link {name}"), "no such link"))
}

async fn set(h: &Handle, what: String, msg: LinkMessage) -> Result<(), CniError> {
    h.link().set(msg).execute().await.map_err(|e| CniError::kernel(what, e))
}

pub async fn set_up(h: &Handle, link: &Link, up: bool) -> Result<(), CniError> {
    let b = LinkUnspec::new_with_index(link.index);
    let msg = if up { b.up() } else { b.down() }.build();
    set(h, format!("set {} {}", link.name, if up { "up" } else { "down" }), msg).await
}

pub async fn set_mtu(h: &Handle, link: &Link, mtu: u32) -> Result<(), CniError> {
    let msg = LinkUnspec::new_with_index(link.index).mtu(mtu).build();
    set(h, format!("set mtu {mtu} on {}", link.name), msg).await
}

pub async fn set_master(h: &Handle, link: &Link, master: &Link) -> Result<(), CniError> {
    let msg = LinkUnspec::new_with_index(link.index).controller(master.index).build();
    set(h, format!("attach {} to {}", link.name, master.name), msg).await
}

pub async fn set_hairpin(h: &Handle, link: &Link, on: bool) -> Result<(), CniError> {
    let msg = LinkBridgePort::new(link.index).hairpin(on).build();
    h.link().set_port(msg).execute().await.map_err(|e| CniError::kernel(format!("hairpin on {}", link.name), e))
}

pub async fn set_port_vlan(h: &Handle, link: &Link, vid: u16) -> Result<(), CniError> {
    let msg =
        LinkBridgeVlan::new(link.index).vlan(vid, BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged).build();
    h.link().set(msg).execute().await.map_err(|e| CniError::kernel(format!("vlan {vid} on {}", link.name), e))
}

pub async fn delete(h: &Handle, link: &Link) -> Result<(), CniError> {
    match h.link().del(link.index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => Err(CniError::kernel(format!("delete link {}", link.name), e)),
    }
}

/// Deletes `link` and returns once the kernel has unregistered it (its
/// RTM_DELLINK on `events`, subscribed before this call), not when the
/// request's ack arrives: for a veth that sendmsg goes on for tens of ms
/// after the link is gone, waiting for an RCU barrier that only frees memory.
/// The request finishes on its own task; a long-lived host does not wait.
pub async fn delete_unregistered(h: &Handle, mut events: LinkEvents, link: &Link) -> Result<(), CniError> {
    let (h, index, owned) = (h.clone(), link.index, link.clone());
    let mut request = tokio::spawn(async move { delete(&h, &owned).await });
    let gone = async {
        while let Some((msg, _)) = events.next().await {
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m)) = msg.payload
                && m.header.index == index
            {
                return;
            }
        }
        // The subscription ended: wait for the ack instead.
        std::future::pending::<()>().await
    };
    tokio::select! {
        done = &mut request => done.map_err(|e| CniError::io(format!("delete link {}: {e}", link.name)))?,
        () = gone => Ok(()),
    }
}

pub struct BridgeParams<'a> {
    pub name: &'a str,
    pub mtu: Option<u32>,
    pub promisc: bool,
    pub vlan_filtering: bool,
}

/// A random locally administered unicast MAC for a new bridge.
fn random_bridge_mac() -> Result<Vec<u8>, CniError> {
    let mut mac = vec![0u8; 6];
    getrandom::fill(&mut mac).map_err(|e| CniError::io(format!("no randomness for a bridge MAC: {e}")))?;
    mac[0] = (mac[0] & 0xfe) | 0x02;
    Ok(mac)
}

/// Whether the kernel may still change `link`'s MAC on its own: a bridge
/// without an address set by someone takes the lowest MAC of its ports, so
/// it changes as containers come and go and their neighbours go stale.
/// Read from sysfs, trusted only if sysfs shows this netns's link.
fn mac_floats(link: &Link) -> bool {
    let read = |attr: &str| std::fs::read_to_string(format!("/sys/class/net/{}/{attr}", link.name));
    let same_link = read("ifindex").is_ok_and(|i| i.trim() == link.index.to_string());
    // NET_ADDR_SET is 3; 0 (permanent), 1 (random) and 2 (stolen) float.
    same_link && read("addr_assign_type").is_ok_and(|t| t.trim() != "3")
}

/// Creates the bridge with a MAC of its own (so the gateway's MAC never
/// changes), or reuses it when it exists (and is a bridge), pinning the MAC
/// it has now if nobody pinned one.
pub async fn ensure_bridge(h: &Handle, p: &BridgeParams<'_>) -> Result<Link, CniError> {
    let existing = by_name(h, p.name).await?;
    if existing.is_none() {
        let mut b = LinkBridge::new(p.name).up().address(random_bridge_mac()?);
        // Only ask for filtering when wanted: kernels without
        // CONFIG_BRIDGE_VLAN_FILTERING refuse the attribute even when false.
        if p.vlan_filtering {
            b = b.vlan_filtering(true);
        }
        if let Some(mtu) = p.mtu {
            b = b.mtu(mtu);
        }
        match h.link().add(b.build()).execute().await {
            Ok(()) => {}
            // Another ADD created it first.
            Err(e) if exists(&e) => {}
            Err(e) => return Err(CniError::kernel(format!("create bridge {}", p.name), e)),
        }
    }
    let link = match existing {
        Some(l) => l,
        None => require(h, p.name).await?,
    };
    if link.kind != "bridge" {
        return Err(CniError::config(format!("{} exists but is not a bridge (it is {:?})", p.name, link.kind)));
    }
    if let Some(mac) = link.mac.filter(|_| mac_floats(&link)) {
        tracing::info!("pinning the MAC of bridge {} to {mac}", p.name);
        set(
            h,
            format!("pin the MAC of {}", p.name),
            LinkUnspec::new_with_index(link.index).address(mac.0.to_vec()).build(),
        )
        .await?;
    }
    if p.promisc {
        let msg = LinkUnspec::new_with_index(link.index).promiscuous(true).build();
        set(h, format!("promisc on {}", p.name), msg).await?;
    }
    Ok(link)
}

pub struct VethParams<'a> {
    pub host_name: &'a str,
    pub container_name: &'a str,
    pub mtu: Option<u32>,
    pub container_mac: Option<Mac>,
}

/// Creates a veth pair in the host netns with its peer born inside `netns`.
pub async fn create_veth(h: &Handle, netns: &std::fs::File, p: &VethParams<'_>) -> Result<(), CniError> {
    let mut peer =
        LinkMessageBuilder::<LinkUnspec>::new().name(p.container_name.to_owned()).setns_by_fd(netns.as_raw_fd());
    // The host end is born up: nothing reaches it before it joins a bridge.
    let mut host =
        LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth).name(p.host_name.to_owned()).up();
    if let Some(mtu) = p.mtu {
        peer = peer.mtu(mtu);
        host = host.mtu(mtu);
    }
    if let Some(mac) = p.container_mac {
        peer = peer.address(mac.0.to_vec());
    }
    let msg = host.set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build()))).build();
    h.link().add(msg).execute().await.map_err(|e| {
        let what = format!("create veth {}<->{}", p.host_name, p.container_name);
        if exists(&e) {
            CniError::kernel(what, "a link with that name already exists (is the container already attached?)")
        } else {
            CniError::kernel(what, e)
        }
    })
}
