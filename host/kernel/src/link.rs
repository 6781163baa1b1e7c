//! Links: the [`Links`] a namespace has, and the kernel's over rtnetlink.

use crate::error::{Existing, netlink_errno};
use crate::netns::{Kernel, LinkEvents};
use crate::{Error, Result};
use futures::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{
    BridgeVlanInfoFlags, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkBridgeVlan, LinkMessageBuilder, LinkUnspec};
use std::os::fd::AsRawFd;
use wasmcni_cni::Mac;

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

pub(crate) fn to_link(msg: &LinkMessage) -> Link {
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
    netlink_errno(e) == Some(errno)
}

pub(crate) fn not_found(e: &rtnetlink::Error) -> bool {
    is_errno(e, nix::libc::ENODEV) || is_errno(e, nix::libc::ENOENT)
}

pub(crate) fn exists(e: &rtnetlink::Error) -> bool {
    is_errno(e, nix::libc::EEXIST)
}

pub(crate) fn no_such_entry(e: &rtnetlink::Error) -> bool {
    is_errno(e, nix::libc::ESRCH) || is_errno(e, nix::libc::EADDRNOTAVAIL) || not_found(e)
}

/// What a namespace does with its links. A link is named by its index: the
/// `Link` passed in is one this namespace reported.
pub trait Links: Send + Sync {
    fn link_by_name(&self, name: &str) -> impl Future<Output = Result<Option<Link>>> + Send;

    fn link_by_index(&self, index: u32) -> impl Future<Output = Result<Option<Link>>> + Send;

    /// The link named `name`, or [`Error::NoSuchLink`].
    fn require_link(&self, name: &str) -> impl Future<Output = Result<Link>> + Send {
        async move { self.link_by_name(name).await?.ok_or_else(|| Error::NoSuchLink(name.to_owned())) }
    }

    fn set_up(&self, link: &Link, up: bool) -> impl Future<Output = Result<()>> + Send;

    fn set_mtu(&self, link: &Link, mtu: u32) -> impl Future<Output = Result<()>> + Send;

    /// Makes `link` a port of the bridge `master`.
    fn set_master(&self, link: &Link, master: &Link) -> impl Future<Output = Result<()>> + Send;

    /// Hairpin mode on a bridge port.
    fn set_hairpin(&self, link: &Link, on: bool) -> impl Future<Output = Result<()>> + Send;

    /// Makes `vid` a bridge port's untagged PVID.
    fn set_port_vlan(&self, link: &Link, vid: u16) -> impl Future<Output = Result<()>> + Send;

    /// Deletes `link` (and a veth's peer with it); a link already gone is not an error.
    fn delete_link(&self, link: &Link) -> impl Future<Output = Result<()>> + Send;

    /// As [`Links::delete_link`], but returns once the kernel has unregistered
    /// the link rather than when it acks the request; for a long-lived
    /// process, which lets the kernel finish the cleanup after it answered.
    fn delete_link_unregistered(&self, link: &Link) -> impl Future<Output = Result<()>> + Send;

    /// The bridge `p.name`, created if missing, with a MAC that does not change.
    fn ensure_bridge(&self, p: &BridgeParams<'_>) -> impl Future<Output = Result<Link>> + Send;
}

impl Links for Kernel {
    async fn link_by_name(&self, name: &str) -> Result<Option<Link>> {
        by_name(self.handle().await?, name).await
    }

    async fn link_by_index(&self, index: u32) -> Result<Option<Link>> {
        let h = self.handle().await?;
        match h.link().get().match_index(index).execute().try_next().await {
            Ok(msg) => Ok(msg.as_ref().map(to_link)),
            Err(e) if not_found(&e) => Ok(None),
            Err(source) => Err(Error::Netlink { op: format!("get link #{index}"), source }),
        }
    }

    async fn set_up(&self, link: &Link, up: bool) -> Result<()> {
        let b = LinkUnspec::new_with_index(link.index);
        let msg = if up { b.up() } else { b.down() }.build();
        set(self.handle().await?, || format!("set {} {}", link.name, if up { "up" } else { "down" }), msg).await
    }

    async fn set_mtu(&self, link: &Link, mtu: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(link.index).mtu(mtu).build();
        set(self.handle().await?, || format!("set mtu {mtu} on {}", link.name), msg).await
    }

    async fn set_master(&self, link: &Link, master: &Link) -> Result<()> {
        let msg = LinkUnspec::new_with_index(link.index).controller(master.index).build();
        set(self.handle().await?, || format!("attach {} to {}", link.name, master.name), msg).await
    }

