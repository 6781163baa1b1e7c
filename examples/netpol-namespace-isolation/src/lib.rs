//! A netpol module in a few lines: namespaces as hard tenancy walls. Every
//! local pod is isolated for ingress and receives, on any port, only from
//! the pods of its own namespace; egress is left open. NetworkPolicy
//! objects are not read: swap this in for `k8s-networkpolicy` to wall off
//! namespaces whatever their policies say.

use wasmcni_sdk::netpol::types::{CniError, IpPrefix};
use wasmcni_sdk::netpol::{Allow, Namespace, NetworkPolicy, Pod, PodRules};

struct NamespaceIsolation;

fn host_prefixes<'a>(pods: impl Iterator<Item = &'a Pod>) -> Vec<IpPrefix> {
    let prefix = |address| match address {
        wasmcni_sdk::netpol::types::IpAddress::V4(_) => 32,
        wasmcni_sdk::netpol::types::IpAddress::V6(_) => 128,
    };
    pods.flat_map(|p| p.ips.iter().map(|&address| IpPrefix { address, prefix_len: prefix(address) })).collect()
}

impl NetworkPolicy for NamespaceIsolation {
    fn rules(_: Vec<String>, _: Vec<Namespace>, local: Vec<Pod>, remote: Vec<Pod>) -> Result<Vec<PodRules>, CniError> {
        let everyone: Vec<&Pod> = local.iter().chain(&remote).collect();
        Ok(local
            .iter()
            .map(|pod| PodRules {
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                ingress_isolated: true,
                egress_isolated: false,
                ingress: vec![Allow {
                    peers: Some(host_prefixes(everyone.iter().copied().filter(|p| p.namespace == pod.namespace))),
                    ports: vec![],
                }],
                egress: vec![],
            })
            .collect())
    }
}

wasmcni_sdk::export_netpol!(NamespaceIsolation);
