//! The 0.x adapter: the host traits of wasmcni:plugin@0.2.0 and 0.1.0, whose
//! addresses, prefixes and MACs are strings. Each call parses them into the
//! typed model (a malformed one is code 7) and goes to the same capability
//! functions as 1.0, under the same scope checks; what comes back is
//! formatted the 0.2 way.

use super::State;
use super::compat::wasmcni::plugin0_1_0 as v0_1;
use super::netlink::{BridgeParams, LinkView, RouteOp, Side};
use super::v0_2::exports::wasmcni::plugin::admission;
use super::v0_2::wasmcni::plugin::netlink::{self as nl, BridgeSpec, LinkInfo, RouteInfo, VethPair, VethSpec};
use super::v0_2::wasmcni::plugin::{self as current, ipam_store, log, types};
use ipnet::IpNet;
use std::net::IpAddr;
use types::CniError as WitError;
use wasmcni_cni::call::Call;
use wasmcni_cni::decision::{Changes, Decision, Range, WantedIp};
use wasmcni_cni::env::Command;
use wasmcni_cni::error::{CniError, Code};
use wasmcni_cni::result as model;
use wasmcni_cni::{Mac, mac::InvalidMac};
use wasmcni_kernel::ipam_store::Leases;

type Res<T> = Result<T, WitError>;

super::wit_error_conversions!();

impl TryFrom<types::Route> for model::Route {
    type Error = CniError;

    fn try_from(r: types::Route) -> Result<Self, CniError> {
        Ok(model::Route {
            dst: parse_net(&r.dst)?,
            gw: r.gw.as_deref().map(parse_ip).transpose()?,
            mtu: r.mtu,
            advmss: r.advmss,
            priority: r.priority,
            table: r.table,
            scope: r.scope,
        })
    }
}

impl From<model::Route> for types::Route {
    fn from(r: model::Route) -> Self {
        types::Route {
            dst: r.dst.to_string(),
            gw: r.gw.map(|g| g.to_string()),
            mtu: r.mtu,
            advmss: r.advmss,
            priority: r.priority,
            table: r.table,
            scope: r.scope,
        }
    }
}

impl TryFrom<types::CniResult> for model::CniResult {
    type Error = CniError;

    /// A result a plugin returned; an address that does not parse is the
    /// plugin's fault (code 100).
    fn try_from(r: types::CniResult) -> Result<Self, CniError> {
        let convert = || -> Result<model::CniResult, CniError> {
            Ok(model::CniResult {
                interfaces: r
                    .interfaces
                    .into_iter()
                    .map(|i| {
                        Ok(model::Interface {
                            name: i.name,
                            mac: Some(&i.mac).filter(|m| !m.is_empty()).map(|m| parse_mac(m)).transpose()?,
                            mtu: i.mtu,
                            sandbox: Some(i.sandbox).filter(|s| !s.is_empty()),
                        })
                    })
                    .collect::<Result<_, CniError>>()?,
                ips: r
                    .ips
                    .into_iter()
                    .map(|i| {
                        Ok(model::IpConfig {
                            address: parse_net(&i.address)?,
                            gateway: i.gateway.as_deref().map(parse_ip).transpose()?,
                            interface: i.iface,
                        })
                    })
                    .collect::<Result<_, CniError>>()?,
                routes: r.routes.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?,
                dns: r
                    .dns
                    .map(|d| {
                        Ok::<_, CniError>(model::Dns {
                            nameservers: d.nameservers.iter().map(|n| parse_ip(n)).collect::<Result<_, _>>()?,
                            domain: d.domain,
                            search: d.search,
                            options: d.options,
                        })
                    })
                    .transpose()?,
            })
        };
        convert()
            .map_err(|e| CniError::new(Code::PluginFailure, format!("plugin returned an invalid result: {}", e.msg)))
    }
}

