//! The 1.0 WIT's typed values and the model's, both ways. Only prefix
//! lengths can be out of range on the way in (code 7); a result or a
//! decision a module returns that holds one is the module's fault (code 100).

use crate::bindings::exports::wasmcni::plugin::{admission, node_routes};
use crate::bindings::wasmcni::plugin::types;
use crate::netlink::Link;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use wasmcni_cni::Mac;
use wasmcni_cni::decision::{Changes, Decision, Range, WantedIp};
use wasmcni_cni::error::{CniError, Code};
use wasmcni_cni::result as model;

impl From<types::IpAddress> for IpAddr {
    fn from(a: types::IpAddress) -> IpAddr {
        match a {
            types::IpAddress::V4((a, b, c, d)) => Ipv4Addr::new(a, b, c, d).into(),
            types::IpAddress::V6((a, b, c, d, e, f, g, h)) => Ipv6Addr::new(a, b, c, d, e, f, g, h).into(),
        }
    }
}

impl From<IpAddr> for types::IpAddress {
    fn from(a: IpAddr) -> types::IpAddress {
        match a {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                types::IpAddress::V4((a, b, c, d))
            }
            IpAddr::V6(v6) => {
                let [a, b, c, d, e, f, g, h] = v6.segments();
                types::IpAddress::V6((a, b, c, d, e, f, g, h))
            }
        }
    }
}

/// A prefix as the model keeps it (host bits as given).
pub fn net(p: types::IpPrefix) -> Result<IpNet, CniError> {
    let addr = IpAddr::from(p.address);
    IpNet::new(addr, p.prefix_len)
        .map_err(|_| CniError::config(format!("prefix length {} is too long for {addr}", p.prefix_len)))
}

impl From<IpNet> for types::IpPrefix {
    fn from(n: IpNet) -> types::IpPrefix {
        types::IpPrefix { address: n.addr().into(), prefix_len: n.prefix_len() }
    }
}

pub fn mac(m: types::Mac) -> Mac {
    let (a, b, c, d, e, f) = m;
    Mac([a, b, c, d, e, f])
}

pub fn to_mac(m: Mac) -> types::Mac {
    let [a, b, c, d, e, f] = m.0;
    (a, b, c, d, e, f)
}

pub fn family(a: &IpAddr) -> types::AddressFamily {
    if a.is_ipv6() { types::AddressFamily::Ipv6 } else { types::AddressFamily::Ipv4 }
}

/// What kind of link the kernel says `link` is.
pub fn link_kind(link: &Link) -> types::LinkKind {
    use types::LinkKind as K;
    match link.kind.as_str() {
        "" if link.loopback => K::Loopback,
        "" => K::Device,
        "bridge" => K::Bridge,
        "veth" => K::Veth,
        "vlan" => K::Vlan,
        "vxlan" => K::Vxlan,
        "macvlan" => K::Macvlan,
        "ipvlan" => K::Ipvlan,
        "dummy" => K::Dummy,
        "tun" => K::Tun,
        "wireguard" => K::Wireguard,
        other => K::Other(other.to_owned()),
    }
}

/// Kernel scope numbers (rtnetlink's RT_SCOPE_*).
const SCOPES: [(u8, types::RouteScope); 4] = [
    (0, types::RouteScope::Universe),
    (200, types::RouteScope::Site),
    (253, types::RouteScope::Link),
    (254, types::RouteScope::Host),
];

fn scope(s: types::RouteScope) -> u8 {
    SCOPES.iter().find(|(_, w)| *w == s).map(|(n, _)| *n).expect("every scope is listed")
}

fn to_scope(n: u8) -> Option<types::RouteScope> {
    SCOPES.iter().find(|(k, _)| *k == n).map(|(_, w)| *w)
}

pub fn route(r: types::Route) -> Result<model::Route, CniError> {
    Ok(model::Route {
        dst: net(r.dst)?,
        gw: r.gw.map(Into::into),
        mtu: r.mtu,
        advmss: r.advmss,
        priority: r.priority,
        table: r.table,
        scope: r.scope.map(scope),
    })
}

impl From<model::Route> for types::Route {
    fn from(r: model::Route) -> types::Route {
        types::Route {
            dst: r.dst.into(),
            gw: r.gw.map(Into::into),
            mtu: r.mtu,
            advmss: r.advmss,
            priority: r.priority,
            table: r.table,
            // Scopes outside the four named ones (e.g. 255, nowhere) list as none.
            scope: r.scope.and_then(to_scope),
        }
    }
}

/// A result a module returned.
pub fn result(r: types::CniResult) -> Result<model::CniResult, CniError> {
    let convert = || -> Result<model::CniResult, CniError> {
        Ok(model::CniResult {
            interfaces: r
                .interfaces
                .into_iter()
                .map(|i| model::Interface { name: i.name, mac: i.mac.map(mac), mtu: i.mtu, sandbox: i.sandbox })
                .collect(),
            ips: r
                .ips
                .into_iter()
                .map(|i| {
                    Ok(model::IpConfig {
                        address: net(i.address)?,
                        gateway: i.gateway.map(Into::into),
                        interface: i.iface,
                    })
                })
                .collect::<Result<_, CniError>>()?,
            routes: r.routes.into_iter().map(route).collect::<Result<_, _>>()?,
            dns: r.dns.map(|d| model::Dns {
                nameservers: d.nameservers.into_iter().map(Into::into).collect(),
                domain: d.domain,
                search: d.search,
                options: d.options,
            }),
        })
    };
    convert().map_err(|e| CniError::new(Code::PluginFailure, format!("plugin returned an invalid result: {}", e.msg)))
}

