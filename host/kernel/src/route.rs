//! Routes: the [`Routes`] of a namespace, and the kernel's over rtnetlink.

use crate::error::Existing;
use crate::link::{exists, no_such_entry};
use crate::netns::Kernel;
use crate::{Error, Result};
use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteMetric, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::{Handle, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use wasmcni_cni::result::Route;

/// RT_TABLE_LOCAL: the kernel's own local/broadcast routes, never shown.
pub(crate) const TABLE_LOCAL: u32 = 255;
/// RT_TABLE_MAIN: where a route without a table goes.
pub const TABLE_MAIN: u32 = 254;
/// The metric the kernel gives an IPv6 route that names none (IP6_RT_PRIO_USER).
pub const V6_DEFAULT_METRIC: u32 = 1024;

/// What a namespace does with its routes. `oif` is the index of the route's
/// device; without one the kernel picks it from the gateway.
pub trait Routes: Send + Sync {
    /// Every unicast route of both families outside the local table.
    fn routes(&self) -> impl Future<Output = Result<Vec<Listed>>> + Send;

    /// Adds `route`; one to the same destination (table, metric) is [`Error::Exists`].
    fn add_route(&self, route: &Route, oif: Option<u32>) -> impl Future<Output = Result<()>> + Send;

    /// Adds `route`, replacing one to the same destination (table, metric).
    fn replace_route(&self, route: &Route, oif: Option<u32>) -> impl Future<Output = Result<()>> + Send;

    /// As [`Routes::replace_route`], with the gateway taken as on link `oif`
    /// whatever its addresses say (`onlink`: an overlay's VTEP holds no
    /// subnet of the gateways it routes through).
    fn replace_onlink_route(&self, route: &Route, oif: u32) -> impl Future<Output = Result<()>> + Send;

    /// Removes the route matching `route` in any scope; none there is not an error.
    fn del_route(&self, route: &Route, oif: Option<u32>) -> impl Future<Output = Result<()>> + Send;
}

/// A route as read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub route: Route,
    pub oif: Option<u32>,
    pub onlink: bool,
}

/// The request for `route`; also what decides, for the fake too, which routes cannot be expressed.
pub(crate) fn build(route: &Route, oif: Option<u32>) -> Result<RouteMessage> {
    let dst = route.dst.trunc();
    let bad = |e: &dyn std::fmt::Display| Error::InvalidRoute { dst: route.dst, reason: e.to_string() };
    let mut b =
        RouteMessageBuilder::<IpAddr>::new().destination_prefix(dst.addr(), dst.prefix_len()).map_err(|e| bad(&e))?;
    if let Some(gw) = route.gw {
        b = b.gateway(gw).map_err(|e| bad(&e))?;
    }
    if let Some(oif) = oif {
        b = b.output_interface(oif);
    }
    if let Some(p) = route.priority {
        b = b.priority(p);
    }
    if let Some(t) = route.table {
        b = b.table_id(t);
    }
    let scope = match (route.scope, route.gw) {
        (Some(s), _) => RouteScope::from(s),
        (None, None) if oif.is_some() => RouteScope::Link,
        _ => RouteScope::Universe,
    };
    let mut msg = b.scope(scope).build();
    if let Some(mtu) = route.mtu {
        msg.attributes.push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
    }
    Ok(msg)
}

async fn add(h: &Handle, route: &Route, oif: Option<u32>, replace: bool, onlink: bool) -> Result<()> {
    let mut msg = build(route, oif)?;
    if onlink {
        msg.header.flags |= RouteFlags::Onlink;
    }
    let req = h.route().add(msg);
    let req = if replace { req.replace() } else { req };
    req.execute().await.map_err(|source| {
        let op = format!("add route to {}", route.dst);
        if exists(&source) {
            Error::Exists { op, what: Existing::Route, source }
        } else {
            Error::Netlink { op, source }
        }
    })
}

impl Routes for Kernel {
    async fn routes(&self) -> Result<Vec<Listed>> {
        let h = self.handle().await?;
        let mut out = Vec::new();
        for req in [RouteMessageBuilder::<Ipv4Addr>::new().build(), RouteMessageBuilder::<Ipv6Addr>::new().build()] {
            let msgs: Vec<RouteMessage> = h
                .route()
                .get(req)
                .execute()
                .try_collect()
                .await
                .map_err(|source| Error::Netlink { op: "list routes".into(), source })?;
            out.extend(msgs.iter().filter_map(listed));
        }
        Ok(out)
    }

    async fn add_route(&self, route: &Route, oif: Option<u32>) -> Result<()> {
        add(self.handle().await?, route, oif, false, false).await
    }

    async fn replace_route(&self, route: &Route, oif: Option<u32>) -> Result<()> {
        add(self.handle().await?, route, oif, true, false).await
    }

    async fn replace_onlink_route(&self, route: &Route, oif: u32) -> Result<()> {
        add(self.handle().await?, route, Some(oif), true, true).await
    }

    async fn del_route(&self, route: &Route, oif: Option<u32>) -> Result<()> {
        let mut msg = build(route, oif)?;
        // Match any scope and any protocol (the builder says "static"; `ip route add` says "boot").
        msg.header.scope = RouteScope::NoWhere;
        msg.header.protocol = RouteProtocol::Unspec;
        match self.handle().await?.route().del(msg).execute().await {
            Err(source) if !no_such_entry(&source) => {
                Err(Error::Netlink { op: format!("delete route to {}", route.dst), source })
            }
            _ => Ok(()),
        }
    }
}

/// A route message as a [`Listed`] route; none for a non-unicast or local-table route.
pub(crate) fn listed(msg: &RouteMessage) -> Option<Listed> {
    if msg.header.kind != RouteType::Unicast {
        return None;
    }
    let v6 = msg.header.address_family == AddressFamily::Inet6;
    let mut table = u32::from(msg.header.table);
    let (mut dst, mut gw, mut oif, mut priority, mut mtu) = (None, None, None, None, None);
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Metrics(metrics) => {
                mtu = metrics.iter().find_map(|m| match m {
                    RouteMetric::Mtu(v) => Some(*v),
                    _ => None,
                })
            }
            RouteAttribute::Destination(a) => dst = ip_of(a),
            RouteAttribute::Gateway(a) => gw = ip_of(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => priority = Some(*p),
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    if table == TABLE_LOCAL {
        return None;
    }
    let any: IpAddr = if v6 { Ipv6Addr::UNSPECIFIED.into() } else { Ipv4Addr::UNSPECIFIED.into() };
    let net = IpNet::new(dst.unwrap_or(any), msg.header.destination_prefix_length).ok()?;
    Some(Listed {
        route: Route {
            gw,
            mtu,
            priority,
            table: Some(table),
            scope: Some(u8::from(msg.header.scope)),
            ..Route::to(net)
        },
        oif,
        onlink: msg.header.flags.contains(RouteFlags::Onlink),
    })
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some((*v4).into()),
        RouteAddress::Inet6(v6) => Some((*v6).into()),
        _ => None,
    }
}
