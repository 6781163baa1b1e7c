//! Across nodes: node subnets claimed in etcd (or read from a static peers
//! file), host-gw routes between the nodes, and pods on different nodes
//! reaching each other with their own addresses.

use serde_json::json;
use std::time::Duration;
use wasmcni_e2e::cluster::{ETCD_URL, Etcd, Node, POD_NETWORK, Switch};
use wasmcni_e2e::{Netns, addr_of, result_ips, wait_for};

fn etcd_with_network(switch: &Switch) -> Etcd {
    let etcd = Etcd::start(switch);
    etcd.ctl(&["put", "/wasmcni/network/config", POD_NETWORK]).expect("put the network config");
    etcd
}

/// Counts what `pod` receives from `source` (an nftables counter in its netns).
fn count_from(pod: &Netns, source: &str) -> u64 {
    let listed = pod.must(&["nft", "list", "table", "ip", "seen"]);
    let rule =
        listed.lines().find(|l| l.contains(source)).unwrap_or_else(|| panic!("no counter for {source}: {listed}"));
    let packets = rule.split_whitespace().skip_while(|w| *w != "packets").nth(1).unwrap();
    packets.parse().unwrap()
}

fn watch_sources(pod: &Netns, sources: &[&str]) {
    pod.must(&["nft", "add", "table", "ip", "seen"]);
    pod.must(&["nft", "add", "chain", "ip", "seen", "in", "{ type filter hook input priority 0; }"]);
    for s in sources {
        pod.must(&["nft", "add", "rule", "ip", "seen", "in", "ip", "saddr", s, "counter"]);
    }
}

#[test]
fn pods_on_three_nodes_reach_each_other_with_their_own_addresses() {
    let switch = Switch::new();
    let etcd = etcd_with_network(&switch);
    let nodes: Vec<Node> = (1..=3).map(|n| Node::new(&switch, n)).collect();
    let mut daemons: Vec<_> = nodes.iter().map(|n| Some(n.daemon(&["--etcd-endpoints", ETCD_URL]))).collect();

    let subnets: Vec<String> = nodes.iter().map(Node::subnet).collect();
    let mut distinct = subnets.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{subnets:?}");
    let leases = etcd.ctl(&["get", "--prefix", "/wasmcni/network/subnets/"]).unwrap();
    for node in &nodes {
        assert!(leases.contains(&format!("\"PublicIP\":\"{}\"", node.ip())), "{leases}");
    }
    for (i, node) in nodes.iter().enumerate() {
        for (j, other) in nodes.iter().enumerate().filter(|(j, _)| *j != i) {
            let dst = &subnets[j];
            wait_for(&format!("node {} to route {dst}", node.n), Duration::from_secs(10), || {
                node.route(dst).is_some_and(|r| r["gateway"] == other.ip() && r["dev"] == "eth0")
            });
        }
    }

    // Two pods per node, addressed from the node's own subnet.
    let mut pods = Vec::new();
    for (node, subnet) in nodes.iter().zip(&subnets) {
        for k in 0..2 {
            let pod = node.lab.container();
            let id = format!("pod{}{k}", node.n);
            let r = node.lab.cni("ADD", &node.conf(), &id, &pod.path()).expect_ok().json();
            let ip = addr_of(&result_ips(&r)[0]).to_owned();
            let prefix = subnet.trim_end_matches("0/24");
            assert!(ip.starts_with(prefix), "{ip} is not in {subnet}");
            pods.push((pod, ip));
        }
    }
    let ips: Vec<&str> = pods.iter().map(|(_, ip)| ip.as_str()).collect();
    for (pod, _) in &pods {
        watch_sources(pod, &ips);
    }
    for (i, (pod, from)) in pods.iter().enumerate() {
        for (j, (peer, to)) in pods.iter().enumerate().filter(|(j, _)| *j != i) {
            let before = count_from(peer, from);
            assert!(pod.ping(to), "{from} cannot reach {to}");
            assert!(count_from(peer, from) > before, "{to} did not see {from} as the source (pod {j})");
        }
    }

    // A node that goes away takes its routes with it, everywhere.
    daemons[2].take().unwrap().kill();
    for node in &nodes[..2] {
        wait_for(&format!("node {} to withdraw {}", node.n, subnets[2]), Duration::from_secs(20), || {
            node.route(&subnets[2]).is_none()
        });
    }
    // A restarted daemon keeps its subnet, and the others keep their routes to it.
    drop(daemons[1].take());
    daemons[1] = Some(nodes[1].daemon(&["--etcd-endpoints", ETCD_URL]));
    assert_eq!(nodes[1].subnet(), subnets[1]);
    assert!(pods[0].0.ping(&pods[2].1), "node 1's pod lost node 2's after its daemon restarted");
    assert!(nodes[0].route(&subnets[1]).is_some());
    for (i, (pod, _)) in pods.iter().enumerate() {
        let node = &nodes[i / 2];
        node.lab.cni("DEL", &node.conf(), &format!("pod{}{}", node.n, i % 2), &pod.path()).expect_ok();
    }
}

