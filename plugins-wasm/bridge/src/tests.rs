//! The bridge logic against the SDK's in-memory host.

use crate::Bridge;
use ipnet::IpNet;
use std::net::IpAddr;
use wasmcni_sdk::cni::Handler;
use wasmcni_sdk::cni::types::{CniError, CniResult, IpConfig, LinkKind};
use wasmcni_sdk::ip::route_to;
use wasmcni_sdk::testing::{self, invocation, with};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// A fresh host whose scope holds the test config's bridge, as its `bridge` key would.
fn reset() {
    testing::reset();
    testing::declare_host_link("br-test");
}

const CONF: &str = r#"{"bridge": "br-test", "isGateway": true, "ipMasq": true, "mtu": 1400,
    "ipam": {"type": "host-local", "subnet": "10.5.0.0/24"}}"#;

fn ipam_gives(address: &str, gateway: &str) {
    with(|h| {
        h.ipam_result = Some(CniResult {
            interfaces: vec![],
            ips: vec![IpConfig { address: net(address).into(), gateway: Some(ip(gateway).into()), iface: None }],
            routes: vec![route_to(net("0.0.0.0/0"))],
            dns: None,
        })
    });
}

#[test]
fn add_builds_the_bridge_veth_addresses_routes_gateway_and_masquerade() {
    reset();
    ipam_gives("10.5.0.7/24", "10.5.0.1");
    let r = Bridge::add(invocation("c1", CONF)).unwrap();
    assert_eq!(r.interfaces.len(), 3);
    assert_eq!(r.interfaces[2].sandbox.as_deref(), Some("/run/netns/test"));
    assert_eq!(r.ips[0].iface, Some(2));
    with(|h| {
        let eth0 = h.link(true, "eth0").expect("container veth");
        assert!(eth0.info.up);
        assert_eq!(eth0.info.mtu, 1400);
        assert_eq!(eth0.addresses, [net("10.5.0.7/24")]);
        let host_end = h.links.iter().find(|l| !l.container() && matches!(l.info.kind, LinkKind::Veth)).unwrap();
        assert_eq!(host_end.info.master.as_deref(), Some("br-test"));
        assert_eq!(h.link(false, "br-test").unwrap().addresses, [net("10.5.0.1/24")]);
        // The route without a gateway goes via the IP's gateway.
        assert_eq!(h.routes[0].2.gw.map(IpAddr::from), Some(ip("10.5.0.1")));
        assert_eq!(h.sysctls.get(&(false, "ipv4/ip_forward".into())).map(String::as_str), Some("1"));
        assert_eq!(h.sysctls.get(&(true, "ipv4/conf/eth0/arp_notify".into())).map(String::as_str), Some("1"));
        assert_eq!(h.masquerade, [(ip("10.5.0.7"), net("10.5.0.0/24"))]);
        assert_eq!(h.ipam_calls, vec!["ADD".to_string()]);
    });
}

