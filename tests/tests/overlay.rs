//! Across routed segments: the vxlan overlay. Four nodes on two L2 segments
//! joined by a router (no host-gw route is possible between them), each
//! daemon owning a VTEP and programming a neighbour entry, an FDB entry and
//! an onlink route per peer; pods on every node reach pods on every other.

use serde_json::{Value, json};
use std::time::Duration;
use wasmcni_e2e::cluster::{Etcd, Node, Segments};
use wasmcni_e2e::daemon::Daemon;
use wasmcni_e2e::{Netns, addr_of, result_ips, wait_for};

const VTEP: &str = "wasmcni.1";

fn network(backend: Value) -> String {
    json!({"Network": "10.244.0.0/16", "SubnetLen": 24, "Backend": backend}).to_string()
}

fn daemon(node: &Node, etcd: &Etcd) -> Daemon {
    node.daemon(&["--etcd-endpoints", &etcd.url, "--routing-plugin", "vxlan"])
}

/// `ip -d link show` of the node's VTEP.
fn vtep(node: &Node) -> Value {
    node.lab.host.ip_json(&["-d", "link", "show", VTEP])[0].clone()
}

/// The VTEP's permanent neighbour entries: (address, MAC).
fn neighbors(node: &Node) -> Vec<(String, String)> {
    let listed = node.lab.host.ip_json(&["neigh", "show", "dev", VTEP, "nud", "permanent"]);
    let mut out: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["dst"].as_str().unwrap().to_owned(), n["lladdr"].as_str().unwrap().to_owned()))
        .collect();
    out.sort();
    out
}

/// The VTEP's FDB entries with a destination: (MAC, underlay address).
fn fdb(node: &Node) -> Vec<(String, String)> {
    let text = node.lab.host.must(&["bridge", "-j", "fdb", "show", "dev", VTEP]);
    let listed: Value = serde_json::from_str(&text).unwrap();
    let mut out: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["mac"].as_str()?.to_owned(), e["dst"].as_str()?.to_owned())))
        .collect();
    out.sort();
    out
}

/// Whether `node` routes `subnet` through the VTEP, onlink, via its first address.
fn tunnelled(node: &Node, subnet: &str) -> bool {
    let first = subnet.trim_end_matches("/24");
    node.route(subnet).is_some_and(|r| {
        r["dev"] == VTEP && r["gateway"] == first && r["flags"].as_array().is_some_and(|f| f.contains(&json!("onlink")))
    })
}

/// The node's lease as etcd holds it.
fn lease(etcd: &Etcd, subnet: &str) -> Option<Value> {
    let key = format!("/wasmcni/network/subnets/{}", subnet.replace('/', "-"));
    let text = etcd.ctl(&["get", &key, "--print-value-only"])?;
    serde_json::from_str(text.trim()).ok()
}

/// Pings `to` from `from` with DF set and `size` bytes of payload.
fn ping_df(from: &Netns, to: &str, size: u32) -> bool {
    from.exec(&["ping", "-c", "1", "-W", "2", "-M", "do", "-s", &size.to_string(), to]).status.success()
}