impl From<model::CniResult> for types::CniResult {
    fn from(r: model::CniResult) -> Self {
        types::CniResult {
            interfaces: r
                .interfaces
                .into_iter()
                .map(|i| types::Iface {
                    name: i.name,
                    mac: i.mac.map(|m| m.to_string()).unwrap_or_default(),
                    mtu: i.mtu,
                    sandbox: i.sandbox.unwrap_or_default(),
                })
                .collect(),
            ips: r
                .ips
                .into_iter()
                .map(|i| types::IpConfig {
                    address: i.address.to_string(),
                    gateway: i.gateway.map(|g| g.to_string()),
                    iface: i.interface,
                })
                .collect(),
            routes: r.routes.into_iter().map(Into::into).collect(),
            dns: r.dns.map(|d| types::Dns {
                nameservers: d.nameservers.iter().map(ToString::to_string).collect(),
                domain: d.domain,
                search: d.search,
                options: d.options,
            }),
        }
    }
}

impl types::Host for State {}

impl From<log::Level> for super::bindings::wasmcni::plugin::log::Level {
    fn from(l: log::Level) -> Self {
        use super::bindings::wasmcni::plugin::log::Level as L;
        match l {
            log::Level::Error => L::Error,
            log::Level::Warn => L::Warn,
            log::Level::Info => L::Info,
            log::Level::Debug => L::Debug,
        }
    }
}

/// The invocation as a 0.x module gets it: strings, `""` for no MAC or sandbox.
pub fn invocation(call: &Call, netns_open: bool, config: String) -> types::Invocation {
    types::Invocation {
        container_id: call.env.container_id.clone(),
        ifname: call.env.ifname.clone(),
        netns: call.env.netns.clone().filter(|_| netns_open),
        args: call.env.args.iter().map(|(k, v)| types::Arg { key: k.clone(), value: v.clone() }).collect(),
        network_name: call.conf.name.clone(),
        config,
        prev_result: call.conf.prev_result.clone().map(Into::into),
    }
}

pub fn attachments(valid: Vec<(String, String)>) -> Vec<types::Attachment> {
    valid.into_iter().map(|(container_id, ifname)| types::Attachment { container_id, ifname }).collect()
}

/// The result a 0.x module returned, in the model.
pub fn result(r: types::CniResult) -> Result<model::CniResult, CniError> {
    r.try_into()
}

fn parse_ip(s: &str) -> Result<IpAddr, CniError> {
    s.parse().map_err(|_| CniError::config(format!("{s:?} is not an IP address")))
}

fn parse_net(s: &str) -> Result<IpNet, CniError> {
    s.parse().map_err(|_| CniError::config(format!("invalid CIDR {s:?}")))
}

fn parse_mac(s: &str) -> Result<Mac, CniError> {
    s.parse().map_err(|e: InvalidMac| CniError::config(e.to_string()))
}

fn side(s: nl::Side) -> Side {
    match s {
        nl::Side::Host => Side::Host,
        nl::Side::Container => Side::Container,
    }
}

impl From<LinkView> for LinkInfo {
    fn from(v: LinkView) -> Self {
        let l = v.link;
        LinkInfo {
            name: l.name,
            index: l.index,
            mac: l.mac.map(|m| m.to_string()).unwrap_or_default(),
            mtu: l.mtu,
            up: l.up,
            kind: l.kind,
            master: v.master,
        }
    }
}

/// An address a 0.2 policy asks for, bare or with a prefix length.
fn wanted(s: &str) -> Result<WantedIp, CniError> {
    match s.parse::<IpNet>() {
        Ok(n) => Ok(WantedIp { addr: n.addr(), prefix_len: Some(n.prefix_len()) }),
        Err(_) => Ok(WantedIp { addr: parse_ip(s)?, prefix_len: None }),
    }
}

