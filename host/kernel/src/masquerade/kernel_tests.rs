//! Kernel tests: each runs in network namespaces of its own (`wcnft<pid>n<k>`),
//! removed on drop even when the test fails. Needs root (the test run has it).

use super::{Masquerade, Nat, Owner, chain_name, set_name};
use serde_json::Value;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace and a state dir, both removed on drop.
struct Netns {
    name: String,
    state: PathBuf,
}

impl Netns {
    fn new() -> Netns {
        assert!(nix::unistd::geteuid().is_root(), "the masquerade kernel tests need root (network namespaces)");
        let name = format!("wcnft{}n{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        run("ip", &["netns", "add", &name]);
        let state = std::env::temp_dir().join(format!("{name}-state"));
        Netns { name, state }
    }

    /// Moves the calling thread (only) into the namespace.
    fn enter(&self) {
        let f = std::fs::File::open(format!("/run/netns/{}", self.name)).unwrap();
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    }

    /// Runs `f` on a fresh thread inside the namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter();
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    fn masq(&self) -> Masquerade {
        Masquerade::new(self.state.clone())
    }

    fn nft(&self, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", &self.name, "nft"];
        all.extend(args);
        run("ip", &all)
    }

    fn ruleset(&self) -> Value {
        serde_json::from_str(&self.nft(&["-j", "list", "ruleset"])).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).stderr(Stdio::piped()).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn items<'a>(v: &'a Value, kind: &str) -> Vec<&'a Value> {
    v["nftables"].as_array().unwrap().iter().filter_map(|i| i.get(kind)).filter(|i| i["table"] == "wasmcni").collect()
}

fn rules_in(v: &Value, chain: &str) -> usize {
    items(v, "rule").iter().filter(|r| r["chain"] == chain).count()
}

