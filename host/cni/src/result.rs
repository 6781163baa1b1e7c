//! The result model (spec 1.1) and its conversion to and from every version.

use crate::error::{CniError, Code};
use crate::mac::Mac;
use crate::version::Version;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::IpAddr;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    /// None for a link without an Ethernet address (tun, wireguard; an
    /// InfiniBand address, which is not 6 bytes, is not kept either).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "ethernet_or_none")]
    pub mac: Option<Mac>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The netns path of a container-side interface; none for a host one.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "empty_is_none")]
    pub sandbox: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// The interface's address with its prefix length (host bits set).
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

impl Route {
    /// A route to `dst` on the link, with nothing else set.
    pub fn to(dst: IpNet) -> Route {
        Route { dst, gw: None, mtu: None, advmss: None, priority: None, table: None, scope: None }
    }

    /// The same route through `gw`.
    pub fn via(self, gw: IpAddr) -> Route {
        Route { gw: Some(gw), ..self }
    }

    /// The destination and gateway alone, as spec versions before 1.1 know it.
    fn pre_1_1(&self) -> Route {
        Route { gw: self.gw, ..Route::to(self.dst) }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    fn is_empty(&self) -> bool {
        self == &Dns::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub dns: Option<Dns>,
}

/// Reads a MAC as an Ethernet address, anything else (`""`, a 20-byte
/// IPoIB address another plugin reported) as none: the field only informs.
fn ethernet_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Mac>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.and_then(|s| s.parse().ok()))
}

