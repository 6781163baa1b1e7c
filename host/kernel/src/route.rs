//! Route requests over one rtnetlink handle.

use crate::link::{exists, no_such_entry};
use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteScope, RouteType};
use rtnetlink::{Handle, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use wasmcni_cni::error::CniError;
use wasmcni_cni::result::Route;

/// RT_TABLE_LOCAL: the kernel's own local/broadcast routes, never shown.
const TABLE_LOCAL: u32 = 255;

/// A route as read back from the kernel.
#[derive(Debug, Clone)]
pub struct Listed {
    pub route: Route,
    pub oif: Option<u32>,
}

fn build(route: &Route, oif: Option<u32>) -> Result<RouteMessage, CniError> {
    let dst = route.dst.trunc();
    let bad = |e: &dyn std::fmt::Display| CniError::config(format!("invalid route to {}: {e}", route.dst));
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
        msg.attributes.push(RouteAttribute::Metrics(vec![rtnetlink::packet_route::route::RouteMetric::Mtu(mtu)]));
    }
    Ok(msg)
}

pub async fn add(h: &Handle, route: &Route, oif: Option<u32>, replace: bool) -> Result<(), CniError> {
    let msg = build(route, oif)?;
    let req = h.route().add(msg);
    let req = if replace { req.replace() } else { req };
    req.execute().await.map_err(|e| {
        if exists(&e) {
            CniError::kernel(format!("add route to {}", route.dst), "a route to that destination already exists")
        } else {
            CniError::kernel(format!("add route to {}", route.dst), e)
        }
    })
}

pub async fn del(h: &Handle, route: &Route, oif: Option<u32>) -> Result<(), CniError> {
    let mut msg = build(route, oif)?;
    // Match any scope when deleting.
    msg.header.scope = RouteScope::NoWhere;
    match h.route().del(msg).execute().await {
        Err(e) if !no_such_entry(&e) => Err(CniError::kernel(format!("delete route to {}", route.dst), e)),
        _ => Ok(()),
    }
}

fn to_listed(msg: &RouteMessage) -> Option<Listed> {
    if msg.header.kind != RouteType::Unicast {
        return None;
    }
    let v6 = msg.header.address_family == AddressFamily::Inet6;
    let mut table = u32::from(msg.header.table);
    let (mut dst, mut gw, mut oif, mut priority) = (None, None, None, None);
    for attr in &msg.attributes {
        match attr {
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
        route: Route { gw, priority, table: Some(table), scope: Some(u8::from(msg.header.scope)), ..Route::to(net) },
        oif,
    })
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some((*v4).into()),
        RouteAddress::Inet6(v6) => Some((*v6).into()),
        _ => None,
    }
}

/// Every unicast route of both families outside the local table.
pub async fn list(h: &Handle) -> Result<Vec<Listed>, CniError> {
    let mut out = Vec::new();
    for req in [RouteMessageBuilder::<Ipv4Addr>::new().build(), RouteMessageBuilder::<Ipv6Addr>::new().build()] {
        let msgs: Vec<RouteMessage> =
            h.route().get(req).execute().try_collect().await.map_err(|e| CniError::kernel("list routes", e))?;
        out.extend(msgs.iter().filter_map(to_listed));
    }
    Ok(out)
}