#[test]
fn with_a_cluster_network_masquerade_spares_traffic_to_other_nodes_pods() {
    reset();
    ipam_gives("10.244.3.7/24", "10.244.3.1");
    let conf = CONF.replacen('{', r#"{"clusterNetwork": "10.244.0.0/16", "#, 1);
    Bridge::add(invocation("c1", &conf)).unwrap();
    with(|h| assert_eq!(h.masquerade, [(ip("10.244.3.7"), net("10.244.0.0/16"))]));
    // Dual stack: one network per family; the address's own family's is spared.
    reset();
    ipam_gives("10.244.3.8/24", "10.244.3.1");
    let conf = CONF.replacen('{', r#"{"clusterNetwork": ["fc00::/48", "10.244.0.0/16"], "#, 1);
    Bridge::add(invocation("c2", &conf)).unwrap();
    with(|h| assert_eq!(h.masquerade, [(ip("10.244.3.8"), net("10.244.0.0/16"))]));
}

#[test]
fn a_bridge_with_another_address_is_refused_unless_force_address() {
    use wasmcni_sdk::cni::{addresses, links};
    reset();
    ipam_gives("10.5.0.8/24", "10.5.0.1");
    let spec = links::BridgeSpec { name: "br-test".into(), mtu: None, promisc: false, vlan_filtering: false };
    let bridge = links::ensure_bridge(&spec).unwrap();
    addresses::add_address(&bridge, net("10.5.9.9/24").into()).unwrap();
    let err = Bridge::add(invocation("c1", CONF)).unwrap_err();
    assert!(err.msg.contains("forceAddress"), "{err:?}");

    // The host undoes a failed ADD; here, start the container side over.
    with(|h| {
        h.links.retain(|l| matches!(l.info.kind, LinkKind::Bridge));
        h.routes.clear();
    });
    let forced = CONF.replace("\"isGateway\": true", "\"isGateway\": true, \"forceAddress\": true");
    Bridge::add(invocation("c1", &forced)).unwrap();
    assert_eq!(with(|h| h.link(false, "br-test").unwrap().addresses.clone()), [net("10.5.0.1/24")]);
}

#[test]
fn del_releases_ipam_removes_the_veth_and_masquerade_and_is_idempotent() {
    reset();
    ipam_gives("10.5.0.7/24", "10.5.0.1");
    Bridge::add(invocation("c1", CONF)).unwrap();
    Bridge::del(invocation("c1", CONF)).unwrap();
    with(|h| {
        assert!(h.link(true, "eth0").is_none());
        assert!(!h.links.iter().any(|l| matches!(l.info.kind, LinkKind::Veth)), "the host end stayed");
        assert!(h.masquerade.is_empty());
        assert_eq!(h.ipam_calls, vec!["ADD".to_string(), "DEL".to_string()]);
    });
    Bridge::del(invocation("c1", CONF)).unwrap();
    let mut gone = invocation("c1", CONF);
    gone.netns = None;
    Bridge::del(gone).unwrap();
}

#[test]
fn del_removes_the_interface_before_the_lease_and_goes_on_past_a_failure() {
    reset();
    ipam_gives("10.5.0.7/24", "10.5.0.1");
    Bridge::add(invocation("c1", CONF)).unwrap();
    with(|h| {
        h.teardown.clear();
        h.ipam_errors
            .insert("DEL".into(), CniError { code: 5, msg: "lease dir unreadable".into(), details: String::new() });
    });
    let err = Bridge::del(invocation("c1", CONF)).unwrap_err();
    assert_eq!(err.code, 5);
    assert!(err.msg.contains("lease dir unreadable"), "{err:?}");
    with(|h| {
        assert_eq!(h.teardown, vec!["delete-link eth0", "ipam DEL", "masquerade-del"]);
        assert!(h.link(true, "eth0").is_none());
        assert!(h.masquerade.is_empty(), "masquerade stayed after the IPAM failure");
    });
}

#[test]
fn check_notices_a_missing_address() {
    reset();
    ipam_gives("10.5.0.7/24", "10.5.0.1");
    let result = Bridge::add(invocation("c1", CONF)).unwrap();
    let mut inv = invocation("c1", CONF);
    inv.prev_result = Some(result);
    Bridge::check(inv.clone()).unwrap();
    with(|h| h.links.iter_mut().find(|l| l.container()).unwrap().addresses.clear());
    let err = Bridge::check(inv).unwrap_err();
    assert!(err.msg.contains("10.5.0.7/24"), "{err:?}");
}

#[test]
fn a_bridge_the_config_does_not_name_is_out_of_scope() {
    testing::reset();
    ipam_gives("10.5.0.7/24", "10.5.0.1");
    let err = Bridge::add(invocation("c1", CONF)).unwrap_err();
    assert_eq!(err.code, 101, "{err:?}");
}

#[test]
fn config_errors_are_code_7() {
    reset();
    for bad in [r#"{"vlan": 5000}"#, r#"{"mtu": "big"}"#, r#"{"ipam": {"subnet": "10.0.0.0/24"}}"#, "not json"] {
        assert_eq!(Bridge::add(invocation("c1", bad)).unwrap_err().code, 7, "{bad}");
    }
}