impl From<model::CniResult> for types::CniResult {
    fn from(r: model::CniResult) -> types::CniResult {
        types::CniResult {
            interfaces: r
                .interfaces
                .into_iter()
                .map(|i| types::Iface { name: i.name, mac: i.mac.map(to_mac), mtu: i.mtu, sandbox: i.sandbox })
                .collect(),
            ips: r
                .ips
                .into_iter()
                .map(|i| types::IpConfig {
                    address: i.address.into(),
                    gateway: i.gateway.map(Into::into),
                    iface: i.interface,
                })
                .collect(),
            routes: r.routes.into_iter().map(Into::into).collect(),
            dns: r.dns.map(|d| types::Dns {
                nameservers: d.nameservers.into_iter().map(Into::into).collect(),
                domain: d.domain,
                search: d.search,
                options: d.options,
            }),
        }
    }
}

/// A policy's decision.
pub fn decision(d: admission::Decision, policy: &str) -> Result<Decision, CniError> {
    let invalid =
        |e: CniError| CniError::new(Code::PluginFailure, format!("policy {policy} returned an invalid {}", e.msg));
    Ok(match d {
        admission::Decision::Allow => Decision::Allow,
        admission::Decision::Deny(reason) => Decision::Deny(reason),
        admission::Decision::AllowWith(c) => {
            let convert = || -> Result<Changes, CniError> {
                Ok(Changes {
                    ips: c.ips.into_iter().map(|ip| WantedIp { addr: ip.into(), prefix_len: None }).collect(),
                    ranges: c
                        .ranges
                        .into_iter()
                        .map(|r| {
                            Ok(Range {
                                subnet: net(r.subnet)?,
                                range_start: r.range_start.map(Into::into),
                                range_end: r.range_end.map(Into::into),
                                gateway: r.gateway.map(Into::into),
                            })
                        })
                        .collect::<Result<_, CniError>>()?,
                    routes: c.routes.into_iter().map(route).collect::<Result<_, _>>()?,
                })
            };
            Decision::AllowWith(convert().map_err(invalid)?)
        }
    })
}

/// A node's lease as a 1.0 routing plugin gets it.
pub fn node_lease(ip: IpAddr, subnet: IpNet) -> node_routes::NodeLease {
    node_routes::NodeLease { ip: ip.into(), subnet: subnet.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_prefixes_and_macs_round_trip() {
        for s in ["10.1.2.3", "fd00::1", "::", "255.255.255.255", "2001:db8::ff:1"] {
            let a: IpAddr = s.parse().unwrap();
            assert_eq!(IpAddr::from(types::IpAddress::from(a)), a);
        }
        let v4 = types::IpAddress::from("10.0.0.1".parse::<IpAddr>().unwrap());
        assert!(matches!(v4, types::IpAddress::V4((10, 0, 0, 1))), "{v4:?}");
        for s in ["10.22.0.5/16", "fd00::/64", "0.0.0.0/0"] {
            let n: IpNet = s.parse().unwrap();
            assert_eq!(net(n.into()).unwrap(), n, "{s}");
        }
        let m: Mac = "0a:1b:2c:3d:4e:5f".parse().unwrap();
        assert_eq!(mac(to_mac(m)), m);
    }

    #[test]
    fn a_prefix_too_long_is_code_7_and_a_result_holding_one_is_code_100() {
        let bad = types::IpPrefix { address: types::IpAddress::V4((10, 0, 0, 1)), prefix_len: 33 };
        assert_eq!(net(bad).unwrap_err().code, Code::InvalidConfig);
        let r = types::CniResult {
            interfaces: vec![],
            ips: vec![types::IpConfig { address: bad, gateway: None, iface: None }],
            routes: vec![],
            dns: None,
        };
        let err = result(r).unwrap_err();
        assert!(err.code == Code::PluginFailure && err.msg.contains("invalid result"), "{err}");
    }

    #[test]
    fn named_scopes_round_trip_and_others_list_as_none() {
        let r = model::Route { scope: Some(253), ..model::Route::to("10.0.0.0/24".parse().unwrap()) };
        assert_eq!(route(r.clone().into()).unwrap(), r);
        let nowhere = model::Route { scope: Some(255), ..r };
        assert_eq!(types::Route::from(nowhere).scope, None);
    }

    #[test]
    fn kernel_kinds_map_to_link_kinds() {
        let link = |kind: &str, loopback| Link {
            name: "l".into(),
            index: 1,
            mac: None,
            mtu: 1500,
            up: true,
            loopback,
            kind: kind.into(),
            master: None,
            peer_index: None,
        };
        assert!(matches!(link_kind(&link("", false)), types::LinkKind::Device));
        assert!(matches!(link_kind(&link("", true)), types::LinkKind::Loopback));
        assert!(matches!(link_kind(&link("vxlan", false)), types::LinkKind::Vxlan));
        assert!(matches!(link_kind(&link("geneve", false)), types::LinkKind::Other(k) if k == "geneve"));
    }
}