/// A 0.2 policy's decision; its strings are the policy's to get right (code 100).
pub fn decision(d: admission::Decision, policy: &str) -> Result<Decision, CniError> {
    use admission::Decision as D;
    let invalid =
        |e: CniError| CniError::new(Code::PluginFailure, format!("policy {policy} returned an invalid {}", e.msg));
    Ok(match d {
        D::Allow => Decision::Allow,
        D::Deny(reason) => Decision::Deny(reason),
        D::AllowWith(c) => {
            let convert = || -> Result<Changes, CniError> {
                Ok(Changes {
                    ips: c.ips.iter().map(|ip| wanted(ip)).collect::<Result<_, _>>()?,
                    ranges: c
                        .ranges
                        .into_iter()
                        .map(|r| {
                            Ok(Range {
                                subnet: parse_net(&r.subnet)?,
                                range_start: r.range_start.as_deref().map(parse_ip).transpose()?,
                                range_end: r.range_end.as_deref().map(parse_ip).transpose()?,
                                gateway: r.gateway.as_deref().map(parse_ip).transpose()?,
                            })
                        })
                        .collect::<Result<_, CniError>>()?,
                    routes: c.routes.into_iter().map(model::Route::try_from).collect::<Result<_, _>>()?,
                })
            };
            Decision::AllowWith(convert().map_err(invalid)?)
        }
    })
}