    async fn set_hairpin(&self, link: &Link, on: bool) -> Result<()> {
        let msg = LinkBridgePort::new(link.index).hairpin(on).build();
        let h = self.handle().await?;
        h.link()
            .set_port(msg)
            .execute()
            .await
            .map_err(|source| Error::Netlink { op: format!("hairpin on {}", link.name), source })
    }

    async fn set_port_vlan(&self, link: &Link, vid: u16) -> Result<()> {
        let msg = LinkBridgeVlan::new(link.index)
            .vlan(vid, BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged)
            .build();
        set(self.handle().await?, || format!("vlan {vid} on {}", link.name), msg).await
    }

    async fn delete_link(&self, link: &Link) -> Result<()> {
        delete(self.handle().await?, link).await
    }

    async fn delete_link_unregistered(&self, link: &Link) -> Result<()> {
        // Subscribed before the request, so its RTM_DELLINK cannot be missed.
        let events = crate::netns::link_events(self.netns())?;
        delete_unregistered(self.handle().await?, events, link).await
    }

    async fn ensure_bridge(&self, p: &BridgeParams<'_>) -> Result<Link> {
        ensure_bridge(self.handle().await?, p).await
    }
}

async fn by_name(h: &Handle, name: &str) -> Result<Option<Link>> {
    Ok(message_by_name(h, name).await?.as_ref().map(to_link))
}

/// The kernel's whole message for the link `name`, for what [`Link`] leaves out.
pub(crate) async fn message_by_name(h: &Handle, name: &str) -> Result<Option<LinkMessage>> {
    match h.link().get().match_name(name.to_owned()).execute().try_next().await {
        Ok(msg) => Ok(msg),
        Err(e) if not_found(&e) => Ok(None),
        Err(source) => Err(Error::Netlink { op: format!("get link {name}"), source }),
    }
}

async fn require(h: &Handle, name: &str) -> Result<Link> {
    by_name(h, name).await?.ok_or_else(|| Error::NoSuchLink(name.to_owned()))
}

async fn set(h: &Handle, what: impl FnOnce() -> String, msg: LinkMessage) -> Result<()> {
    h.link().set(msg).execute().await.map_err(|source| Error::Netlink { op: what(), source })
}

async fn delete(h: &Handle, link: &Link) -> Result<()> {
    match h.link().del(link.index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(source) => Err(Error::Netlink { op: format!("delete link {}", link.name), source }),
    }
}

/// Deletes `link` and returns once the kernel has unregistered it (its
/// RTM_DELLINK on `events`, subscribed before this call), not when the
/// request's ack arrives: for a veth that sendmsg goes on for tens of ms
/// after the link is gone, waiting for an RCU barrier that only frees memory.
/// The request finishes on its own task; a long-lived host does not wait.
async fn delete_unregistered(h: &Handle, mut events: LinkEvents, link: &Link) -> Result<()> {
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
        done = &mut request => done.map_err(|source| Error::Task { op: format!("delete link {}", link.name), source })?,
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
fn random_bridge_mac() -> Result<Vec<u8>> {
    let mut mac = vec![0u8; 6];
    getrandom::fill(&mut mac).map_err(Error::Random)?;
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
async fn ensure_bridge(h: &Handle, p: &BridgeParams<'_>) -> Result<Link> {
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
            Err(source) => return Err(Error::Netlink { op: format!("create bridge {}", p.name), source }),
        }
    }
    let link = match existing {
        Some(l) => l,
        None => require(h, p.name).await?,
    };
    if link.kind != "bridge" {
        return Err(Error::NotABridge { name: p.name.to_owned(), kind: link.kind });
    }
    if let Some(mac) = link.mac.filter(|_| mac_floats(&link)) {
        tracing::info!("pinning the MAC of bridge {} to {mac}", p.name);
        set(
            h,
            || format!("pin the MAC of {}", p.name),
            LinkUnspec::new_with_index(link.index).address(mac.0.to_vec()).build(),
        )
        .await?;
    }
    if p.promisc {
        let msg = LinkUnspec::new_with_index(link.index).promiscuous(true).build();
        set(h, || format!("promisc on {}", p.name), msg).await?;
    }
    Ok(link)
}

pub struct VethParams<'a> {
    pub host_name: &'a str,
    pub container_name: &'a str,
    pub mtu: Option<u32>,
    pub container_mac: Option<Mac>,
}

/// Creates a veth pair in `h`'s netns with its peer born inside `netns`.
pub(crate) async fn create_veth(h: &Handle, netns: &std::fs::File, p: &VethParams<'_>) -> Result<()> {
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
    h.link().add(msg).execute().await.map_err(|source| {
        let op = format!("create veth {}<->{}", p.host_name, p.container_name);
        if exists(&source) { Error::Exists { op, what: Existing::Link, source } } else { Error::Netlink { op, source } }
    })
}
