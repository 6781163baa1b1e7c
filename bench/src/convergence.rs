//! Cluster mode's convergence (etcd; host-gw, then vxlan): from a node's
//! lease appearing in etcd to every peer's route to its subnet being in the
//! kernel (with vxlan, the route comes after the neighbour and FDB entries
//! it needs), and from the lease going to every peer's route being withdrawn. Both ends are
//! seen the same way, as lines streamed to this process: `etcdctl watch`
//! inside etcd's netns for the lease, `ip monitor route` inside each
//! node's netns for its routes.

use serde_json::json;
use std::process::Command;
use std::time::Duration;
use wasmcni_bench::lines::Lines;
use wasmcni_bench::percentile;
use wasmcni_e2e::cluster::{ETCD_URL, Etcd, Node, Switch};

const PEERS: u8 = 3;
const SUBNETS: &str = "/wasmcni/network/subnets/";

pub fn run(joins: usize) {
    for backend in ["host-gw", "vxlan"] {
        run_backend(backend, joins);
    }
}

fn run_backend(backend: &str, joins: usize) {
    let switch = Switch::new();
    let etcd = Etcd::start(&switch);
    let network = json!({"Network": "10.244.0.0/16", "SubnetLen": 24, "Backend": {"Type": backend}});
    etcd.ctl(&["put", "/wasmcni/network/config", &network.to_string()]).expect("put the network config");
    let nodes: Vec<Node> = (1..=PEERS).map(|n| Node::new(&switch, n)).collect();
    let _daemons: Vec<_> =
        nodes.iter().map(|n| n.daemon(&["--etcd-endpoints", ETCD_URL, "--routing-plugin", backend])).collect();
    let watch = Lines::spawn(Command::new("ip").args([
        "netns",
        "exec",
        &etcd.ns.name,
        "etcdctl",
        "--endpoints",
        ETCD_URL,
        "watch",
        "--prefix",
        SUBNETS,
    ]));
    let monitors: Vec<Lines> = nodes
        .iter()
        .map(|n| Lines::spawn(Command::new("ip").args(["-n", &n.lab.host.name, "monitor", "route"])))
        .collect();
    // Both watchers subscribed before the first lease.
    std::thread::sleep(Duration::from_millis(500));

    let (mut join, mut leave) = (Vec::new(), Vec::new());
    for k in 0..joins {
        let third = 100 + k % 150;
        let (subnet, key) = (format!("10.244.{third}.0/24"), format!("{SUBNETS}10.244.{third}.0-24"));
        let mut value = json!({"PublicIP": format!("192.168.50.{}", 150 + k % 100), "BackendType": backend});
        if backend == "vxlan" {
            value["BackendData"] = json!({"VNI": 1, "VtepMAC": format!("0e:00:00:00:{:02x}:{:02x}", k / 256, k % 256)});
        }
        etcd.ctl(&["put", &key, &value.to_string()]).expect("put a node lease");
        let appeared = watch.until(|l| l == key);
        let routed = monitors.iter().map(|m| m.until(|l| l.starts_with(&subnet))).max().unwrap();
        join.push(routed.saturating_duration_since(appeared));
        etcd.ctl(&["del", &key]).expect("delete the node lease");
        let gone = watch.until(|l| l == key);
        let deleted = format!("Deleted {subnet}");
        let withdrawn = monitors.iter().map(|m| m.until(|l| l.starts_with(&deleted))).max().unwrap();
        leave.push(withdrawn.saturating_duration_since(gone));
    }
    join.sort();
    leave.sort();
    println!("\ncluster convergence ({backend}, etcd, {PEERS} nodes): {joins} node leases added, then removed");
    println!("{:<36} {:>8} {:>8} {:>8}", "", "p50 ms", "p95 ms", "max ms");
    for (label, s) in [("lease in etcd -> every peer's route", &join), ("lease gone -> every peer withdrew", &leave)] {
        let max = s.last().unwrap().as_secs_f64() * 1000.0;
        println!("{label:<36} {:>8.1} {:>8.1} {max:>8.1}", percentile(s, 0.5), percentile(s, 0.95));
    }
}
