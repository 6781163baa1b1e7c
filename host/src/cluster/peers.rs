//! A static peers file for small clusters without etcd: the cluster network
//! and every node's subnet, by node address. Re-read when it changes.
//!
//! ```json
//! {"network": "10.244.0.0/16", "nodes": {"192.168.50.1": "10.244.1.0/24", "192.168.50.2": "10.244.2.0/24"}}
//! ```

use super::NodeLease;
use anyhow::{Context, Result};
use ipnet::Ipv4Net;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

#[derive(Deserialize)]
struct File {
    network: Ipv4Net,
    nodes: BTreeMap<IpAddr, Ipv4Net>,
}

pub struct Peers {
    pub network: Ipv4Net,
    pub nodes: Vec<NodeLease>,
}

pub fn read(path: &Path) -> Result<Peers> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: File = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let nodes = file
        .nodes
        .into_iter()
        .map(|(ip, subnet)| NodeLease { ip, subnet: subnet.trunc(), vtep_mac: None, v6: None })
        .collect();
    Ok(Peers { network: file.network, nodes })
}

/// When the file last changed (for polling).
pub fn stamp(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
