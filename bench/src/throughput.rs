//! Pod-to-pod TCP throughput (iperf3, inside the pods' namespaces) on one
//! node, between two nodes on one segment over host-gw and over the vxlan
//! overlay, and between two nodes on segments joined by a router over vxlan
//! (where host-gw cannot go). Nodes are peered by a static file, so no etcd
//! is in the way.

use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasmcni_e2e::cluster::{Node, Segments, Switch};
use wasmcni_e2e::daemon::Daemon;
use wasmcni_e2e::{Netns, wait_for};

/// Bits per second from `client` to `server` (at `ip`) over `secs` seconds.
fn iperf(client: &Netns, server: &Netns, ip: &str, secs: u32) -> f64 {
    let mut listener = Command::new("ip")
        .args(["netns", "exec", &server.name, "iperf3", "-s", "-1", "-B", ip])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("iperf3 (Debian's iperf3 package)");
    // The client runs once the server listens.
    let deadline = Instant::now() + Duration::from_secs(5);
    let listening = format!("{ip}:5201");
    while !server.must(&["ss", "-Hltn"]).contains(&listening) {
        assert!(Instant::now() < deadline, "iperf3 did not listen on {listening}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = client.exec(&["iperf3", "-c", ip, "-t", &secs.to_string(), "-J"]);
    let _ = listener.kill();
    let server_out = listener.wait_with_output().expect("the iperf3 server");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    report["end"]["sum_received"]["bits_per_second"].as_f64().unwrap_or_else(|| {
        let said = String::from_utf8_lossy(&server_out.stdout) + String::from_utf8_lossy(&server_out.stderr);
        panic!("iperf3 to {ip} failed: {report}; the server said: {said}")
    })
}

/// Two peered nodes (`a` and `b`), each with a pod; the pods' throughput.
fn between(a: &Node, b: &Node, plugin: &str, secs: u32) -> f64 {
    let peers = a.peers_file(json!({a.ip(): "10.244.1.0/24", b.ip(): "10.244.2.0/24"}));
    let peers = peers.to_str().unwrap();
    let start = |n: &Node| -> Daemon { n.daemon(&["--peers-file", peers, "--routing-plugin", plugin]) };
    let _daemons = (start(a), start(b));
    wait_for(&format!("{plugin}: the nodes to route to each other"), Duration::from_secs(10), || {
        a.route("10.244.2.0/24").is_some() && b.route("10.244.1.0/24").is_some()
    });
    let ((pa, _), (pb, ipb)) = (a.pod("tpa"), b.pod("tpb"));
    iperf(&pa, &pb, &ipb, secs)
}

pub fn run(secs: u32) {
    let mut rows: Vec<(&str, f64)> = Vec::new();
    {
        let switch = Switch::new();
        let node = Node::new(&switch, 1);
        let peers = node.peers_file(json!({node.ip(): "10.244.1.0/24"}));
        let _daemon = node.daemon(&["--peers-file", peers.to_str().unwrap()]);
        let ((a, _), (b, ip)) = (node.pod("tsa"), node.pod("tsb"));
        rows.push(("same node (bridge)", iperf(&a, &b, &ip, secs)));
    }
    for plugin in ["host-gw", "vxlan"] {
        let switch = Switch::new();
        let (a, b) = (Node::new(&switch, 1), Node::new(&switch, 2));
        let label = if plugin == "host-gw" { "two nodes, host-gw" } else { "two nodes, vxlan" };
        rows.push((label, between(&a, &b, plugin, secs)));
    }
    {
        let segments = Segments::new("192.168.1", "192.168.2");
        let (a, b) = (Node::new(&segments.a, 1), Node::new(&segments.b, 2));
        rows.push(("two segments, vxlan", between(&a, &b, "vxlan", secs)));
    }
    println!("\npod-to-pod TCP throughput (iperf3, {secs} s each, one stream)");
    println!("{:<24} {:>10} {:>8}", "path", "Gbit/s", "ratio");
    let reference = rows[0].1;
    for (label, bps) in rows {
        println!("{label:<24} {:>10.2} {:>7.2}x", bps / 1e9, bps / reference);
    }
}
