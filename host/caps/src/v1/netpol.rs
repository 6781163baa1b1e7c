//! The network-policy export (1.2): namespaces and pods in, and out each
//! local pod's isolation and allow-lists, typed for the host's nftables
//! compiler.

use super::convert::net;
use crate::bindings::exports::wasmcni::plugin::network_policy as w;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use wasmcni_cni::error::CniError;
pub use wasmcni_kernel::netpol::{Allow, Ports, Protocol};

/// A namespace as the module sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// A pod as the module sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub ips: Vec<IpAddr>,
}

/// What a local pod may receive and send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRules {
    pub namespace: String,
    pub name: String,
    pub ingress_isolated: bool,
    pub egress_isolated: bool,
    pub ingress: Vec<Allow>,
    pub egress: Vec<Allow>,
}

fn labels(l: &BTreeMap<String, String>) -> Vec<w::Label> {
    l.iter().map(|(key, value)| w::Label { key: key.clone(), value: value.clone() }).collect()
}

pub fn namespace(n: &Namespace) -> w::Namespace {
    w::Namespace { name: n.name.clone(), labels: labels(&n.labels) }
}

pub fn pod(p: &Pod) -> w::Pod {
    w::Pod {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        labels: labels(&p.labels),
        ips: p.ips.iter().map(|ip| (*ip).into()).collect(),
    }
}

fn allow(a: w::Allow) -> Result<Allow, CniError> {
    let peers = a.peers.map(|p| p.into_iter().map(net).collect::<Result<Vec<_>, _>>()).transpose()?;
    let ports = a
        .ports
        .into_iter()
        .map(|p| Ports {
            protocol: match p.protocol {
                w::Protocol::Tcp => Protocol::Tcp,
                w::Protocol::Udp => Protocol::Udp,
                w::Protocol::Sctp => Protocol::Sctp,
            },
            range: p.range,
        })
        .collect();
    Ok(Allow { peers, ports })
}

/// What the module returned; a prefix out of range is a bad return.
pub fn rules(r: Vec<w::PodRules>) -> Result<Vec<PodRules>, CniError> {
    r.into_iter()
        .map(|r| {
            Ok(PodRules {
                namespace: r.namespace,
                name: r.name,
                ingress_isolated: r.ingress_isolated,
                egress_isolated: r.egress_isolated,
                ingress: r.ingress.into_iter().map(allow).collect::<Result<_, CniError>>()?,
                egress: r.egress.into_iter().map(allow).collect::<Result<_, CniError>>()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::wasmcni::plugin::types;
    use wasmcni_cni::error::Code;

    #[test]
    fn rules_come_back_typed_and_a_bad_prefix_is_refused() {
        let peer: ipnet::IpNet = "10.244.2.0/24".parse().unwrap();
        let wire = |p: types::IpPrefix| {
            vec![w::PodRules {
                namespace: "x".into(),
                name: "a".into(),
                ingress_isolated: true,
                egress_isolated: false,
                ingress: vec![w::Allow {
                    peers: Some(vec![p]),
                    ports: vec![w::Ports { protocol: w::Protocol::Udp, range: Some((53, 53)) }],
                }],
                egress: vec![w::Allow { peers: None, ports: vec![] }],
            }]
        };
        let got = rules(wire(peer.into())).unwrap();
        let udp53 = Ports { protocol: Protocol::Udp, range: Some((53, 53)) };
        assert_eq!(got[0].ingress, [Allow { peers: Some(vec![peer]), ports: vec![udp53] }]);
        assert_eq!(got[0].egress, [Allow { peers: None, ports: vec![] }]);
        assert!(got[0].ingress_isolated && !got[0].egress_isolated);
        let bad = types::IpPrefix { address: types::IpAddress::V4((10, 0, 0, 0)), prefix_len: 40 };
        assert_eq!(rules(wire(bad)).unwrap_err().code, Code::InvalidConfig);
        let p = Pod {
            namespace: "x".into(),
            name: "a".into(),
            labels: [("app".to_string(), "web".to_string())].into(),
            ips: vec!["10.244.1.5".parse().unwrap()],
        };
        let sent = pod(&p);
        assert_eq!((sent.labels[0].key.as_str(), sent.labels[0].value.as_str(), sent.ips.len()), ("app", "web", 1));
    }
}