/// Reads `""` (which some plugins print for "none") as none.
fn empty_is_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err: std::fmt::Display>,
{
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// The 0.1.0/0.2.0 `ip4`/`ip6` section.
#[derive(Debug, Deserialize, Serialize)]
struct LegacyIp {
    ip: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
}

impl CniResult {
    /// Reads a result in any spec version (prevResult, a delegate's output).
    pub fn from_any(v: &Value) -> Result<CniResult, CniError> {
        let bad = |e: serde_json::Error| CniError::new(Code::DecodeFailure, format!("cannot decode CNI result: {e}"));
        if v.get("ip4").is_some() || v.get("ip6").is_some() {
            let mut out = CniResult::default();
            for key in ["ip4", "ip6"] {
                let Some(section) = v.get(key).filter(|s| !s.is_null()) else {
                    continue;
                };
                let ip: LegacyIp = serde_json::from_value(section.clone()).map_err(bad)?;
                out.ips.push(IpConfig { address: ip.ip, gateway: ip.gateway, interface: None });
                out.routes.extend(ip.routes.iter().map(Route::pre_1_1));
            }
            out.dns = v.get("dns").map(|d| serde_json::from_value(d.clone())).transpose().map_err(bad)?;
            return Ok(out);
        }
        serde_json::from_value(v.clone()).map_err(bad)
    }

    /// The result as `cni_version` prints it.
    pub fn to_version(&self, cni_version: &str, v: Version) -> Value {
        let dns = self.dns.as_ref().filter(|d| !d.is_empty());
        if v < Version::V0_3_0 {
            let legacy = |want_v6: bool| {
                self.ips.iter().find(|ip| ip.address.addr().is_ipv6() == want_v6).map(|ip| LegacyIp {
                    ip: ip.address,
                    gateway: ip.gateway,
                    routes: self
                        .routes
                        .iter()
                        .filter(|r| r.dst.addr().is_ipv6() == want_v6)
                        .map(Route::pre_1_1)
                        .collect(),
                })
            };
            let mut out = json!({ "cniVersion": cni_version });
            if let Some(ip4) = legacy(false) {
                out["ip4"] = serde_json::to_value(ip4).expect("plain struct");
            }
            if let Some(ip6) = legacy(true) {
                out["ip6"] = serde_json::to_value(ip6).expect("plain struct");
            }
            if let Some(dns) = dns {
                out["dns"] = serde_json::to_value(dns).expect("plain struct");
            }
            return out;
        }
        let modern = v >= Version::V1_1_0;
        let interfaces: Vec<Interface> =
            self.interfaces.iter().map(|i| Interface { mtu: if modern { i.mtu } else { None }, ..i.clone() }).collect();
        let routes: Vec<Route> = self.routes.iter().map(|r| if modern { r.clone() } else { r.pre_1_1() }).collect();
        let mut ips = serde_json::to_value(&self.ips).expect("plain struct");
        if v < Version::V1_0_0 {
            for (out, ip) in ips.as_array_mut().expect("a list").iter_mut().zip(&self.ips) {
                out["version"] = if ip.address.addr().is_ipv6() { "6" } else { "4" }.into();
            }
        }
        let mut out = json!({ "cniVersion": cni_version });
        if !interfaces.is_empty() {
            out["interfaces"] = serde_json::to_value(interfaces).expect("plain struct");
        }
        if !self.ips.is_empty() {
            out["ips"] = ips;
        }
        if !routes.is_empty() {
            out["routes"] = serde_json::to_value(routes).expect("plain struct");
        }
        out["dns"] = dns.map(|d| serde_json::to_value(d).expect("plain struct")).unwrap_or(json!({}));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: Some("aa:bb:cc:dd:ee:ff".parse().unwrap()),
                mtu: Some(1500),
                sandbox: Some("/var/run/netns/x".into()),
            }],
            ips: vec![
                IpConfig { address: net("10.1.0.5/16"), gateway: Some(ip("10.1.0.1")), interface: Some(0) },
                IpConfig { address: net("fd00::5/64"), gateway: Some(ip("fd00::1")), interface: Some(0) },
            ],
            routes: vec![
                Route { priority: Some(10), ..Route::to(net("0.0.0.0/0")).via(ip("10.1.0.1")) },
                Route::to(net("::/0")),
            ],
            dns: Some(Dns { nameservers: vec![ip("10.1.0.53")], ..Dns::default() }),
        }
    }

    #[test]
    fn v1_1_keeps_everything_and_round_trips() {
        let out = sample().to_version("1.1.0", Version::V1_1_0);
        assert_eq!(out["routes"][0]["priority"], 10);
        assert_eq!(out["interfaces"][0]["mtu"], 1500);
        assert_eq!(CniResult::from_any(&out).unwrap(), sample());
    }

    #[test]
    fn v1_0_drops_the_1_1_fields() {
        let out = sample().to_version("1.0.0", Version::V1_0_0);
        assert!(out["routes"][0].get("priority").is_none());
        assert!(out["interfaces"][0].get("mtu").is_none());
        assert!(out["ips"][0].get("version").is_none());
    }

    #[test]
    fn v0_4_and_v0_3_carry_ip_versions() {
        for ver in ["0.3.1", "0.4.0"] {
            let out = sample().to_version(ver, Version::parse(ver).unwrap());
            assert_eq!(out["cniVersion"], ver);
            assert_eq!(out["ips"][0]["version"], "4");
            assert_eq!(out["ips"][1]["version"], "6");
            let back = CniResult::from_any(&out).unwrap();
            assert_eq!(back.ips, sample().ips);
        }
    }

    #[test]
    fn v0_2_splits_families_into_ip4_and_ip6() {
        let out = sample().to_version("0.2.0", Version::parse("0.2.0").unwrap());
        assert_eq!(out["ip4"]["ip"], "10.1.0.5/16");
        assert_eq!(out["ip4"]["gateway"], "10.1.0.1");
        assert_eq!(out["ip4"]["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(out["ip6"]["routes"][0]["dst"], "::/0");
        assert_eq!(out["dns"]["nameservers"][0], "10.1.0.53");
        assert!(out.get("ips").is_none());
        let back = CniResult::from_any(&out).unwrap();
        assert_eq!(back.ips[0].address, net("10.1.0.5/16"));
        assert_eq!(back.routes, vec![Route::to(net("0.0.0.0/0")).via(ip("10.1.0.1")), Route::to(net("::/0"))]);
    }

    #[test]
    fn empty_macs_and_sandboxes_read_as_none_and_bad_addresses_are_decode_errors() {
        let r = CniResult::from_any(&json!({"interfaces": [{"name": "veth1", "mac": "", "sandbox": ""}]})).unwrap();
        assert_eq!(r.interfaces[0], Interface { name: "veth1".into(), ..Interface::default() });
        let ib = "80:00:00:48:fe:80:00:00:00:00:00:00:02:c9:03:00:0f:2a:1b:01";
        let r = CniResult::from_any(&json!({"interfaces": [{"name": "ib0", "mac": ib}]})).unwrap();
        assert_eq!(r.interfaces[0].mac, None, "a non-Ethernet MAC");
        for bad in [
            json!({"ips": [{"address": "10.0.0.300/24"}]}),
            json!({"routes": [{"dst": "10.0.0.0/24", "gw": "nope"}]}),
            json!({"ip4": {"ip": "10.0.0.2"}}),
        ] {
            assert_eq!(CniResult::from_any(&bad).unwrap_err().code, Code::DecodeFailure, "{bad}");
        }
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let err = CniResult::from_any(&json!({"ips": "nope"})).unwrap_err();
        assert_eq!(err.code, Code::DecodeFailure);
    }
}
