//! The cluster network as flannel describes it (`Network`, `SubnetLen`,
//! `SubnetMin`, `SubnetMax`, `Backend`; with `EnableIPv6`, `IPv6Network` and
//! `IPv6SubnetLen` too), the node subnets carved from it, and the
//! flannel-compatible `subnet.env` a node's config reads its subnet from.

use anyhow::{Context, Result, bail};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkConfig {
    pub network: Ipv4Net,
    #[serde(default = "default_subnet_len")]
    pub subnet_len: u8,
    pub subnet_min: Option<Ipv4Addr>,
    pub subnet_max: Option<Ipv4Addr>,
    #[serde(default)]
    pub backend: BackendConfig,
    /// Dual stack: every node holds an IPv6 subnet beside its IPv4 one.
    #[serde(rename = "EnableIPv6", default)]
    pub enable_ipv6: bool,
    #[serde(rename = "IPv6Network")]
    pub ipv6_network: Option<Ipv6Net>,
    #[serde(rename = "IPv6SubnetLen", default = "default_v6_subnet_len")]
    pub ipv6_subnet_len: u8,
}

fn default_v6_subnet_len() -> u8 {
    64
}

/// flannel's `Backend`: what a VXLAN backend's VTEP is, and whether peers on
/// the same network get direct routes. The routing plugin is the daemon's
/// choice (`--routing-plugin`); `Type` is only checked against it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct BackendConfig {
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    #[serde(rename = "VNI")]
    pub vni: Option<u32>,
    pub port: Option<u16>,
    pub direct_routing: Option<bool>,
}

fn default_subnet_len() -> u8 {
    24
}

impl NetworkConfig {
    pub fn parse(json: &str) -> Result<NetworkConfig> {
        let c: NetworkConfig = serde_json::from_str(json).context("invalid network config")?;
        if c.subnet_len <= c.network.prefix_len() || c.subnet_len > 30 {
            bail!("SubnetLen {} does not fit in Network {}", c.subnet_len, c.network);
        }
        if c.enable_ipv6 {
            let Some(v6) = c.ipv6_network else { bail!("EnableIPv6 needs an IPv6Network") };
            // The n-th IPv4 subnet pairs with the n-th IPv6 one: there must be as many.
            let (v4_bits, v6_bits) =
                (c.subnet_len - c.network.prefix_len(), c.ipv6_subnet_len.saturating_sub(v6.prefix_len()));
            if c.ipv6_subnet_len <= v6.prefix_len() || c.ipv6_subnet_len > 126 || v6_bits < v4_bits {
                bail!("IPv6SubnetLen {} does not give IPv6Network {v6} a subnet for every IPv4 one", c.ipv6_subnet_len);
            }
        }
        Ok(c)
    }

    /// The IPv6 cluster network, when dual stack is on.
    pub fn v6(&self) -> Option<Ipv6Net> {
        self.ipv6_network.filter(|_| self.enable_ipv6).map(|n| n.trunc())
    }

    /// The IPv6 subnet that goes with the IPv4 node subnet `v4`: the one at
    /// the same place in its network, so a claim of `v4` claims it too.
    pub fn v6_subnet(&self, v4: &Ipv4Net) -> Option<Ipv6Net> {
        let net = self.v6()?;
        let index = (u32::from(v4.network()) - u32::from(self.network.network())) >> (32 - self.subnet_len);
        let offset = u128::from(index) << (128 - self.ipv6_subnet_len);
        Ipv6Net::new(Ipv6Addr::from(u128::from(net.network()) + offset), self.ipv6_subnet_len).ok()
    }

    /// Every node subnet a node may claim, in order. As flannel, the first
    /// subnet of the network (often its gateway's) is left out by default.
    pub fn subnets(&self) -> Vec<Ipv4Net> {
        let all: Vec<Ipv4Net> = self.network.subnets(self.subnet_len).expect("checked in parse").collect();
        let min = self.subnet_min.unwrap_or(all[1].network());
        let max = self.subnet_max.unwrap_or(all[all.len() - 1].network());
        all.into_iter().filter(|s| s.network() >= min && s.network() <= max).collect()
    }

