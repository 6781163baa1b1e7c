//! Scenarios after upstream's Netpol e2e: namespaces x, y, z (labelled
//! `ns=<name>`) with pods a, b, c each (labelled `pod=<name>`); pod `<p>` of
//! namespace `<n>` has 10.0.<n>.<p> (x=1, y=2, z=3; a=1, b=2, c=3). Node-local
//! pods are those of x.

use super::*;
use serde_json::{Value, json};
use wasmcni_sdk::netpol::types::IpAddress;

fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs.iter().map(|(k, v)| Label { key: (*k).into(), value: (*v).into() }).collect()
}

fn pod(ns: &str, name: &str) -> Pod {
    let n = match ns {
        "x" => 1,
        "y" => 2,
        _ => 3,
    };
    let p = name.as_bytes()[0] - b'a' + 1;
    Pod {
        namespace: ns.into(),
        name: name.into(),
        labels: labels(&[("pod", name)]),
        ips: vec![IpAddress::V4((10, 0, n, p))],
    }
}

fn cluster() -> (Vec<Namespace>, Vec<Pod>, Vec<Pod>) {
    let namespaces = ["x", "y", "z"].map(|n| Namespace { name: n.into(), labels: labels(&[("ns", n)]) }).to_vec();
    let all: Vec<Pod> = ["x", "y", "z"].iter().flat_map(|ns| ["a", "b", "c"].map(|p| pod(ns, p))).collect();
    let (local, remote) = all.into_iter().partition(|p| p.namespace == "x");
    (namespaces, local, remote)
}

fn policy(ns: &str, spec: Value) -> String {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": ns}, "spec": spec})
    .to_string()
}

fn rules_of(policies: &[String]) -> Vec<PodRules> {
    let (namespaces, local, remote) = cluster();
    compute(policies, &namespaces, &local, &remote).unwrap()
}

/// Pod `name` of x's rules.
fn of<'a>(rules: &'a [PodRules], name: &str) -> &'a PodRules {
    rules.iter().find(|r| r.name == name).unwrap()
}

