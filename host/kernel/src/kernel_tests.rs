//! Kernel tests of links, addresses, routes and sysctls: each test works in
//! network namespaces of its own (`wclnk<pid>n<k>`), removed on drop even
//! when the test fails. Needs root (the test run has it).

use crate::Error;
use crate::addr::Addresses;
use crate::conformance;
use crate::link::{BridgeParams, Links, VethParams};
use crate::netns::{Kernel, Namespace, Netns};
use crate::route::Routes;
use ipnet::IpNet;
use std::sync::Arc;
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

    /// The namespace opened as the host opens CNI_NETNS (inside a runtime).
    fn open(&self) -> Arc<Netns> {
        Arc::new(Netns::open(&format!("/run/netns/{}", self.name)).unwrap().expect("just made"))
    }

    fn kernel(&self) -> Kernel {
        Kernel::connect(&self.open())
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
        let h = ns.kernel();
        let params = BridgeParams { name: "br0", mtu: Some(1400), promisc: false, vlan_filtering: false };
        let made = h.ensure_bridge(&params).await.unwrap();
        assert_eq!((made.kind.as_str(), made.mtu), ("bridge", 1400));
        assert!(made.mac.is_some());
        let again = h.ensure_bridge(&params).await.unwrap();
        assert_eq!((again.index, again.mac), (made.index, made.mac), "a second ADD made another bridge");
        // NET_ADDR_SET (3): the MAC is the bridge's own, not its lowest port's.
        let assign = ip(&["netns", "exec", &ns.name, "cat", "/sys/class/net/br0/addr_assign_type"]);
        assert_eq!(assign.trim(), "3");
        ns.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
        let other = BridgeParams { name: "d0", ..params };
        let err = h.ensure_bridge(&other).await.unwrap_err();
        assert!(matches!(err, Error::NotABridge { .. }), "{err:?}");
        assert_eq!(wasmcni_cni::error::CniError::from(err).code, 7);
    });
}

#[test]
fn a_veth_is_born_across_namespaces_and_deleting_one_end_takes_both() {
    let (host, container) = (Scratch::new(), Scratch::new());
    runtime().block_on(async {
        let container_ns = container.open();
        let (h, c) = (host.kernel(), Kernel::connect(&container_ns));
        let mac = "02:00:00:00:00:09".parse().unwrap();
        let params =
            VethParams { host_name: "vethtest", container_name: "eth0", mtu: Some(1450), container_mac: Some(mac) };
        h.create_veth(&container_ns, &params).await.unwrap();
        let host_end = h.require_link("vethtest").await.unwrap();
        let eth0 = c.require_link("eth0").await.unwrap();
        assert!(host_end.up && !eth0.up, "the host end is born up, the container end down");
        assert_eq!((eth0.mtu, eth0.mac), (1450, Some(mac)));
        assert_eq!(eth0.peer_index, Some(host_end.index));
        c.delete_link(&eth0).await.unwrap();
        assert!(h.link_by_name("vethtest").await.unwrap().is_none(), "the peer outlived its veth");
        assert!(c.link_by_name("eth0").await.unwrap().is_none());
    });
}

#[test]
fn addresses_and_routes_are_added_listed_replaced_and_removed() {
    let ns = Scratch::new();
    ns.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    ns.ip(&["link", "set", "d1", "up"]);
    runtime().block_on(async {
        let h = ns.kernel();
        let d0 = h.require_link("d0").await.unwrap();
        h.set_up(&d0, true).await.unwrap();
        for a in ["10.40.0.5/24", "fd40::5/64"] {
            h.add_address(&d0, net(a)).await.unwrap();
        }
        // Adding again is not an error: a retried ADD finds its own address.
        h.add_address(&d0, net("10.40.0.5/24")).await.unwrap();
        let listed = h.addresses(&d0).await.unwrap();
        assert!(listed.contains(&net("10.40.0.5/24")) && listed.contains(&net("fd40::5/64")), "{listed:?}");

        let via = Route::to(net("192.0.2.0/24")).via("10.40.0.1".parse().unwrap());
        h.add_route(&via, Some(d0.index)).await.unwrap();
        assert!(ns.ip(&["route", "show", "192.0.2.0/24"]).contains("via 10.40.0.1 dev d0"));
        let moved = Route::to(net("192.0.2.0/24")).via("10.40.0.2".parse().unwrap());
        h.replace_route(&moved, Some(d0.index)).await.unwrap();
        assert!(ns.ip(&["route", "show", "192.0.2.0/24"]).contains("via 10.40.0.2"));
        let found = h.routes().await.unwrap();
        let ours = found.iter().find(|l| l.route.dst == net("192.0.2.0/24")).expect("listed");
        assert_eq!((ours.route.gw, ours.oif), (moved.gw, Some(d0.index)));
        h.del_route(&moved, Some(d0.index)).await.unwrap();
        assert_eq!(ns.ip(&["route", "show", "192.0.2.0/24"]), "");
        // A route someone else added (protocol "boot", not ours) goes too.
        ns.ip(&["route", "add", "198.51.100.0/24", "via", "10.40.0.1", "dev", "d0"]);
        let theirs = h.routes().await.unwrap().into_iter().find(|l| l.route.dst == net("198.51.100.0/24"));
        let theirs = theirs.expect("listed");
        h.del_route(&theirs.route, theirs.oif).await.unwrap();
        assert_eq!(ns.ip(&["route", "show", "198.51.100.0/24"]), "");

        h.del_address(&d0, net("10.40.0.5/24")).await.unwrap();
        assert!(!h.addresses(&d0).await.unwrap().contains(&net("10.40.0.5/24")));
    });
}

/// The conformance assertions, here against the kernel: `host` and `peer`
/// are both namespaces of their own.
fn conform<F: Future<Output = ()>>(run: impl FnOnce(Kernel, Kernel, Arc<Netns>) -> F) {
    let (host, peer) = (Scratch::new(), Scratch::new());
    runtime().block_on(async {
        let peer_ns = peer.open();
        run(host.kernel(), Kernel::connect(&peer_ns), peer_ns).await;
    });
}

#[test]
fn the_kernel_agrees_with_the_fake_on_links() {
    conform(|host, container, peer| async move { conformance::links(&host, &container, &peer).await });
}

#[test]
fn the_kernel_agrees_with_the_fake_on_addresses() {
    conform(|host, _, peer| async move { conformance::addresses(&host, &peer).await });
}

#[test]
fn the_kernel_agrees_with_the_fake_on_routes() {
    conform(|host, _, peer| async move { conformance::routes(&host, &peer).await });
}

#[test]
fn the_kernel_agrees_with_the_fake_on_the_overlay() {
    let ns = Scratch::new();
    ns.ip(&["link", "add", "u0", "type", "veth", "peer", "name", "u1"]);
    ns.ip(&["link", "set", "u0", "up"]);
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "u0"]);
    runtime().block_on(async {
        let h = ns.kernel();
        let underlay = h.require_link("u0").await.unwrap();
        conformance::overlay(&h, &underlay).await;
    });
    // What `ip` and `bridge` show of what the conformance run left.
    let vtep = ns.ip(&["-d", "link", "show", "vtep.1"]);
    assert!(vtep.contains("vxlan id 2") && vtep.contains("dstport 8472") && vtep.contains("nolearning"), "{vtep}");
}

#[test]
fn the_kernel_agrees_with_the_fake_on_sysctls() {
    conform(|host, _, peer| async move { conformance::sysctls(&host, &peer).await });
}