/// The traits of every version of the package this host serves. Their types
/// are the same Rust types (see host/caps/wit/compat-0.1.0.wit), so one body
/// serves each version.
macro_rules! host_traits {
    ($v:ident) => {
        super::log_and_delegate!($v);

        impl $v::ipam_store::Host for State {
            async fn reserve(&mut self, ip: String, container_id: String, ifname: String, range_set: u32) -> Res<bool> {
                Ok(self.ipam()?.reserve(parse_ip(&ip)?, &container_id, &ifname, range_set)?)
            }

            async fn last_reserved(&mut self, range_set: u32) -> Res<Option<String>> {
                Ok(self.ipam()?.last_reserved(range_set)?.map(|ip| ip.to_string()))
            }

            async fn leases(&mut self) -> Res<Vec<ipam_store::Lease>> {
                Ok(self
                    .ipam()?
                    .list()?
                    .into_iter()
                    .map(|l| ipam_store::Lease { ip: l.ip.to_string(), container_id: l.container_id, ifname: l.ifname })
                    .collect())
            }

            async fn release_owner(&mut self, container_id: String, ifname: String) -> Res<Vec<String>> {
                Ok(self.ipam()?.release_owner(&container_id, &ifname)?.iter().map(ToString::to_string).collect())
            }
        }

        impl $v::netlink::Host for State {
            async fn ensure_bridge(&mut self, spec: BridgeSpec) -> Res<LinkInfo> {
                let params = BridgeParams {
                    name: &spec.name,
                    mtu: spec.mtu,
                    promisc: spec.promisc,
                    vlan_filtering: spec.vlan_filtering,
                };
                Ok(self.netlink()?.ensure_bridge(&params).await?.into())
            }

            async fn create_veth(&mut self, spec: VethSpec) -> Res<VethPair> {
                let mac = spec.container_mac.as_deref().map(parse_mac).transpose()?;
                let (host, container) = self.netlink()?.create_veth(&spec.container_ifname, spec.mtu, mac).await?;
                Ok(VethPair { host: host.into(), container: container.into() })
            }

            async fn set_master(&mut self, link: String, bridge: String) -> Res<()> {
                Ok(self.netlink()?.set_master(&link, &bridge).await?)
            }

            async fn set_hairpin(&mut self, link: String, on: bool) -> Res<()> {
                Ok(self.netlink()?.set_hairpin(&link, on).await?)
            }

            async fn set_port_vlan(&mut self, link: String, vid: u16) -> Res<()> {
                Ok(self.netlink()?.set_port_vlan(&link, vid).await?)
            }

            async fn set_link_up(&mut self, s: nl::Side, link: String, up: bool) -> Res<()> {
                Ok(self.netlink()?.set_link_up(side(s), &link, up).await?)
            }

            async fn set_mtu(&mut self, s: nl::Side, link: String, mtu: u32) -> Res<()> {
                Ok(self.netlink()?.set_mtu(side(s), &link, mtu).await?)
            }

            async fn get_link(&mut self, s: nl::Side, link: String) -> Res<Option<LinkInfo>> {
                Ok(self.netlink()?.get_link(side(s), &link).await?.map(Into::into))
            }

            async fn delete_link(&mut self, s: nl::Side, link: String) -> Res<()> {
                Ok(self.netlink()?.delete_link(side(s), &link).await?)
            }

            async fn veth_peer(&mut self, container_link: String) -> Res<Option<LinkInfo>> {
                Ok(self.netlink()?.veth_peer(&container_link).await?.map(Into::into))
            }

            async fn add_address(&mut self, s: nl::Side, link: String, cidr: String) -> Res<()> {
                Ok(self.netlink()?.add_address(side(s), &link, parse_net(&cidr)?).await?)
            }

            async fn del_address(&mut self, s: nl::Side, link: String, cidr: String) -> Res<()> {
                Ok(self.netlink()?.del_address(side(s), &link, parse_net(&cidr)?).await?)
            }

            async fn list_addresses(&mut self, s: nl::Side, link: String) -> Res<Vec<String>> {
                Ok(self.netlink()?.list_addresses(side(s), &link).await?.iter().map(ToString::to_string).collect())
            }

            async fn add_route(&mut self, s: nl::Side, dev: Option<String>, route: types::Route) -> Res<()> {
                let route = model::Route::try_from(route)?;
                Ok(self.netlink()?.change_route(side(s), dev.as_deref(), &route, RouteOp::Add).await?)
            }

            async fn replace_route(&mut self, s: nl::Side, dev: Option<String>, route: types::Route) -> Res<()> {
                let route = model::Route::try_from(route)?;
                Ok(self.netlink()?.change_route(side(s), dev.as_deref(), &route, RouteOp::Replace).await?)
            }

            async fn del_route(&mut self, s: nl::Side, dev: Option<String>, route: types::Route) -> Res<()> {
                let route = model::Route::try_from(route)?;
                Ok(self.netlink()?.change_route(side(s), dev.as_deref(), &route, RouteOp::Delete).await?)
            }

            async fn list_routes(&mut self, s: nl::Side, dev: Option<String>) -> Res<Vec<RouteInfo>> {
                let listed = self.netlink()?.list_routes(side(s), dev.as_deref()).await?;
                Ok(listed
                    .into_iter()
                    .map(|v| RouteInfo {
                        family: if v.route.dst.addr().is_ipv6() { "ipv6" } else { "ipv4" }.into(),
                        route: v.route.into(),
                        dev: v.dev,
                    })
                    .collect())
            }

            async fn sysctl_set(&mut self, s: nl::Side, key: String, value: String) -> Res<()> {
                Ok(self.netlink()?.sysctl_set(side(s), &key, &value)?)
            }

            async fn sysctl_get(&mut self, s: nl::Side, key: String) -> Res<String> {
                Ok(self.netlink()?.sysctl_get(side(s), &key)?)
            }

            async fn masquerade_add(&mut self, source: String, exclude: String) -> Res<()> {
                let source =
                    source.parse().map_err(|_| CniError::config(format!("invalid masquerade source {source:?}")))?;
                Ok(self.netlink()?.masquerade_add(source, parse_net(&exclude)?)?)
            }

            async fn masquerade_del(&mut self) -> Res<()> {
                Ok(self.netlink()?.masquerade_del()?)
            }

            async fn masquerade_gc(&mut self, keep: Vec<String>) -> Res<()> {
                Ok(self.netlink()?.masquerade_gc(&keep)?)
            }
        }
    };
}

host_traits!(current);
host_traits!(v0_1);

#[cfg(test)]
mod tests {
    use super::*;
    use admission::{Changes as WitChanges, Decision as WitDecision, IpRange};

    fn wit_route(dst: &str, gw: Option<&str>) -> types::Route {
        types::Route {
            dst: dst.into(),
            gw: gw.map(Into::into),
            mtu: None,
            advmss: None,
            priority: Some(5),
            table: None,
            scope: None,
        }
    }

