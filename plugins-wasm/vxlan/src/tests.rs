use super::*;

type WitMac = (u8, u8, u8, u8, u8, u8);

fn mac(last: u8) -> WitMac {
    (0x0e, 0, 0, 0, 0, last)
}

fn node(ip: &str, subnet: &str, vtep: Option<u8>) -> OverlayLease {
    let (ip, subnet): (IpAddr, IpNet) = (ip.parse().unwrap(), subnet.parse().unwrap());
    OverlayLease { ip: ip.into(), subnet: subnet.into(), vtep_mac: vtep.map(mac) }
}

/// This node's underlay: 192.168.1.1/24 (peers in 192.168.2.0/24 are behind a router).
fn underlay() -> Underlay {
    let net: IpNet = "192.168.1.1/24".parse().unwrap();
    Underlay { name: "eth0".into(), addresses: vec![net.into()] }
}

fn vtep() -> Vtep {
    Vtep { name: "wasmcni.1".into(), vni: 1, mac: mac(1), mtu: 1450 }
}

fn run(config: &str, peers: Vec<OverlayLease>) -> Result<OverlayEntries, CniError> {
    Vxlan::entries(config.into(), node("192.168.1.1", "10.244.1.0/24", Some(1)), peers, underlay(), vtep())
}

/// (dst, gw, through the VTEP, onlink) of every route.
fn routes(e: &OverlayEntries) -> Vec<(String, String, bool, bool)> {
    e.routes
        .iter()
        .map(|r| {
            let dst = IpNet::try_from(r.route.dst).unwrap().to_string();
            let gw = r.route.gw.map(IpAddr::from).unwrap().to_string();
            (dst, gw, matches!(r.dev, Via::Vtep), r.onlink)
        })
        .collect()
}

#[test]
fn every_peer_gets_a_neighbour_an_fdb_entry_and_an_onlink_route_through_the_vtep() {
    let peers = vec![
        node("192.168.2.3", "10.244.3.0/24", Some(3)),
        node("192.168.1.1", "10.244.1.0/24", Some(1)),
        node("192.168.1.2", "10.244.2.0/24", Some(2)),
    ];
    let e = run("", peers).unwrap();
    let s = |x: &str| x.to_string();
    assert_eq!(
        routes(&e),
        [(s("10.244.2.0/24"), s("10.244.2.0"), true, true), (s("10.244.3.0/24"), s("10.244.3.0"), true, true)]
    );
    let neighbors: Vec<(IpAddr, WitMac)> = e.neighbors.iter().map(|n| (n.ip.into(), n.mac)).collect();
    assert_eq!(neighbors, [("10.244.2.0".parse().unwrap(), mac(2)), ("10.244.3.0".parse().unwrap(), mac(3))]);
    let fdb: Vec<(WitMac, IpAddr)> = e.fdb.iter().map(|f| (f.mac, f.dst.into())).collect();
    assert_eq!(fdb, [(mac(2), "192.168.1.2".parse().unwrap()), (mac(3), "192.168.2.3".parse().unwrap())]);
}

#[test]
fn with_direct_routing_a_peer_on_the_underlay_network_gets_a_plain_route() {
    let peers = vec![node("192.168.1.2", "10.244.2.0/24", Some(2)), node("192.168.2.3", "10.244.3.0/24", Some(3))];
    let e = run(r#"{"directRouting": true}"#, peers).unwrap();
    let s = |x: &str| x.to_string();
    assert_eq!(
        routes(&e),
        [(s("10.244.2.0/24"), s("192.168.1.2"), false, false), (s("10.244.3.0/24"), s("10.244.3.0"), true, true)]
    );
    assert_eq!((e.neighbors.len(), e.fdb.len()), (1, 1), "the direct peer got overlay entries");
    // A peer without a VTEP MAC (another backend) is reachable only directly.
    let host_gw = vec![node("192.168.1.4", "10.244.4.0/24", None)];
    assert_eq!(routes(&run(r#"{"directRouting": true}"#, host_gw.clone()).unwrap())[0].2, false);
    let err = run("", host_gw).unwrap_err();
    assert!(err.msg.contains("192.168.1.4") && err.msg.contains("no VTEP MAC"), "{}", err.msg);
}

#[test]
fn overlaps_and_bad_config_are_refused() {
    let err = run("", vec![node("192.168.1.2", "10.244.0.0/16", Some(2))]).unwrap_err();
    assert!(err.msg.contains("overlaps"), "{}", err.msg);
    assert_eq!(run(r#"{"directRouting": "yes"}"#, vec![]).unwrap_err().code, 7);
}