/// Each allow's peers as strings (`*` for any) and ports as `proto:first-last` (`*` for any).
fn show(allows: &[Allow]) -> Vec<(Vec<String>, Vec<String>)> {
    allows
        .iter()
        .map(|a| {
            let peers = match &a.peers {
                None => vec!["*".to_string()],
                Some(p) => p.iter().map(|n| IpNet::try_from(*n).unwrap().to_string()).collect(),
            };
            let ports = a
                .ports
                .iter()
                .map(|p| {
                    let proto = match p.protocol {
                        Protocol::Tcp => "Tcp",
                        Protocol::Udp => "Udp",
                        Protocol::Sctp => "Sctp",
                    };
                    match p.range {
                        Some((f, l)) => format!("{proto}:{f}-{l}"),
                        None => format!("{proto}:*"),
                    }
                })
                .collect();
            (peers, ports)
        })
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn without_policies_nothing_is_isolated() {
    let r = rules_of(&[]);
    assert_eq!(r.len(), 3);
    assert!(r.iter().all(|r| !r.ingress_isolated && !r.egress_isolated && r.ingress.is_empty()));
}

#[test]
fn default_deny_ingress_and_default_deny_egress() {
    let r = rules_of(&[policy("x", json!({"podSelector": {}}))]);
    assert!(r.iter().all(|r| r.ingress_isolated && !r.egress_isolated && r.ingress.is_empty()));
    let r = rules_of(&[policy("x", json!({"podSelector": {}, "policyTypes": ["Egress"]}))]);
    assert!(r.iter().all(|r| !r.ingress_isolated && r.egress_isolated && r.egress.is_empty()));
    // A policy elsewhere isolates nothing here.
    let r = rules_of(&[policy("y", json!({"podSelector": {}}))]);
    assert!(r.iter().all(|r| !r.ingress_isolated));
}

#[test]
fn allow_from_the_same_namespace_and_from_a_namespace_selector() {
    let same = policy(
        "x",
        json!({"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{"podSelector": {}}]}]}),
    );
    let r = rules_of(&[same]);
    assert_eq!(show(&of(&r, "a").ingress), [(s(&["10.0.1.1/32", "10.0.1.2/32", "10.0.1.3/32"]), vec![])]);
    assert!(!of(&r, "b").ingress_isolated, "b is not selected");
    let from_y = policy(
        "x",
        json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}),
    );
    assert_eq!(
        show(&of(&rules_of(&[from_y]), "c").ingress),
        [(s(&["10.0.2.1/32", "10.0.2.2/32", "10.0.2.3/32"]), vec![])]
    );
}

#[test]
fn pod_and_namespace_selector_in_one_peer_is_and_in_two_peers_is_or() {
    let and = policy(
        "x",
        json!({"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchExpressions": [{"key": "ns", "operator": "In", "values": ["y", "z"]}]},
         "podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
    );
    assert_eq!(show(&of(&rules_of(&[and]), "a").ingress), [(s(&["10.0.2.2/32", "10.0.3.2/32"]), vec![])]);
    let or = policy(
        "x",
        json!({"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "z"}}},
        {"podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
    );
    assert_eq!(
        show(&of(&rules_of(&[or]), "a").ingress),
        [(s(&["10.0.3.1/32", "10.0.3.2/32", "10.0.3.3/32", "10.0.1.2/32"]), vec![])]
    );
}

#[test]
fn match_expressions_not_in_exists_and_does_not_exist() {
    let rule = |expr: Value| policy("x", json!({"podSelector": {"matchExpressions": [expr]}, "ingress": [{}]}));
    let isolated = |p: String| -> Vec<bool> { rules_of(&[p]).iter().map(|r| r.ingress_isolated).collect() };
    assert_eq!(isolated(rule(json!({"key": "pod", "operator": "NotIn", "values": ["a"]}))), [false, true, true]);
    assert_eq!(isolated(rule(json!({"key": "pod", "operator": "Exists"}))), [true, true, true]);
    assert_eq!(isolated(rule(json!({"key": "tier", "operator": "DoesNotExist"}))), [true, true, true]);
    assert_eq!(isolated(rule(json!({"key": "tier", "operator": "NotIn", "values": ["db"]}))), [true, true, true]);
    let (namespaces, local, remote) = cluster();
    let bad = rule(json!({"key": "pod", "operator": "Near"}));
    assert_eq!(compute(&[bad], &namespaces, &local, &remote).unwrap_err().code as u32, 7);
    // An empty rule allows everything from everywhere.
    assert_eq!(
        show(&of(&rules_of(&[rule(json!({"key": "pod", "operator": "Exists"}))]), "a").ingress),
        [(s(&["*"]), vec![])]
    );
}

#[test]
fn ip_blocks_lose_their_excepts() {
    let p = policy(
        "x",
        json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [
        {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.2.0/24", "10.0.3.0/25"]}}]}]}),
    );
    let got = show(&of(&rules_of(&[p]), "a").egress);
    let want = s(&[
        "10.0.0.0/23",
        "10.0.3.128/25",
        "10.0.4.0/22",
        "10.0.8.0/21",
        "10.0.16.0/20",
        "10.0.32.0/19",
        "10.0.64.0/18",
        "10.0.128.0/17",
    ]);
    assert_eq!(got, [(want, vec![])]);
    assert!(subtract("10.0.0.0/24".parse().unwrap(), &["10.0.0.0/16".parse().unwrap()]).is_empty());
}

#[test]
fn ports_protocols_and_end_port_ranges() {
    let p = policy(
        "x",
        json!({"podSelector": {}, "ingress": [{"ports": [
        {"port": 80}, {"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 8000, "endPort": 8080}, {"protocol": "SCTP"}]}]}),
    );
    let got = show(&of(&rules_of(&[p]), "a").ingress);
    assert_eq!(got, [(s(&["*"]), s(&["Tcp:80-80", "Udp:53-53", "Tcp:8000-8080", "Sctp:*"]))]);
    let (namespaces, local, remote) = cluster();
    let backwards = policy("x", json!({"podSelector": {}, "ingress": [{"ports": [{"port": 90, "endPort": 80}]}]}));
    assert!(
        compute(&[backwards], &namespaces, &local, &remote).unwrap_err().msg.contains("endPort 80 is below port 90")
    );
    // A named port is unknown here: that rule opens nothing (not everything).
    let named = policy("x", json!({"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]}));
    let r = rules_of(&[named]);
    assert!(of(&r, "a").ingress_isolated && of(&r, "a").ingress.is_empty());
}

#[test]
fn policies_add_up_and_egress_is_implied_by_egress_rules() {
    let web = policy(
        "x",
        json!({"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
    );
    let dns = policy("x", json!({"podSelector": {}, "egress": [{"ports": [{"protocol": "UDP", "port": 53}]}]}));
    let r = rules_of(&[web, dns]);
    let a = of(&r, "a");
    assert!(
        a.ingress_isolated && a.egress_isolated,
        "policyTypes defaults to Ingress plus Egress when egress rules exist"
    );
    assert_eq!(show(&a.ingress), [(s(&["10.0.1.2/32"]), vec![])]);
    assert_eq!(show(&a.egress), [(s(&["*"]), s(&["Udp:53-53"]))]);
    // A selector that matches no pod allows nothing.
    let nobody = policy(
        "x",
        json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "q"}}}]}]}),
    );
    assert!(of(&rules_of(&[nobody]), "a").ingress.is_empty());
    let (namespaces, local, remote) = cluster();
    assert_eq!(compute(&["{}".into()], &namespaces, &local, &remote).unwrap_err().code as u32, 7);
}
