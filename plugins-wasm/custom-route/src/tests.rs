use super::*;
use wasmcni_sdk::cni::links::VethSpec;
use wasmcni_sdk::cni::types::{Iface, IpConfig};
use wasmcni_sdk::testing::{self, invocation, with};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const RULES: &str = r#"{"services": {"default/api": "10.96.0.10"}, "rules": [
    {"dst": "172.20.0.0/16", "dev": "net1"},
    {"svc": "default/api", "dev": "net1", "via": "10.62.0.254"},
    {"dst": "172.21.0.0/16", "dev": "eth9"}]}"#;

/// A container with `net1` on 10.62.0.0/24 (gateway .1), as the main plugin left it.
fn chained(config: &str) -> Invocation {
    testing::reset();
    links::create_veth(&VethSpec { container_ifname: "net1".into(), mtu: None, container_mac: None }).unwrap();
    let mut inv = invocation("c1", config);
    inv.prev_result = Some(CniResult {
        interfaces: vec![Iface { name: "net1".into(), mac: None, mtu: None, sandbox: Some("/run/netns/test".into()) }],
        ips: vec![IpConfig {
            address: net("10.62.0.5/24").into(),
            gateway: Some(ip("10.62.0.1").into()),
            iface: Some(0),
        }],
        routes: vec![],
        dns: None,
    });
    inv
}

fn container_routes() -> Vec<(String, Option<String>, Option<String>)> {
    with(|h| {
        h.routes
            .iter()
            .filter(|r| r.0)
            .map(|(_, dev, r)| {
                let dst = IpNet::try_from(r.dst).unwrap().to_string();
                (dst, dev.clone(), r.gw.map(|g| IpAddr::from(g).to_string()))
            })
            .collect()
    })
}

#[test]
fn cidr_and_service_rules_go_through_the_named_interface_and_missing_ones_are_skipped() {
    let inv = chained(RULES);
    let r = CustomRoute::add(inv.clone()).unwrap();
    let net1 = Some("net1".to_string());
    assert_eq!(
        container_routes(),
        [
            ("172.20.0.0/16".into(), net1.clone(), Some("10.62.0.1".into())),
            ("10.96.0.10/32".into(), net1, Some("10.62.0.254".into()))
        ]
    );
    assert_eq!(r.routes.len(), 2);
    assert_eq!(IpNet::try_from(r.ips[0].address).unwrap(), net("10.62.0.5/24"), "the previous result passes through");
    assert!(with(|h| h.logs.iter().any(|(_, m)| m.contains("no eth9"))));
    CustomRoute::check(inv.clone()).unwrap();
    CustomRoute::del(inv.clone()).unwrap();
    assert!(container_routes().is_empty());
    assert!(CustomRoute::check(inv).unwrap_err().msg.contains("missing"));
}

#[test]
fn a_rules_document_brings_its_own_services() {
    let inv = chained(r#"{"rules": {"services": {"ns/db": "10.96.3.3"}, "rules": [{"svc": "ns/db", "dev": "net1"}]}}"#);
    CustomRoute::add(inv).unwrap();
    assert_eq!(container_routes(), [("10.96.3.3/32".into(), Some("net1".into()), Some("10.62.0.1".into()))]);
}

#[test]
fn a_default_route_override_and_a_table() {
    let inv = chained(r#"{"table": 100, "rules": [{"dst": "default", "dev": "net1", "via": "10.62.0.9"}]}"#);
    let r = CustomRoute::add(inv).unwrap();
    let route = r.routes[0];
    assert_eq!(
        (IpNet::try_from(route.dst).unwrap(), route.gw.map(IpAddr::from), route.table),
        (net("0.0.0.0/0"), Some(ip("10.62.0.9")), Some(100))
    );
}

#[test]
fn bad_rules_and_a_missing_prev_result_are_config_errors() {
    let unknown_service = chained(r#"{"rules": [{"svc": "x/y", "dev": "net1"}]}"#);
    assert_eq!(CustomRoute::add(unknown_service).unwrap_err().code, 7);
    let both = chained(r#"{"rules": [{"dst": "10.0.0.0/8", "svc": "x/y", "dev": "net1"}]}"#);
    assert_eq!(CustomRoute::add(both).unwrap_err().code, 7);
    let mut alone = chained(RULES);
    alone.prev_result = None;
    assert!(CustomRoute::add(alone).unwrap_err().msg.contains("prevResult"));
}