#[test]
fn pods_on_four_nodes_across_two_routed_segments_reach_each_other_through_the_overlay() {
    let segments = Segments::new("192.168.1", "192.168.2");
    let etcd = Etcd::start(&segments.a);
    etcd.ctl(&["put", "/wasmcni/network/config", &network(json!({"Type": "vxlan"}))]).unwrap();
    let nodes =
        [Node::new(&segments.a, 1), Node::new(&segments.a, 2), Node::new(&segments.b, 3), Node::new(&segments.b, 4)];
    let mut daemons: Vec<Option<Daemon>> = nodes.iter().map(|n| Some(daemon(n, &etcd))).collect();
    let subnets: Vec<String> = nodes.iter().map(Node::subnet).collect();

    // Each VTEP as flannel makes it, and each lease in flannel's vxlan form.
    let mut macs = Vec::new();
    for (node, subnet) in nodes.iter().zip(&subnets) {
        let v = vtep(node);
        let data = &v["linkinfo"]["info_data"];
        assert_eq!((v["mtu"].as_u64(), data["id"].as_u64(), data["port"].as_u64()), (Some(1450), Some(1), Some(8472)));
        assert_eq!(
            (data["local"].as_str(), data["learning"].as_bool()),
            (Some(node.ip().as_str()), Some(false)),
            "{v}"
        );
        let l = lease(&etcd, subnet).expect("a lease");
        assert_eq!((l["PublicIP"].as_str(), l["BackendType"].as_str()), (Some(node.ip().as_str()), Some("vxlan")));
        assert_eq!((&l["BackendData"]["VNI"], &l["BackendData"]["VtepMAC"]), (&json!(1), &v["address"]), "{l}");
        let env = std::fs::read_to_string(node.subnet_file()).unwrap();
        assert!(env.contains("FLANNEL_MTU=1450\n"), "{env}");
        macs.push(v["address"].as_str().unwrap().to_owned());
    }
    // Per peer: its neighbour entry, its FDB entry and the onlink route.
    for (i, node) in nodes.iter().enumerate() {
        let others = || (0..4).filter(move |j| *j != i);
        let want_n: Vec<_> =
            others().map(|j| (subnets[j].trim_end_matches("/24").to_owned(), macs[j].clone())).collect();
        let want_f: Vec<_> = others().map(|j| (macs[j].clone(), nodes[j].ip())).collect();
        let sorted = |mut v: Vec<(String, String)>| {
            v.sort();
            v
        };
        let (want_n, want_f) = (sorted(want_n), sorted(want_f));
        wait_for(&format!("node {}'s overlay entries", node.n), Duration::from_secs(10), || {
            neighbors(node) == want_n && fdb(node) == want_f && others().all(|j| tunnelled(node, &subnets[j]))
        });
    }

    // A pod per node, with the overlay MTU from subnet.env; every pair talks.
    let pods: Vec<(Netns, String)> = nodes.iter().map(|n| n.pod(&format!("vx{}", n.n))).collect();
    for (pod, _) in &pods {
        assert_eq!(pod.ip_json(&["link", "show", "eth0"])[0]["mtu"], 1450);
    }
    for (i, (pod, from)) in pods.iter().enumerate() {
        for (_, (_, to)) in pods.iter().enumerate().filter(|(j, _)| *j != i) {
            assert!(pod.ping(to), "{from} cannot reach {to}");
        }
    }
    // Across the router, a packet of the full MTU passes with DF set; one byte more does not.
    assert!(ping_df(&pods[0].0, &pods[2].1, 1450 - 28), "a full-MTU packet did not cross the overlay");
    assert!(!ping_df(&pods[0].0, &pods[2].1, 1450 - 27), "a packet over the MTU passed with DF set");

    // Entries lost from the kernel come back.
    let host = &nodes[0].lab.host;
    host.must(&["ip", "neigh", "del", subnets[2].trim_end_matches("/24"), "dev", VTEP]);
    host.must(&["bridge", "fdb", "del", &macs[3], "dev", VTEP, "dst", &nodes[3].ip()]);
    wait_for("the lost entries to come back", Duration::from_secs(5), || {
        neighbors(&nodes[0]).len() == 3 && fdb(&nodes[0]).len() == 3
    });
    assert!(pods[0].0.ping(&pods[2].1));

    // A node that stops loses its lease after the TTL, and every peer withdraws its three entries.
    daemons[3].take().unwrap().kill();
    for node in &nodes[..3] {
        wait_for(&format!("node {} to withdraw node 4", node.n), Duration::from_secs(20), || {
            node.route(&subnets[3]).is_none()
                && !neighbors(node).iter().any(|(_, m)| *m == macs[3])
                && !fdb(node).iter().any(|(_, dst)| *dst == nodes[3].ip())
        });
    }
    // A restarted node keeps its subnet and its VTEP MAC; its pod is reached again.
    drop(daemons[2].take());
    daemons[2] = Some(daemon(&nodes[2], &etcd));
    assert_eq!(nodes[2].subnet(), subnets[2]);
    assert_eq!(vtep(&nodes[2])["address"].as_str(), Some(macs[2].as_str()));
    assert_eq!(lease(&etcd, &subnets[2]).unwrap()["BackendData"]["VtepMAC"].as_str(), Some(macs[2].as_str()));
    assert!(pods[0].0.ping(&pods[2].1), "node 1's pod lost node 3's after its daemon restarted");
    for (node, (pod, _)) in nodes.iter().zip(&pods).take(3) {
        node.lab.cni("DEL", &node.conf(), &format!("vx{}", node.n), &pod.path()).expect_ok();
    }
}

#[test]
fn with_direct_routing_peers_on_the_same_segment_get_plain_routes_and_the_rest_the_overlay() {
    let segments = Segments::new("192.168.1", "192.168.2");
    let etcd = Etcd::start(&segments.a);
    let backend = json!({"Type": "vxlan", "DirectRouting": true});
    etcd.ctl(&["put", "/wasmcni/network/config", &network(backend)]).unwrap();
    let nodes = [Node::new(&segments.a, 1), Node::new(&segments.a, 2), Node::new(&segments.b, 3)];
    let _daemons: Vec<Daemon> = nodes.iter().map(|n| daemon(n, &etcd)).collect();
    let subnets: Vec<String> = nodes.iter().map(Node::subnet).collect();
    let direct = |from: &Node, to: &Node, subnet: &str| {
        from.route(subnet).is_some_and(|r| r["dev"] == "eth0" && r["gateway"] == to.ip())
    };
    wait_for("direct routes on segment A and the overlay across", Duration::from_secs(10), || {
        direct(&nodes[0], &nodes[1], &subnets[1])
            && direct(&nodes[1], &nodes[0], &subnets[0])
            && tunnelled(&nodes[0], &subnets[2])
            && tunnelled(&nodes[2], &subnets[0])
            && tunnelled(&nodes[2], &subnets[1])
    });
    // Only the peer across the router has overlay entries.
    let across = vtep(&nodes[2])["address"].as_str().unwrap().to_owned();
    assert_eq!(neighbors(&nodes[0]), [(subnets[2].trim_end_matches("/24").to_owned(), across.clone())]);
    assert_eq!(fdb(&nodes[0]), [(across, nodes[2].ip())]);

    let pods: Vec<(Netns, String)> = nodes.iter().map(|n| n.pod(&format!("dr{}", n.n))).collect();
    assert!(pods[0].0.ping(&pods[1].1), "no direct pod traffic on segment A");
    assert!(pods[0].0.ping(&pods[2].1) && pods[2].0.ping(&pods[1].1), "no overlay pod traffic across segments");
    for (node, (pod, _)) in nodes.iter().zip(&pods) {
        node.lab.cni("DEL", &node.conf(), &format!("dr{}", node.n), &pod.path()).expect_ok();
    }
}

