//! Kernel tests of the link, address and route wrappers: each test works in
//! network namespaces of its own (`wclnk<pid>n<k>`), removed on drop even
//! when the test fails. Needs root (the test run has it).

use crate::link::{self, BridgeParams, VethParams};
use crate::netns::{self, Netns};
use crate::{addr, route};
use ipnet::IpNet;
use std::sync::atomic::{AtomicU32, Ordering};
use wasmcni_cni::result::Route;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A named network namespace, deleted on drop.
struct Scratch {
    name: String,
}

impl Scratch {
    fn new() -> Scratch {
        assert!(nix::unistd::geteuid().is_root(), "the kernel tests need root (network namespaces)");
        let name = format!("wclnk{}n{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        ip(&["netns", "add", &name]);
        Scratch { name }
    }

    fn open(&self) -> Netns {
        Netns::open(&format!("/run/netns/{}", self.name)).unwrap().expect("just made")
    }

    /// `ip` run inside the namespace, its output.
    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend(args);
        ip(&all)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn ip(args: &[&str]) -> String {
    let out = std::process::Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn a_bridge_is_created_with_a_pinned_mac_and_reused_and_a_non_bridge_is_refused() {
    let ns = Scratch::new();
    runtime().block_on(async {
        let netns = ns.open();
        let h = netns::connect(Some(&netns)).unwrap();
        let params = BridgeParams { name: "br0", mtu: Some(1400), promisc: false, vlan_filtering: false };
        let made = link::ensure_bridge(&h, &params).await.unwrap();
        assert_eq!((made.kind.as_str(), made.mtu), ("bridge", 1400));
        assert!(made.mac.is_some());
        let again = link::ensure_bridge(&h, &params).await.unwrap();
        assert_eq!((again.index, again.mac), (made.index, made.mac), "a second ADD made another bridge");
        // NET_ADDR_SET (3): the MAC is the bridge's own, not its lowest port's.
        let assign = ip(&["netns", "exec", &ns.name, "cat", "/sys/class/net/br0/addr_assign_type"]);
        assert_eq!(assign.trim(), "3");
        ns.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
        let other = BridgeParams { name: "d0", ..params };
        assert_eq!(link::ensure_bridge(&h, &other).await.unwrap_err().code, 7);
    });
}

#[test]
fn a_veth_is_born_across_namespaces_and_deleting_one_end_takes_both() {
    let (host, container) = (Scratch::new(), Scratch::new());
    runtime().block_on(async {
        let (host_ns, container_ns) = (host.open(), container.open());
        let h = netns::connect(Some(&host_ns)).unwrap();
        let c = netns::connect(Some(&container_ns)).unwrap();
        let mac = "02:00:00:00:00:09".parse().unwrap();
        let params =
            VethParams { host_name: "vethtest", container_name: "eth0", mtu: Some(1450), container_mac: Some(mac) };
        link::create_veth(&h, container_ns.file(), &params).await.unwrap();
        let host_end = link::require(&h, "vethtest").await.unwrap();
        let eth0 = link::require(&c, "eth0").await.unwrap();
        assert!(host_end.up && !eth0.up, "the host end is born up, the container end down");
        assert_eq!((eth0.mtu, eth0.mac), (1450, Some(mac)));
        assert_eq!(eth0.peer_index, Some(host_end.index));
        link::delete(&c, &eth0).await.unwrap();
        assert!(link::by_name(&h, "vethtest").await.unwrap().is_none(), "the peer outlived its veth");
        assert!(link::by_name(&c, "eth0").await.unwrap().is_none());
    });
}

#[test]
fn addresses_and_routes_are_added_listed_replaced_and_removed() {
    let ns = Scratch::new();
    ns.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    ns.ip(&["link", "set", "d1", "up"]);
    runtime().block_on(async {
        let netns = ns.open();
        let h = netns::connect(Some(&netns)).unwrap();
        let d0 = link::require(&h, "d0").await.unwrap();
        link::set_up(&h, &d0, true).await.unwrap();
        for a in ["10.40.0.5/24", "fd40::5/64"] {
            addr::add(&h, &d0, net(a)).await.unwrap();
        }
        // Adding again is not an error: a retried ADD finds its own address.
        addr::add(&h, &d0, net("10.40.0.5/24")).await.unwrap();
        let listed = addr::list(&h, &d0).await.unwrap();
        assert!(listed.contains(&net("10.40.0.5/24")) && listed.contains(&net("fd40::5/64")), "{listed:?}");

        let via = Route::to(net("192.0.2.0/24")).via("10.40.0.1".parse().unwrap());
        route::add(&h, &via, Some(d0.index), false).await.unwrap();
        assert!(ns.ip(&["route", "show", "192.0.2.0/24"]).contains("via 10.40.0.1 dev d0"));
        let moved = Route::to(net("192.0.2.0/24")).via("10.40.0.2".parse().unwrap());
        route::add(&h, &moved, Some(d0.index), true).await.unwrap();
        assert!(ns.ip(&["route", "show", "192.0.2.0/24"]).contains("via 10.40.0.2"));
        let found = route::list(&h).await.unwrap();
        let ours = found.iter().find(|l| l.route.dst == net("192.0.2.0/24")).expect("listed");
        assert_eq!((ours.route.gw, ours.oif), (moved.gw, Some(d0.index)));
        route::del(&h, &moved, Some(d0.index)).await.unwrap();
        assert_eq!(ns.ip(&["route", "show", "192.0.2.0/24"]), "");

        addr::del(&h, &d0, net("10.40.0.5/24")).await.unwrap();
        assert!(!addr::list(&h, &d0).await.unwrap().contains(&net("10.40.0.5/24")));
    });
}