fn elements(v: &Value, set: &str) -> Vec<String> {
    let set = items(v, "set").into_iter().find(|s| s["name"] == set).unwrap_or_else(|| panic!("no set {set}"));
    set.get("elem")
        .and_then(Value::as_array)
        .map(|e| e.iter().map(|e| e.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn owner(network: &str, container: &str, ifname: &str) -> Owner {
    Owner { network: network.into(), container_id: container.into(), ifname: ifname.into() }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const V4: &str = "10.88.0.0/16";

#[test]
fn add_creates_chain_set_rule_and_element() {
    let ns = Netns::new();
    ns.run(|| ns.masq().add(&owner("cbr0", "c1", "eth0"), ip("10.88.0.5"), V4.parse().unwrap())).unwrap();
    let v = ns.ruleset();
    let chain = items(&v, "chain").into_iter().find(|c| c["name"] == "masq-cbr0").expect("chain");
    assert_eq!(
        (&chain["type"], &chain["hook"], &chain["prio"], &chain["policy"]),
        (&"nat".into(), &"postrouting".into(), &100.into(), &"accept".into())
    );
    assert_eq!(elements(&v, "masq-cbr0-10.88.0.0-16"), ["10.88.0.5"]);
    assert_eq!(rules_in(&v, "masq-cbr0"), 1);
    let text = ns.nft(&["list", "chain", "inet", "wasmcni", "masq-cbr0"]);
    println!("{text}");
    assert!(
        text.contains("ip saddr @masq-cbr0-10.88.0.0-16 ip daddr != 10.88.0.0/16 ip daddr != 224.0.0.0/4 masquerade"),
        "{text}"
    );
}

#[test]
fn add_is_idempotent_and_containers_share_the_rule() {
    let ns = Netns::new();
    ns.run(|| {
        let m = ns.masq();
        m.add(&owner("cbr0", "c1", "eth0"), ip("10.88.0.5"), V4.parse().unwrap()).unwrap();
        m.add(&owner("cbr0", "c1", "eth0"), ip("10.88.0.5"), V4.parse().unwrap()).unwrap();
        // Host bits in the exclude do not make another set.
        m.add(&owner("cbr0", "c2", "eth0"), ip("10.88.0.6"), "10.88.0.1/16".parse().unwrap()).unwrap();
    });
    let v = ns.ruleset();
    assert_eq!(rules_in(&v, "masq-cbr0"), 1);
    assert_eq!(elements(&v, "masq-cbr0-10.88.0.0-16"), ["10.88.0.5", "10.88.0.6"]);
    assert_eq!(std::fs::read_to_string(ns.state.join("masquerade/cbr0/c1:eth0")).unwrap(), "10.88.0.5 10.88.0.0/16\n");
}

#[test]
fn delete_removes_exactly_its_own_and_is_idempotent() {
    let ns = Netns::new();
    ns.run(|| {
        let m = ns.masq();
        m.delete(&owner("cbr0", "never", "eth0")).unwrap(); // nothing at all yet
        let v6 = "fd00:88::/64".parse().unwrap();
        m.add(&owner("cbr0", "c1", "eth0"), ip("10.88.0.5"), V4.parse().unwrap()).unwrap();
        m.add(&owner("cbr0", "c1", "eth0"), ip("fd00:88::5"), v6).unwrap();
        m.add(&owner("cbr0", "c2", "eth0"), ip("10.88.0.6"), V4.parse().unwrap()).unwrap();
        m.add(&owner("cbr0", "c2", "eth0"), ip("fd00:88::6"), v6).unwrap();
        // Same container, another interface: its own identity.
        m.add(&owner("cbr0", "c1", "net1"), ip("10.88.0.7"), V4.parse().unwrap()).unwrap();
        m.delete(&owner("cbr0", "c1", "eth0")).unwrap();
        m.delete(&owner("cbr0", "c1", "eth0")).unwrap();
    });
    let v = ns.ruleset();
    assert_eq!(elements(&v, "masq-cbr0-10.88.0.0-16"), ["10.88.0.6", "10.88.0.7"]);
    assert_eq!(elements(&v, "masq-cbr0-fd00_88__-64"), ["fd00:88::6"]);
    assert_eq!(rules_in(&v, "masq-cbr0"), 2, "one per exclude");
    assert!(!ns.state.join("masquerade/cbr0/c1:eth0").exists());
    assert!(!ns.state.join("masquerade/cbr0/addr/10.88.0.5@10.88.0.0_16").exists());
}

#[test]
fn delete_with_an_element_already_gone_still_removes_the_rest() {
    let ns = Netns::new();
    ns.run(|| {
        let m = ns.masq();
        m.add(&owner("cbr0", "c1", "eth0"), ip("10.88.0.5"), V4.parse().unwrap()).unwrap();
        m.add(&owner("cbr0", "c1", "eth0"), ip("fd00::5"), "fd00::/64".parse().unwrap()).unwrap();
    });
    ns.nft(&["delete", "element", "inet", "wasmcni", "masq-cbr0-10.88.0.0-16", "{ 10.88.0.5 }"]);
    ns.run(|| ns.masq().delete(&owner("cbr0", "c1", "eth0"))).unwrap();
    assert!(elements(&ns.ruleset(), "masq-cbr0-fd00__-64").is_empty());
}

#[test]
fn a_reassigned_address_survives_the_old_owners_late_delete() {
    let ns = Netns::new();
    ns.run(|| {
        let m = ns.masq();
        m.add(&owner("cbr0", "old", "eth0"), ip("10.88.0.5"), V4.parse().unwrap()).unwrap();
        m.add(&owner("cbr0", "new", "eth0"), ip("10.88.0.5"), V4.parse().unwrap()).unwrap();
        m.delete(&owner("cbr0", "old", "eth0")).unwrap();
    });
    assert_eq!(elements(&ns.ruleset(), "masq-cbr0-10.88.0.0-16"), ["10.88.0.5"]);
    ns.run(|| ns.masq().delete(&owner("cbr0", "new", "eth0"))).unwrap();
    assert!(elements(&ns.ruleset(), "masq-cbr0-10.88.0.0-16").is_empty());
}

#[test]
fn gc_keeps_the_listed_attachments_of_its_network_only() {
    let ns = Netns::new();
    ns.run(|| {
        let m = ns.masq();
        m.add(&owner("cbr0", "keep", "eth0"), ip("10.88.0.2"), V4.parse().unwrap()).unwrap();
        m.add(&owner("cbr0", "keep", "net1"), ip("10.88.0.3"), V4.parse().unwrap()).unwrap();
        m.add(&owner("cbr0", "gone", "eth0"), ip("10.88.0.4"), V4.parse().unwrap()).unwrap();
        m.add(&owner("other", "gone", "eth0"), ip("10.99.0.4"), "10.99.0.0/16".parse().unwrap()).unwrap();
        m.gc("cbr0", |c, i| (c, i) == ("keep", "eth0")).unwrap();
        m.gc("never-used", |_, _| false).unwrap();
    });
    let v = ns.ruleset();
    assert_eq!(elements(&v, "masq-cbr0-10.88.0.0-16"), ["10.88.0.2"]);
    assert_eq!(elements(&v, "masq-other-10.99.0.0-16"), ["10.99.0.4"]);
}

#[test]
fn container_ids_too_long_for_a_file_name_are_deleted_and_collected() {
    let ns = Netns::new();
    let (a, b) = ("a".repeat(600), "b".repeat(600));
    ns.run(|| {
        let m = ns.masq();
        m.add(&owner("cbr0", &a, "eth0"), ip("10.88.0.2"), V4.parse().unwrap()).unwrap();
        m.add(&owner("cbr0", &b, "eth0"), ip("10.88.0.3"), V4.parse().unwrap()).unwrap();
        m.add(&owner("cbr0", &b, "eth0"), ip("10.88.0.3"), V4.parse().unwrap()).unwrap();
    });
    assert_eq!(elements(&ns.ruleset(), "masq-cbr0-10.88.0.0-16"), ["10.88.0.2", "10.88.0.3"]);
    ns.run(|| ns.masq().delete(&owner("cbr0", &a, "eth0"))).unwrap();
    assert_eq!(elements(&ns.ruleset(), "masq-cbr0-10.88.0.0-16"), ["10.88.0.3"]);
    ns.run(|| ns.masq().gc("cbr0", |c, _| c == a)).unwrap();
    assert!(elements(&ns.ruleset(), "masq-cbr0-10.88.0.0-16").is_empty());
    let records = std::fs::read_dir(ns.state.join("masquerade/cbr0")).unwrap().flatten();
    let left: Vec<_> = records.filter(|e| e.file_type().unwrap().is_file()).map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
}

/// (network, source, exclude) of the i-th concurrent attachment: two networks,
/// four (network, exclude) pairs, one of them IPv6.
fn attachment(i: u32) -> (Owner, IpAddr, ipnet::IpNet) {
    let (net, src, excl) = match i % 4 {
        0 => ("a", format!("10.88.{}.{}", i / 256, i % 256), V4),
        1 => ("a", format!("fd00:88::{i:x}"), "fd00:88::/64"),
        2 => ("b", format!("10.89.{}.{}", i / 256, i % 256), "10.89.0.0/16"),
        _ => ("b", format!("10.90.{}.{}", i / 256, i % 256), "10.90.0.0/16"),
    };
    (owner(net, &format!("c{i}"), "eth0"), ip(&src), excl.parse().unwrap())
}

fn check_counts(ns: &Netns, n: u32) {
    let v = ns.ruleset();
    for i in 0..4 {
        let (o, _, excl) = attachment(i);
        assert_eq!(elements(&v, &set_name(&o.network, excl)).len() as u32, n / 4, "set for {excl}");
    }
    assert_eq!(rules_in(&v, &chain_name("a")), 2);
    assert_eq!(rules_in(&v, &chain_name("b")), 2);
}

#[test]
fn concurrent_threads_leave_one_rule_per_exclude_and_no_elements() {
    const N: u32 = 200;
    let ns = Netns::new();
    for op in ["add", "delete"] {
        let barrier = Arc::new(Barrier::new(N as usize));
        let spans: Vec<_> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..N)
                .map(|i| {
                    let (ns, barrier) = (&ns, barrier.clone());
                    s.spawn(move || {
                        ns.enter();
                        let m = ns.masq(); // one per thread, like one per process
                        let (o, src, excl) = attachment(i);
                        barrier.wait();
                        let t = Instant::now();
                        if op == "add" { m.add(&o, src, excl) } else { m.delete(&o) }.unwrap();
                        (t, Instant::now(), m)
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let first = spans.iter().map(|s| s.0).min().unwrap();
        let last = spans.iter().map(|s| s.1).max().unwrap();
        let slowest = spans.iter().map(|s| s.1 - s.0).max().unwrap();
        // Sockets close only now (a one-shot process closes its own at exit): see the module doc.
        let t = Instant::now();
        drop(spans);
        println!(
            "{N} concurrent {op} threads: {:?} from first start to last end, slowest call {slowest:?}; \
             then closing their {N} sockets: {:?}",
            last - first,
            t.elapsed()
        );
        check_counts(&ns, if op == "add" { N } else { 0 });
    }
}

/// Client 10.88.0.5 -> router (the test netns) -> server 192.0.2.2, which has no
/// route back to 10.88/16: ping gets through only when masqueraded.
#[test]
fn masquerade_really_translates() {
    let (router, client, server) = (Netns::new(), Netns::new(), Netns::new());
    let r = router.name.as_str();
    for (peer, ours, addr, peer_addr) in
        [(&client, "toc", "10.88.0.1/16", "10.88.0.5/16"), (&server, "tos", "192.0.2.1/24", "192.0.2.2/24")]
    {
        run("ip", &["-n", r, "link", "add", ours, "type", "veth", "peer", "name", "eth0", "netns", &peer.name]);
        run("ip", &["-n", r, "addr", "add", addr, "dev", ours]);
        run("ip", &["-n", r, "link", "set", ours, "up"]);
        run("ip", &["-n", &peer.name, "addr", "add", peer_addr, "dev", "eth0"]);
        run("ip", &["-n", &peer.name, "link", "set", "eth0", "up"]);
    }
    run("ip", &["-n", &client.name, "route", "add", "default", "via", "10.88.0.1"]);
    run("ip", &["netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let ping = || {
        Command::new("ip")
            .args(["netns", "exec", &client.name, "ping", "-c1", "-W1", "192.0.2.2"])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(!ping(), "reached the server without NAT");
    let o = owner("cbr0", "c1", "eth0");
    router.run(|| router.masq().add(&o, ip("10.88.0.5"), V4.parse().unwrap())).unwrap();
    assert!(ping(), "masqueraded ping failed");
    router.run(|| router.masq().delete(&o)).unwrap();
    assert!(!ping(), "still masqueraded after delete");
}

#[test]
fn the_kernel_agrees_with_the_fake() {
    let ns = Netns::new();
    ns.run(|| {
        let found = |network: &str, exclude: ipnet::IpNet| {
            let v = ns.ruleset();
            let mut sources: Vec<IpAddr> =
                elements(&v, &set_name(network, exclude)).iter().map(|e| e.parse().unwrap()).collect();
            sources.sort();
            sources
        };
        crate::conformance::nat(&ns.masq(), found);
    });
}
