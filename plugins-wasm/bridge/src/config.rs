//! The bridge plugin's config, with the reference plugin's field names and defaults.

use serde::Deserialize;
use serde_json::Value;
use wasmcni_sdk::cni::types::Invocation;
use wasmcni_sdk::{Error, invocation};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgeConf {
    #[serde(default = "default_bridge")]
    pub bridge: String,
    #[serde(default)]
    pub is_gateway: bool,
    #[serde(default)]
    pub is_default_gateway: bool,
    #[serde(default)]
    pub force_address: bool,
    #[serde(default)]
    pub ip_masq: bool,
    /// The whole pod network across nodes (set from an IPAM `subnetFile`;
    /// one per family with dual stack): masquerade leaves traffic to it
    /// alone, so pods see each other's own addresses.
    #[serde(default, deserialize_with = "one_or_many")]
    pub cluster_network: Vec<ipnet::IpNet>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub hairpin_mode: bool,
    #[serde(default)]
    pub promisc_mode: bool,
    #[serde(default)]
    pub vlan: u16,
    #[serde(default)]
    pub enabledad: bool,
    #[serde(default)]
    pub ipam: Option<Value>,
}

/// One network, or a list of them.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(ipnet::IpNet),
        Many(Vec<ipnet::IpNet>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(n) => vec![n],
        OneOrMany::Many(v) => v,
    })
}

fn default_bridge() -> String {
    "cni0".into()
}

impl BridgeConf {
    pub fn parse(inv: &Invocation) -> Result<BridgeConf, Error> {
        let raw: Value = invocation::parse_config(&inv.config)?;
        let mut conf: BridgeConf =
            serde_json::from_value(raw).map_err(|e| Error::config(format!("invalid bridge config: {e}")))?;
        if conf.is_default_gateway {
            conf.is_gateway = true;
        }
        if conf.vlan > 4094 {
            return Err(Error::config(format!("invalid VLAN ID {} (must be 0-4094)", conf.vlan)));
        }
        if conf.bridge.is_empty() || conf.bridge.len() > 15 {
            return Err(Error::config(format!("invalid bridge name {:?}", conf.bridge)));
        }
        if conf.ipam.as_ref().is_some_and(|i| i.get("type").is_none()) {
            return Err(Error::config("ipam section has no \"type\""));
        }
        Ok(conf)
    }

    pub fn has_ipam(&self) -> bool {
        self.ipam.is_some()
    }
}
