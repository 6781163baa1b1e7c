use super::*;
use crate::cni::result::{CniResult, IpConfig};
use serde_json::json;
use wasmcni_kernel::netpol::{Allow, Ports, Protocol};

fn record(args: &str, policy: serde_json::Value, ips: &[&str]) -> Recorded {
    let ips = ips.iter().map(|ip| IpConfig { address: ip.parse().unwrap(), gateway: None, interface: None }).collect();
    Recorded {
        args: args.into(),
        config: json!({"name": "pods", "type": "wasm-bridge", "networkPolicy": policy}),
        result: Some(CniResult { ips, ..CniResult::default() }),
    }
}

fn pod(namespace: &str, name: &str, labels: &[(&str, &str)], ips: &[&str]) -> Pod {
    Pod {
        namespace: namespace.into(),
        name: name.into(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
    }
}

#[test]
fn records_name_the_pods_each_policy_config_governs() {
    let dir = json!({"manifests": "/etc/netpol"});
    let records = vec![
        record("K8S_POD_NAMESPACE=x;K8S_POD_NAME=a", dir.clone(), &["10.0.0.2/24"]),
        // The same pod's second interface.
        record("IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a", dir.clone(), &["fd00::2/64"]),
        record("K8S_POD_NAMESPACE=y;K8S_POD_NAME=b", json!({"manifests": "/other"}), &["10.0.1.2/24"]),
        // Not a pod, or not policed: left alone.
        record("K8S_POD_NAMESPACE=x;K8S_POD_NAME=", dir.clone(), &["10.0.0.3/24"]),
        record("", dir, &["10.0.0.4/24"]),
        Recorded { args: "K8S_POD_NAMESPACE=x;K8S_POD_NAME=c".into(), config: json!({"name": "pods"}), result: None },
    ];
    let got = served(records);
    assert_eq!(got.len(), 2);
    let main = &got[&serde_json::from_value::<NetworkPolicy>(json!({"manifests": "/etc/netpol"})).unwrap()];
    let a = Served {
        namespace: "x".into(),
        name: "a".into(),
        ips: vec!["10.0.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
    };
    assert_eq!(main, &[a]);
}

#[test]
fn local_pods_take_labels_from_the_source_and_addresses_from_the_node() {
    let objects = Objects {
        policies: vec![],
        namespaces: vec![],
        pods: vec![pod("x", "a", &[("app", "web")], &["10.9.9.9"]), pod("y", "b", &[("app", "db")], &["10.0.1.2"])],
    };
    let here = |ns: &str, name: &str, ip: &str| Served {
        namespace: ns.into(),
        name: name.into(),
        ips: vec![ip.parse().unwrap()],
    };
    let (local, remote) = split(&objects, &[here("x", "a", "10.0.0.2"), here("x", "new", "10.0.0.3")]);
    assert_eq!(local, [pod("x", "a", &[("app", "web")], &["10.0.0.2"]), pod("x", "new", &[], &["10.0.0.3"])]);
    assert_eq!(remote, [pod("y", "b", &[("app", "db")], &["10.0.1.2"])]);
}

#[test]
fn rules_become_filters_on_local_addresses_with_only_isolated_directions() {
    let local = [pod("x", "a", &[], &["10.0.0.2", "fd00::2"])];
    let allow = Allow { peers: None, ports: vec![Ports { protocol: Protocol::Tcp, range: Some((80, 80)) }] };
    let rules = |namespace: &str| PodRules {
        namespace: namespace.into(),
        name: "a".into(),
        ingress_isolated: true,
        egress_isolated: false,
        ingress: vec![allow.clone()],
        egress: vec![],
    };
    let got = filters(vec![rules("x"), rules("elsewhere")], &local);
    let want =
        PodFilter { name: "x.a".into(), addrs: local[0].ips.clone(), ingress: Some(vec![allow.clone()]), egress: None };
    assert_eq!(got, [want]);
}
