//! Kernel tests: a node namespace routing between two pod namespaces
//! (`wcnp<pid>n<k>{node,a,b}`), removed on drop even when a test fails.
//! Needs root (the test run has it).

use super::{Allow, Filter, Nftables, PodFilter, Ports, Protocol};
use serde_json::Value;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).stderr(Stdio::piped()).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// node ── veth ── a (10.9.1.2), node ── veth ── b (10.9.2.2); the node routes.
struct Topology {
    prefix: String,
}

impl Topology {
    fn new() -> Topology {
        assert!(nix::unistd::geteuid().is_root(), "the network policy kernel tests need root (network namespaces)");
        let prefix = format!("wcnp{}n{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let t = Topology { prefix };
        for ns in ["node", "a", "b"] {
            run(&["ip", "netns", "add", &t.ns(ns)]);
        }
        for (pod, net) in [("a", 1), ("b", 2)] {
            let (node, pod_ns) = (t.ns("node"), t.ns(pod));
            let link = format!("to-{pod}");
            run(&["ip", "-n", &node, "link", "add", &link, "type", "veth", "peer", "eth0", "netns", &pod_ns]);
            run(&["ip", "-n", &node, "addr", "add", &format!("10.9.{net}.1/24"), "dev", &link]);
            run(&["ip", "-n", &node, "link", "set", &link, "up"]);
            run(&["ip", "-n", &pod_ns, "addr", "add", &format!("10.9.{net}.2/24"), "dev", "eth0"]);
            run(&["ip", "-n", &pod_ns, "link", "set", "eth0", "up"]);
            run(&["ip", "-n", &pod_ns, "link", "set", "lo", "up"]);
            run(&["ip", "-n", &pod_ns, "route", "add", "default", "via", &format!("10.9.{net}.1")]);
        }
        run(&["ip", "netns", "exec", &t.ns("node"), "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        t
    }

    fn ns(&self, which: &str) -> String {
        format!("{}{which}", self.prefix)
    }

    /// Runs `f` on a fresh thread inside namespace `which`.
    fn run<T: Send>(&self, which: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.ns(which));
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(path).unwrap();
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Whether a TCP connection from a to b's `port` is accepted.
    fn connects(&self, port: u16) -> bool {
        let listener = self.run("b", || TcpListener::bind(("0.0.0.0", port)).unwrap());
        let to: SocketAddr = ([10, 9, 2, 2], port).into();
        let ok = self.run("a", || TcpStream::connect_timeout(&to, Duration::from_secs(2)).is_ok());
        drop(listener);
        ok
    }

    fn table(&self) -> Option<Value> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns("node"), "nft", "-j", "list", "table", "inet", super::TABLE])
            .output()
            .unwrap();
        out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap())
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in ["node", "a", "b"] {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(ns)]).status();
        }
    }
}

fn b(ingress: Option<Vec<Allow>>) -> PodFilter {
    PodFilter { name: "y.b".into(), addrs: vec!["10.9.2.2".parse().unwrap()], ingress, egress: None }
}

fn count(table: &Value, kind: &str) -> usize {
    table["nftables"].as_array().unwrap().iter().filter(|i| i.get(kind).is_some()).count()
}

#[test]
fn a_policy_admits_what_it_lists_refuses_the_rest_and_is_replaced_whole() {
    let t = Topology::new();
    let filter = Nftables::default();
    assert!(t.connects(80) && t.connects(81), "open before any policy");
    let from_a = Allow {
        peers: Some(vec!["10.9.1.2/32".parse().unwrap(), "10.9.100.0/24".parse().unwrap()]),
        ports: vec![Ports { protocol: Protocol::Tcp, range: Some((80, 80)) }],
    };
    t.run("node", || filter.apply(&[b(Some(vec![from_a]))])).unwrap();
    assert!(t.connects(80), "a may reach b:80");
    assert!(!t.connects(81), "but not b:81");
    let table = t.table().expect("the table is there");
    // base + in-y.b; the peer set and the four verdict maps; 6 base rules, 2 + 2 pod rules.
    assert_eq!(
        (count(&table, "chain"), count(&table, "set") + count(&table, "map"), count(&table, "rule")),
        (2, 5, 10)
    );

    // A port range, from anywhere.
    let range = Allow { peers: None, ports: vec![Ports { protocol: Protocol::Tcp, range: Some((81, 90)) }] };
    t.run("node", || filter.apply(&[b(Some(vec![range]))])).unwrap();
    assert!(!t.connects(80) && t.connects(81) && t.connects(90));
    assert_eq!(count(&t.table().unwrap(), "set"), 0, "the old peer set went with the old policy");

    // From a prefix a is not in: nothing reaches b.
    let elsewhere = Allow { peers: Some(vec!["10.9.100.0/24".parse().unwrap()]), ports: vec![] };
    t.run("node", || filter.apply(&[b(Some(vec![elsewhere]))])).unwrap();
    assert!(!t.connects(80));

    // Nothing isolated: the table is gone and traffic flows.
    t.run("node", || filter.apply(&[b(None)])).unwrap();
    assert!(t.table().is_none() && t.connects(80));
    t.run("node", || filter.apply(&[])).unwrap();
}

#[test]
fn egress_isolation_holds_the_sender_and_replies_pass() {
    let t = Topology::new();
    let filter = Nftables::default();
    let a = |egress| PodFilter { name: "x.a".into(), addrs: vec!["10.9.1.2".parse().unwrap()], ingress: None, egress };
    t.run("node", || filter.apply(&[a(Some(vec![]))])).unwrap();
    assert!(!t.connects(80), "a may send nowhere");
    let to_b = Allow { peers: Some(vec!["10.9.2.0/24".parse().unwrap()]), ports: vec![] };
    // b's ingress isolated with nothing allowed: a's egress allows it, b's ingress still refuses.
    t.run("node", || filter.apply(&[a(Some(vec![to_b.clone()])), b(Some(vec![]))])).unwrap();
    assert!(!t.connects(80));
    // b isolated but admitting a: replies from b (b → a) are established and pass a's egress and b's.
    let from_a = Allow { peers: Some(vec!["10.9.1.2/32".parse().unwrap()]), ports: vec![] };
    t.run("node", || filter.apply(&[a(Some(vec![to_b])), b(Some(vec![from_a]))])).unwrap();
    assert!(t.connects(80));
}
