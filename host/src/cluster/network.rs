//! The cluster network as flannel describes it (`Network`, `SubnetLen`,
//! `SubnetMin`, `SubnetMax`, `Backend`), the node subnets carved from it, and the
//! flannel-compatible `subnet.env` a node's config reads its subnet from.

use anyhow::{Context, Result, bail};
use ipnet::Ipv4Net;
use serde::Deserialize;
use std::net::Ipv4Addr;
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
        Ok(c)
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

/// The etcd key of a node subnet, flannel style: `10.244.1.0-24`.
pub fn subnet_key(subnet: &Ipv4Net) -> String {
    format!("{}-{}", subnet.network(), subnet.prefix_len())
}

pub fn parse_subnet_key(key: &str) -> Option<Ipv4Net> {
    let (ip, len) = key.rsplit('/').next()?.split_once('-')?;
    Ipv4Net::new(ip.parse().ok()?, len.parse().ok()?).ok()
}

/// What `subnet.env` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetEnv {
    pub network: Ipv4Net,
    /// The node's subnet, written as its first address (the bridge's).
    pub subnet: Ipv4Net,
    pub mtu: u32,
    pub ip_masq: bool,
}

impl SubnetEnv {
    pub fn render(&self) -> String {
        let gateway = Ipv4Net::new(self.subnet.hosts().next().unwrap_or(self.subnet.addr()), self.subnet.prefix_len())
            .expect("same prefix");
        format!(
            "FLANNEL_NETWORK={}\nFLANNEL_SUBNET={gateway}\nFLANNEL_MTU={}\nFLANNEL_IPMASQ={}\n",
            self.network, self.mtu, self.ip_masq
        )
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
        };
        let text = env.render();
        assert_eq!(
            text,
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        );
        assert_eq!(SubnetEnv::parse(&text).unwrap(), env);
        assert_eq!(parse_subnet_key("/wasmcni/network/subnets/10.244.3.0-24"), Some(env.subnet));
        assert_eq!(subnet_key(&env.subnet), "10.244.3.0-24");
    }
}
