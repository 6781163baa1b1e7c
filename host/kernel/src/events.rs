//! Changes to the host's links, routes and neighbour (ARP/NDP and FDB)
//! entries as the kernel announces them (rtnetlink multicast, what
//! `ip monitor link route neigh` shows), so whoever keeps
//! kernel state in shape hears of `ip link set down` or `ip route del` at once
//! instead of at its next periodic check.

use crate::route::listed;
use crate::{Error, Result};
use futures::{Stream, StreamExt};
use ipnet::IpNet;
use rtnetlink::MulticastGroup;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;

/// One announced change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A link was added, removed or changed (up, down, MTU, address).
    Link { index: u32 },
    /// A unicast route outside the local table was added or removed.
    Route { dst: IpNet },
    /// A neighbour or FDB entry on link `index` was added, removed or changed.
    Neighbor { index: u32 },
    /// The socket's buffer overran: notices were lost, anything may have changed.
    Overrun,
}

/// The host's link, route and neighbour changes, from now on. The stream ends if the
/// socket fails; the kernel drops notices a slow reader lets pile up, so a
/// reader also checks periodically.
pub fn changes() -> Result<impl Stream<Item = Change> + Send + Unpin + 'static> {
    let groups = [MulticastGroup::Link, MulticastGroup::Ipv4Route, MulticastGroup::Ipv6Route, MulticastGroup::Neigh];
    let (conn, _handle, messages) = rtnetlink::new_multicast_connection(&groups)
        .map_err(|source| Error::Io { what: "netlink notification socket".into(), source })?;
    tokio::spawn(conn);
    Ok(messages.filter_map(|(msg, _)| {
        futures::future::ready(match msg.payload {
            NetlinkPayload::InnerMessage(inner) => change(&inner),
            NetlinkPayload::Overrun(_) => Some(Change::Overrun),
            _ => None,
        })
    }))
}

fn change(msg: &RouteNetlinkMessage) -> Option<Change> {
    match msg {
        RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l) => {
            Some(Change::Link { index: l.header.index })
        }
        RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r) => {
            listed(r).map(|l| Change::Route { dst: l.route.dst })
        }
        RouteNetlinkMessage::NewNeighbour(n) | RouteNetlinkMessage::DelNeighbour(n) => {
            Some(Change::Neighbor { index: n.header.ifindex })
        }
        _ => None,
    }
}