    #[test]
    fn a_0_2_result_parses_into_the_model_and_formats_back_the_same() {
        let wit = types::CniResult {
            interfaces: vec![
                types::Iface { name: "veth1".into(), mac: String::new(), mtu: Some(1500), sandbox: String::new() },
                types::Iface {
                    name: "eth0".into(),
                    mac: "0a:58:0a:00:00:05".into(),
                    mtu: None,
                    sandbox: "/run/netns/c".into(),
                },
            ],
            ips: vec![types::IpConfig {
                address: "10.0.0.5/24".into(),
                gateway: Some("10.0.0.1".into()),
                iface: Some(1),
            }],
            routes: vec![wit_route("0.0.0.0/0", Some("10.0.0.1"))],
            dns: Some(types::Dns {
                nameservers: vec!["10.0.0.53".into()],
                domain: None,
                search: vec![],
                options: vec![],
            }),
        };
        let model = result(wit.clone()).unwrap();
        assert_eq!(model.interfaces[0].mac, None, "an empty 0.2 MAC is none");
        assert_eq!(model.interfaces[0].sandbox, None, "an empty 0.2 sandbox is a host interface");
        assert_eq!(model.interfaces[1].sandbox.as_deref(), Some("/run/netns/c"));
        assert_eq!(model.routes[0].priority, Some(5));
        let back = types::CniResult::from(model);
        assert_eq!(back.interfaces[1].mac, wit.interfaces[1].mac);
        assert_eq!((back.ips[0].address.as_str(), back.ips[0].gateway.as_deref()), ("10.0.0.5/24", Some("10.0.0.1")));
        assert_eq!(back.dns.unwrap().nameservers, ["10.0.0.53"]);
    }

    #[test]
    fn a_malformed_0_2_result_is_the_module_s_fault() {
        for bad in [
            types::IpConfig { address: "10.0.0.5".into(), gateway: None, iface: None },
            types::IpConfig { address: "10.0.0.5/24".into(), gateway: Some("gateway".into()), iface: None },
        ] {
            let r = types::CniResult { interfaces: vec![], ips: vec![bad], routes: vec![], dns: None };
            let err = result(r).unwrap_err();
            assert!(err.code == 100 && err.msg.starts_with("plugin returned an invalid result"), "{err}");
        }
    }

    #[test]
    fn a_0_2_decision_keeps_requested_addresses_as_given_and_refuses_garbage() {
        let changes = |ips: &[&str], subnet: &str| {
            WitDecision::AllowWith(WitChanges {
                ips: ips.iter().map(|s| s.to_string()).collect(),
                ranges: vec![IpRange { subnet: subnet.into(), range_start: None, range_end: None, gateway: None }],
                routes: vec![wit_route("192.0.2.0/24", None)],
            })
        };
        let Decision::AllowWith(c) = decision(changes(&["10.9.0.7/24"], "10.9.0.0/24"), "p").unwrap() else {
            panic!("not allow-with");
        };
        assert_eq!(c.ips, [WantedIp { addr: "10.9.0.7".parse().unwrap(), prefix_len: Some(24) }]);
        assert_eq!(c.ips[0].to_string(), "10.9.0.7/24");
        assert_eq!(c.ranges[0].subnet, "10.9.0.0/24".parse::<IpNet>().unwrap());
        assert_eq!(c.routes[0].dst, "192.0.2.0/24".parse::<IpNet>().unwrap());
        for (ips, subnet) in [(&["nope"][..], "10.9.0.0/24"), (&[][..], "10.9.0.0/99")] {
            let err = decision(changes(ips, subnet), "p").unwrap_err();
            assert!(err.code == 100 && err.msg.starts_with("policy p returned an invalid"), "{err}");
        }
        assert_eq!(decision(WitDecision::Deny("no".into()), "p").unwrap(), Decision::Deny("no".into()));
    }
}
