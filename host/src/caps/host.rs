//! The generated host traits, implemented on the store state. Each forwards
//! to its capability, and refuses when the plugin's role was not granted it.

use super::State;
use super::bindings::wasmcni::plugin::netlink::{BridgeSpec, LinkInfo, RouteInfo, Side, VethPair, VethSpec};
use super::bindings::wasmcni::plugin::{self as current, ipam_store, log, types};
use super::compat::wasmcni::plugin0_1_0 as v0_1;
use super::netlink::{NetlinkCap, RouteOp};
use crate::cni::env::Command;
use crate::cni::error::{CniError, Code};
use crate::cni::result as model;
use types::CniError as WitError;

type Res<T> = Result<T, WitError>;

impl From<CniError> for WitError {
    fn from(e: CniError) -> Self {
        WitError { code: e.code, msg: e.msg, details: e.details }
    }
}

impl From<WitError> for CniError {
    fn from(e: WitError) -> Self {
        CniError::from_parts(e.code, e.msg, e.details)
    }
}

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

impl State {
    fn netlink(&mut self) -> Result<&mut NetlinkCap, CniError> {
        let plugin = &self.plugin;
        self.netlink.as_mut().ok_or_else(|| CniError::denied(format!("plugin {plugin} was not granted netlink")))
    }

    fn ipam(&self) -> Result<&super::IpamStore, CniError> {
        self.store
            .as_ref()
            .ok_or_else(|| CniError::denied(format!("plugin {} was not granted the IPAM store", self.plugin)))
    }

    async fn delegate(
        &mut self,
        command: Command,
        valid: Option<Vec<(String, String)>>,
    ) -> Result<Option<model::CniResult>, CniError> {
        let plugin = self.plugin.clone();
        let d = self
            .delegate
            .as_mut()
            .ok_or_else(|| CniError::denied(format!("plugin {plugin} was not granted IPAM delegation")))?;
        d.run(command, valid).await
    }
}

impl types::Host for State {}

fn parse_ip(s: &str) -> Result<std::net::IpAddr, CniError> {
    s.parse().map_err(|_| CniError::config(format!("{s:?} is not an IP address")))
}

fn parse_net(s: &str) -> Result<ipnet::IpNet, CniError> {
    s.parse().map_err(|_| CniError::config(format!("invalid CIDR {s:?}")))
}

fn parse_mac(s: &str) -> Result<crate::cni::Mac, CniError> {
    s.parse().map_err(|e: crate::cni::mac::InvalidMac| CniError::config(e.to_string()))
}

/// The traits of every version of the package this host serves. Their types
/// are the same Rust types (see host/wit/compat-0.1.0.wit), so one body
/// serves each version.
macro_rules! host_traits {
    ($v:ident) => {
        impl $v::log::Host for State {
            async fn emit(&mut self, level: log::Level, msg: String) {
                super::log::emit(&self.plugin, level, &msg);
            }
        }

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

        impl $v::delegate::Host for State {
            async fn ipam_add(&mut self) -> Res<types::CniResult> {
                let r = self.delegate(Command::Add, None).await?;
                Ok(r.unwrap_or_default().into())
            }

            async fn ipam_del(&mut self) -> Res<()> {
                Ok(self.delegate(Command::Del, None).await.map(|_| ())?)
            }

            async fn ipam_check(&mut self) -> Res<()> {
                Ok(self.delegate(Command::Check, None).await.map(|_| ())?)
            }

            async fn ipam_status(&mut self) -> Res<()> {
                Ok(self.delegate(Command::Status, None).await.map(|_| ())?)
            }

            async fn ipam_gc(&mut self, valid: Vec<types::Attachment>) -> Res<()> {
                let valid = valid.into_iter().map(|a| (a.container_id, a.ifname)).collect();
                Ok(self.delegate(Command::Gc, Some(valid)).await.map(|_| ())?)
            }
        }

        impl $v::netlink::Host for State {
            async fn ensure_bridge(&mut self, spec: BridgeSpec) -> Res<LinkInfo> {
                Ok(self.netlink()?.ensure_bridge(spec).await?)
            }

            async fn create_veth(&mut self, spec: VethSpec) -> Res<VethPair> {
                Ok(self.netlink()?.create_veth(spec).await?)
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

            async fn set_link_up(&mut self, side: Side, link: String, up: bool) -> Res<()> {
                Ok(self.netlink()?.set_link_up(side, &link, up).await?)
            }

            async fn set_mtu(&mut self, side: Side, link: String, mtu: u32) -> Res<()> {
                Ok(self.netlink()?.set_mtu(side, &link, mtu).await?)
            }

            async fn get_link(&mut self, side: Side, link: String) -> Res<Option<LinkInfo>> {
                Ok(self.netlink()?.get_link(side, &link).await?)
            }

            async fn delete_link(&mut self, side: Side, link: String) -> Res<()> {
                Ok(self.netlink()?.delete_link(side, &link).await?)
            }

            async fn veth_peer(&mut self, container_link: String) -> Res<Option<LinkInfo>> {
                Ok(self.netlink()?.veth_peer(&container_link).await?)
            }

            async fn add_address(&mut self, side: Side, link: String, cidr: String) -> Res<()> {
                Ok(self.netlink()?.add_address(side, &link, &cidr).await?)
            }

            async fn del_address(&mut self, side: Side, link: String, cidr: String) -> Res<()> {
                Ok(self.netlink()?.del_address(side, &link, &cidr).await?)
            }

            async fn list_addresses(&mut self, side: Side, link: String) -> Res<Vec<String>> {
                Ok(self.netlink()?.list_addresses(side, &link).await?)
            }

            async fn add_route(&mut self, side: Side, dev: Option<String>, route: types::Route) -> Res<()> {
                Ok(self.netlink()?.change_route(side, dev.as_deref(), route, RouteOp::Add).await?)
            }

            async fn replace_route(&mut self, side: Side, dev: Option<String>, route: types::Route) -> Res<()> {
                Ok(self.netlink()?.change_route(side, dev.as_deref(), route, RouteOp::Replace).await?)
            }

            async fn del_route(&mut self, side: Side, dev: Option<String>, route: types::Route) -> Res<()> {
                Ok(self.netlink()?.change_route(side, dev.as_deref(), route, RouteOp::Delete).await?)
            }

            async fn list_routes(&mut self, side: Side, dev: Option<String>) -> Res<Vec<RouteInfo>> {
                Ok(self.netlink()?.list_routes(side, dev.as_deref()).await?)
            }

            async fn sysctl_set(&mut self, side: Side, key: String, value: String) -> Res<()> {
                Ok(self.netlink()?.sysctl_set(side, &key, &value)?)
            }

            async fn sysctl_get(&mut self, side: Side, key: String) -> Res<String> {
                Ok(self.netlink()?.sysctl_get(side, &key)?)
            }

            async fn masquerade_add(&mut self, source: String, exclude: String) -> Res<()> {
                Ok(self.netlink()?.masquerade_add(&source, &exclude)?)
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