/// `ip -6 route show` of `dst` on `node`.
fn route6(node: &Node, dst: &str) -> Option<Value> {
    node.lab.host.ip_json(&["-6", "route", "show", dst]).as_array().and_then(|r| r.first().cloned())
}

#[test]
fn dual_stack_pods_reach_each_other_over_ipv4_and_ipv6_through_a_vtep_per_family() {
    let segments = Segments::dual(("192.168.1", "fd00:1::"), ("192.168.2", "fd00:2::"));
    let etcd = Etcd::start(&segments.a);
    let config = json!({"Network": "10.244.0.0/16", "EnableIPv6": true, "IPv6Network": "fc00::/48",
        "Backend": {"Type": "vxlan"}});
    etcd.ctl(&["put", "/wasmcni/network/config", &config.to_string()]).unwrap();
    let nodes =
        [Node::new(&segments.a, 1), Node::new(&segments.a, 2), Node::new(&segments.b, 3), Node::new(&segments.b, 4)];
    let _daemons: Vec<Daemon> = nodes.iter().map(|n| daemon(n, &etcd)).collect();
    let subnets: Vec<String> = nodes.iter().map(Node::subnet).collect();
    let subnets6: Vec<String> = nodes.iter().map(|n| n.subnet6().expect("an IPv6 subnet in subnet.env")).collect();

    for (i, node) in nodes.iter().enumerate() {
        // The IPv6 VTEP beside the IPv4 one, and the lease in flannel's dual-stack form.
        let v6 = node.lab.host.ip_json(&["-d", "link", "show", "wasmcni-v6.1"])[0].clone();
        let data = &v6["linkinfo"]["info_data"];
        assert_eq!((v6["mtu"].as_u64(), data["local6"].as_str()), (Some(1430), node.ip6().as_deref()), "{v6}");
        let key =
            format!("/wasmcni/network/subnets/{}&{}", subnets[i].replace('/', "-"), subnets6[i].replace('/', "-"));
        let text = etcd.ctl(&["get", &key, "--print-value-only"]).unwrap();
        let l: Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| panic!("no lease at {key}"));
        assert_eq!(l["PublicIPv6"].as_str(), node.ip6().as_deref(), "{l}");
        assert_eq!(l["BackendV6Data"]["VtepMAC"], v6["address"], "{l}");
        let env = std::fs::read_to_string(node.subnet_file()).unwrap();
        assert!(env.contains("FLANNEL_MTU=1430\n") && env.contains("FLANNEL_IPV6_NETWORK=fc00::/48\n"), "{env}");
        for j in (0..4).filter(|j| *j != i) {
            let first6 = subnets6[j].trim_end_matches("/64");
            wait_for(&format!("node {} to reach node {} both ways", node.n, j + 1), Duration::from_secs(10), || {
                tunnelled(node, &subnets[j])
                    && route6(node, &subnets6[j]).is_some_and(|r| {
                        r["dev"] == "wasmcni-v6.1"
                            && r["gateway"] == first6
                            && r["flags"].as_array().is_some_and(|f| f.contains(&json!("onlink")))
                    })
            });
        }
    }

    // Each pod has an address of each family; every pair talks in both.
    let mut pods = Vec::new();
    for node in &nodes {
        let pod = node.lab.container();
        let r = node.lab.cni("ADD", &node.conf(), &format!("ds{}", node.n), &pod.path()).expect_ok().json();
        let ips: Vec<String> = result_ips(&r).iter().map(|ip| addr_of(ip).to_owned()).collect();
        assert_eq!(ips.len(), 2, "{r}");
        pods.push((pod, ips));
    }
    for (i, (pod, from)) in pods.iter().enumerate() {
        for (_, (_, to)) in pods.iter().enumerate().filter(|(j, _)| *j != i) {
            for (a, b) in from.iter().zip(to) {
                // A fresh IPv6 path's neighbour discovery (four hops of it)
                // can cost a retransmission or two: a second to each.
                wait_for(&format!("{a} to reach {b}"), Duration::from_secs(10), || pod.ping(b));
            }
        }
    }
    for (node, (pod, _)) in nodes.iter().zip(&pods) {
        node.lab.cni("DEL", &node.conf(), &format!("ds{}", node.n), &pod.path()).expect_ok();
    }
}