    pub fn contains(&self, subnet: &Ipv4Net) -> bool {
        self.subnets().contains(subnet)
    }
}

/// The etcd key of a node's subnets, flannel style: `10.244.1.0-24`, or
/// with dual stack `10.244.1.0-24&fc00:0:0:1::-64`.
pub fn subnet_key(subnet: &Ipv4Net, v6: Option<&Ipv6Net>) -> String {
    let part = |net: IpNet| format!("{}-{}", net.network(), net.prefix_len());
    let v4 = part((*subnet).into());
    match v6 {
        Some(v6) => format!("{v4}&{}", part((*v6).into())),
        None => v4,
    }
}

pub fn parse_subnet_key(key: &str) -> Option<(Ipv4Net, Option<Ipv6Net>)> {
    let part = |s: &str| {
        let (ip, len) = s.rsplit_once('-')?;
        IpNet::new(ip.parse().ok()?, len.parse().ok()?).ok()
    };
    let name = key.rsplit('/').next()?;
    let (v4, v6) = name.split_once('&').map_or((name, None), |(v4, v6)| (v4, Some(v6)));
    let IpNet::V4(v4) = part(v4)? else { return None };
    let v6 = match v6.map(part) {
        None => None,
        Some(Some(IpNet::V6(v6))) => Some(v6),
        Some(_) => return None,
    };
    Some((v4, v6))
}

/// What `subnet.env` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetEnv {
    pub network: Ipv4Net,
    /// The node's subnet, written as its first address (the bridge's).
    pub subnet: Ipv4Net,
    pub mtu: u32,
    pub ip_masq: bool,
    /// Dual stack: the IPv6 cluster network and the node's IPv6 subnet
    /// (FLANNEL_IPV6_NETWORK, FLANNEL_IPV6_SUBNET, written as its first address).
    pub ipv6: Option<(Ipv6Net, Ipv6Net)>,
}

impl SubnetEnv {
    pub fn render(&self) -> String {
        let gateway = Ipv4Net::new(self.subnet.hosts().next().unwrap_or(self.subnet.addr()), self.subnet.prefix_len())
            .expect("same prefix");
        let mut text = format!(
            "FLANNEL_NETWORK={}\nFLANNEL_SUBNET={gateway}\nFLANNEL_MTU={}\nFLANNEL_IPMASQ={}\n",
            self.network, self.mtu, self.ip_masq
        );
        if let Some((network, subnet)) = self.ipv6 {
            let first = Ipv6Addr::from(u128::from(subnet.network()) + 1);
            text.push_str(&format!(
                "FLANNEL_IPV6_NETWORK={network}\nFLANNEL_IPV6_SUBNET={first}/{}\n",
                subnet.prefix_len()
            ));
        }
        text
    }