#[test]
fn daemons_racing_for_subnets_never_collide_and_a_restart_after_expiry_gets_the_same_one() {
    let switch = Switch::new();
    let etcd = etcd_with_network(&switch);
    let nodes: Vec<Node> = (1..=5).map(|n| Node::new(&switch, n)).collect();
    let daemons: Vec<_> = std::thread::scope(|s| {
        let started: Vec<_> =
            nodes.iter().map(|n| s.spawn(move || n.daemon(&["--etcd-endpoints", ETCD_URL]))).collect();
        started.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut subnets: Vec<String> = nodes.iter().map(Node::subnet).collect();
    let first = subnets[0].clone();
    subnets.sort();
    subnets.dedup();
    assert_eq!(subnets.len(), 5, "two nodes hold one subnet: {subnets:?}");
    let keys = etcd.ctl(&["get", "--prefix", "--keys-only", "/wasmcni/network/subnets/"]).unwrap();
    assert_eq!(keys.lines().filter(|l| !l.is_empty()).count(), 5, "{keys}");

    // Node 1 is gone past its TTL: its key expires; back, it claims its subnet again.
    drop(daemons);
    wait_for("the leases to expire", Duration::from_secs(15), || {
        etcd.ctl(&["get", "--prefix", "--keys-only", "/wasmcni/network/subnets/"]).unwrap().trim().is_empty()
    });
    let _again = nodes[0].daemon(&["--etcd-endpoints", ETCD_URL]);
    assert_eq!(nodes[0].subnet(), first);
}

#[test]
fn a_static_peers_file_gives_the_same_routes_without_etcd() {
    let switch = Switch::new();
    let nodes: Vec<Node> = (1..=2).map(|n| Node::new(&switch, n)).collect();
    let peers = nodes[0].peers_file(json!({nodes[0].ip(): "10.244.11.0/24", nodes[1].ip(): "10.244.12.0/24"}));
    let peers_arg = peers.to_str().unwrap();
    let _daemons: Vec<_> = nodes.iter().map(|n| n.daemon(&["--peers-file", peers_arg])).collect();
    assert_eq!(nodes[0].subnet(), "10.244.11.0/24");
    assert_eq!(nodes[1].subnet(), "10.244.12.0/24");
    wait_for("the static routes", Duration::from_secs(10), || {
        nodes[0].route("10.244.12.0/24").is_some_and(|r| r["gateway"] == nodes[1].ip())
            && nodes[1].route("10.244.11.0/24").is_some_and(|r| r["gateway"] == nodes[0].ip())
    });
    let (a, b) = (nodes[0].lab.container(), nodes[1].lab.container());
    nodes[0].lab.cni("ADD", &nodes[0].conf(), "sa", &a.path()).expect_ok();
    let rb = nodes[1].lab.cni("ADD", &nodes[1].conf(), "sb", &b.path()).expect_ok().json();
    assert!(a.ping(addr_of(&result_ips(&rb)[0])), "pods on statically peered nodes cannot reach each other");

    // host-gw refuses a node that is not on the underlay's network; the
    // routes it had stay as they were.
    nodes[0].peers_file(json!({
        nodes[0].ip(): "10.244.11.0/24", nodes[1].ip(): "10.244.12.0/24", "172.16.0.9": "10.244.13.0/24"}));
    let log = nodes[0].lab.data_dir.join("daemon/daemon.log");
    wait_for("host-gw to refuse the off-link node", Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("node 172.16.0.9 (subnet 10.244.13.0/24) is not on a network directly connected to eth0")
    });
    assert!(nodes[0].route("10.244.13.0/24").is_none());
    assert!(nodes[0].route("10.244.12.0/24").is_some());
}

/// The route applier converges on what the leases say, whatever happens to
/// the kernel: routes no lease explains go at start, routes lost to a link
/// flap or an `ip route del` come back, a bad peer is skipped while a node
/// that joins later is routed, and a peer claiming this node's subnet never
/// takes its bridge route. Pods take the MTU subnet.env carries.
#[test]
fn routes_converge_on_the_leases_whatever_happens_to_the_kernel() {
    let switch = Switch::new();
    let nodes: Vec<Node> = (1..=2).map(|n| Node::new(&switch, n)).collect();
    let (node, peer) = (&nodes[0], nodes[1].ip());
    node.lab.host.must(&["ip", "link", "set", "eth0", "mtu", "1400"]);
    let write_peers = |extra: serde_json::Value| {
        let mut table = json!({node.ip(): "10.244.11.0/24", &peer: "10.244.12.0/24"});
        table.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        node.peers_file(table)
    };
    let peers = write_peers(json!({}));
    // Left from before a restart: a route to a node whose lease has since expired.
    node.lab.host.must(&["ip", "route", "add", "10.244.99.0/24", "via", &peer, "dev", "eth0"]);
    let daemon = node.daemon(&["--peers-file", peers.to_str().unwrap()]);
    let routed = |dst: &str, gw: &str| node.route(dst).is_some_and(|r| r["gateway"] == gw && r["dev"] == "eth0");
    wait_for("the stale route to go and the peer's to come", Duration::from_secs(10), || {
        node.route("10.244.99.0/24").is_none() && routed("10.244.12.0/24", &peer)
    });

    let pod = node.lab.container();
    node.lab.cni("ADD", &node.conf(), "mtu-pod", &pod.path()).expect_ok();
    assert_eq!(pod.ip_json(&["link", "show", "eth0"])[0]["mtu"], 1400, "the pod did not take FLANNEL_MTU");

    node.lab.host.must(&["ip", "link", "set", "eth0", "down"]);
    node.lab.host.must(&["ip", "link", "set", "eth0", "up"]);
    wait_for("the route to come back after a link flap", Duration::from_secs(5), || routed("10.244.12.0/24", &peer));
    node.lab.host.must(&["ip", "route", "del", "10.244.12.0/24"]);
    wait_for("a deleted route to come back", Duration::from_secs(5), || routed("10.244.12.0/24", &peer));

    // One node off the underlay, one that joins later, one claiming this node's subnet.
    write_peers(
        json!({"172.16.0.9": "10.244.13.0/24", "192.168.50.7": "10.244.17.0/24", "192.168.50.8": "10.244.11.0/24"}),
    );
    wait_for("the node that joined later to be routed", Duration::from_secs(10), || {
        routed("10.244.17.0/24", "192.168.50.7")
    });
    assert!(node.route("10.244.13.0/24").is_none(), "a route to the off-link node");
    assert!(routed("10.244.12.0/24", &peer), "the bad peers cost a good one its route");
    assert_ne!(node.route("10.244.11.0/24").unwrap()["dev"], "eth0", "a peer took this node's own subnet");
    assert_eq!(daemon.metric("wasmcni_cluster_skipped_peers"), 2.0);
    node.lab.cni("DEL", &node.conf(), "mtu-pod", &pod.path()).expect_ok();
}

/// Where flannel keeps them (`--etcd-prefix /coreos.com/network`), a node
/// lease flannel wrote is routed to, and this node's lease is one flannel
/// reads: its config's `Backend` is accepted and the values are in its form.
#[test]
fn leases_interoperate_with_flannels_layout_under_its_prefix() {
    let switch = Switch::new();
    let etcd = Etcd::start(&switch);
    let config = r#"{"Network": "10.244.0.0/16", "SubnetLen": 24, "Backend": {"Type": "host-gw"}}"#;
    etcd.ctl(&["put", "/coreos.com/network/config", config]).expect("put flannel's config");
    let flannels = r#"{"PublicIP":"192.168.50.9","PublicIPv6":null,"BackendType":"host-gw","BackendData":null}"#;
    etcd.ctl(&["put", "/coreos.com/network/subnets/10.244.9.0-24", flannels]).expect("put a flannel lease");
    let node = Node::new(&switch, 1);
    let _daemon = node.daemon(&["--etcd-endpoints", ETCD_URL, "--etcd-prefix", "/coreos.com/network"]);
    wait_for("the route to flannel's node", Duration::from_secs(10), || {
        node.route("10.244.9.0/24").is_some_and(|r| r["gateway"] == "192.168.50.9" && r["dev"] == "eth0")
    });
    let key = format!("/coreos.com/network/subnets/{}", node.subnet().replace('/', "-"));
    let ours = etcd.ctl(&["get", "--print-value-only", &key]).expect("this node's lease");
    let ours: serde_json::Value = serde_json::from_str(ours.trim()).unwrap();
    assert_eq!(
        (ours["PublicIP"].as_str(), ours["BackendType"].as_str()),
        (Some("192.168.50.1"), Some("host-gw")),
        "{ours}"
    );
}
