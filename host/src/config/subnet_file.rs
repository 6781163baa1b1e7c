//! `"ipam": {"subnetFile": "/run/wasmcni/subnet.env"}`: the node's pod subnet
//! (with dual stack, its IPv4 and IPv6 ones), as the daemon's cluster mode
//! (or flannel) wrote it, stands in for a literal `subnet`; pods get a route
//! to the cluster network unless `routes` says otherwise; and the cluster
//! network becomes the plugin's `clusterNetwork`, which masquerade leaves
//! alone so pods keep their addresses across nodes; and `FLANNEL_MTU` (the
//! overlay's) is the pods' MTU unless `mtu` is set.

use crate::cluster::network::SubnetEnv;
use crate::cni::error::{CniError, Code};
use serde_json::{Value, json};
use std::path::Path;

/// Rewrites `config` when its IPAM section names a subnet file; returns
/// whether it did.
pub fn resolve(config: &mut Value) -> Result<bool, CniError> {
    let Some(path) = config.pointer("/ipam/subnetFile") else { return Ok(false) };
    let path = path.as_str().ok_or_else(|| CniError::config("ipam \"subnetFile\" must be a path"))?.to_owned();
    // Not written yet means the node's daemon has not claimed a subnet yet.
    let env = SubnetEnv::read(Path::new(&path))
        .map_err(|e| CniError::new(Code::TryAgainLater, format!("ipam subnetFile: {e:#}")))?;
    let ipam = config["ipam"].as_object_mut().expect("pointer matched an object");
    ipam.remove("subnetFile");
    if !ipam.contains_key("subnet") && !ipam.contains_key("ranges") {
        match env.ipv6 {
            Some((_, v6)) => ipam.insert("ranges".into(), json!([[{"subnet": env.subnet}], [{"subnet": v6}]])),
            None => ipam.insert("subnet".into(), json!(env.subnet.to_string())),
        };
    }
    // As flannel's CNI plugin: pods reach the rest of the cluster through
    // their node.
    let networks: Vec<String> =
        std::iter::once(env.network.to_string()).chain(env.ipv6.map(|(n, _)| n.to_string())).collect();
    ipam.entry("routes").or_insert_with(|| networks.iter().map(|n| json!({"dst": n})).collect());
    let root = config.as_object_mut().expect("pointer matched an object");
    let cluster = match env.ipv6 {
        Some(_) => json!(networks),
        None => json!(env.network.to_string()),
    };
    root.entry("clusterNetwork").or_insert(cluster);
    root.entry("mtu").or_insert_with(|| json!(env.mtu));
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subnet_file_supplies_the_subnet_and_the_cluster_network() {
        let dir = std::env::temp_dir().join(format!("wcni-subnet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("subnet.env");
        std::fs::write(&file, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\n")
            .unwrap();
        let mut c = json!({"type": "wasm-bridge", "ipam": {"type": "wasm-host-local", "subnetFile": file}});
        assert!(resolve(&mut c).unwrap());
        assert_eq!(
            c["ipam"],
            json!({"type": "wasm-host-local", "subnet": "10.244.7.0/24", "routes": [{"dst": "10.244.0.0/16"}]})
        );
        assert_eq!(c["clusterNetwork"], "10.244.0.0/16");
        assert_eq!(c["mtu"], 1450);
        let mut own = json!({"mtu": 9000, "ipam": {"subnetFile": file}});
        resolve(&mut own).unwrap();
        assert_eq!(own["mtu"], 9000, "the config's own mtu wins");
        let mut missing = json!({"ipam": {"subnetFile": dir.join("nope")}});
        assert_eq!(resolve(&mut missing).unwrap_err().code, 11);
        assert!(!resolve(&mut json!({"ipam": {"subnet": "10.0.0.0/24"}})).unwrap());
        // Dual stack: a range set per family, a route to each cluster network, both spared by masquerade.
        let text = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1430\n\
                    FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:7::1/64\n";
        std::fs::write(&file, text).unwrap();
        let mut dual = json!({"ipam": {"subnetFile": file}});
        resolve(&mut dual).unwrap();
        assert_eq!(dual["ipam"]["ranges"], json!([[{"subnet": "10.244.7.0/24"}], [{"subnet": "fc00:0:0:7::/64"}]]));
        assert_eq!(dual["ipam"]["routes"], json!([{"dst": "10.244.0.0/16"}, {"dst": "fc00::/48"}]));
        assert_eq!(dual["clusterNetwork"], json!(["10.244.0.0/16", "fc00::/48"]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