    pub fn parse(text: &str) -> Result<SubnetEnv> {
        let get = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_owned())
                .with_context(|| format!("no {key}"))
        };
        Ok(SubnetEnv {
            network: get("FLANNEL_NETWORK")?.parse().context("FLANNEL_NETWORK")?,
            subnet: get("FLANNEL_SUBNET")?.parse::<Ipv4Net>().context("FLANNEL_SUBNET")?.trunc(),
            mtu: get("FLANNEL_MTU").ok().and_then(|m| m.parse().ok()).unwrap_or(1500),
            ip_masq: get("FLANNEL_IPMASQ").is_ok_and(|v| v == "true"),
            ipv6: match (get("FLANNEL_IPV6_NETWORK"), get("FLANNEL_IPV6_SUBNET")) {
                (Ok(network), Ok(subnet)) => Some((
                    network.parse().context("FLANNEL_IPV6_NETWORK")?,
                    subnet.parse::<Ipv6Net>().context("FLANNEL_IPV6_SUBNET")?.trunc(),
                )),
                _ => None,
            },
        })
    }

    pub fn read(path: &Path) -> Result<SubnetEnv> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        SubnetEnv::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Writes the file whole or not at all: a plugin never reads half of it.
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.render()).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_follow_flannels_defaults_and_bounds() {
        let c = NetworkConfig::parse(r#"{"Network": "10.244.0.0/16", "SubnetLen": 24}"#).unwrap();
        let s = c.subnets();
        assert_eq!(
            (s.len(), s[0].to_string(), s[254].to_string()),
            (255, "10.244.1.0/24".into(), "10.244.255.0/24".into())
        );
        let c = NetworkConfig::parse(
            r#"{"Network": "10.244.0.0/16", "SubnetLen": 24, "SubnetMin": "10.244.10.0", "SubnetMax": "10.244.12.0"}"#,
        )
        .unwrap();
        assert_eq!(
            c.subnets().iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["10.244.10.0/24", "10.244.11.0/24", "10.244.12.0/24"]
        );
        assert!(NetworkConfig::parse(r#"{"Network": "10.244.0.0/16", "SubnetLen": 8}"#).is_err());
        let c = NetworkConfig::parse(
            r#"{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan", "VNI": 4, "Port": 4789, "DirectRouting": true}}"#,
        )
        .unwrap();
        let want =
            BackendConfig { kind: Some("vxlan".into()), vni: Some(4), port: Some(4789), direct_routing: Some(true) };
        assert_eq!((c.subnet_len, c.backend), (24, want));
    }

    #[test]
    fn subnet_env_round_trips_in_flannels_format() {
        let env = SubnetEnv {
            network: "10.244.0.0/16".parse().unwrap(),
            subnet: "10.244.3.0/24".parse().unwrap(),
            mtu: 1450,
            ip_masq: true,
            ipv6: None,
        };
        let text = env.render();
        assert_eq!(
            text,
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        );
        assert_eq!(SubnetEnv::parse(&text).unwrap(), env);
        assert_eq!(parse_subnet_key("/wasmcni/network/subnets/10.244.3.0-24"), Some((env.subnet, None)));
        assert_eq!(subnet_key(&env.subnet, None), "10.244.3.0-24");
    }

    #[test]
    fn dual_stack_pairs_each_ipv4_subnet_with_an_ipv6_one_in_flannels_key_and_file() {
        let c = NetworkConfig::parse(
            r#"{"Network": "10.244.0.0/16", "EnableIPv6": true, "IPv6Network": "fc00::/48", "IPv6SubnetLen": 64}"#,
        )
        .unwrap();
        let v4: Ipv4Net = "10.244.3.0/24".parse().unwrap();
        let v6 = c.v6_subnet(&v4).unwrap();
        assert_eq!(v6.to_string(), "fc00:0:0:3::/64");
        assert_eq!(c.v6_subnet(&"10.244.255.0/24".parse().unwrap()).unwrap().to_string(), "fc00:0:0:ff::/64");
        let key = subnet_key(&v4, Some(&v6));
        assert_eq!(key, "10.244.3.0-24&fc00:0:0:3::-64");
        assert_eq!(parse_subnet_key(&format!("/coreos.com/network/subnets/{key}")), Some((v4, Some(v6))));
        let env =
            SubnetEnv { network: c.network, subnet: v4, mtu: 1430, ip_masq: false, ipv6: Some((c.v6().unwrap(), v6)) };
        let text = env.render();
        assert!(text.ends_with("FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:3::1/64\n"), "{text}");
        assert_eq!(SubnetEnv::parse(&text).unwrap(), env);
        // Too few IPv6 subnets for the IPv4 ones, or none named.
        let few =
            r#"{"Network": "10.244.0.0/16", "EnableIPv6": true, "IPv6Network": "fc00::/60", "IPv6SubnetLen": 64}"#;
        assert!(NetworkConfig::parse(few).is_err());
        assert!(NetworkConfig::parse(r#"{"Network": "10.244.0.0/16", "EnableIPv6": true}"#).is_err());
        let off = NetworkConfig::parse(r#"{"Network": "10.244.0.0/16", "IPv6Network": "fc00::/48"}"#).unwrap();
        assert_eq!(off.v6_subnet(&v4), None);
    }
}
