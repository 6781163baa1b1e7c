//! The same assertions for the fakes and for the kernel: each function here
//! runs against `fake` below and against the kernel (in namespaces of its
//! own) in the kernel tests, so the two are shown to agree.

use crate::error::Existing;
use crate::ipam_store::{Lease, Leases};
use crate::link::{BridgeParams, Link, VethParams};
use crate::masquerade::{Nat, Owner};
use crate::netns::Namespace;
use crate::overlay::{Fdb, Neighbor, Overlay, VtepParams};
use crate::{Error, Result};
use ipnet::IpNet;
use nix::libc;
use std::net::IpAddr;
use wasmcni_cni::Mac;
use wasmcni_cni::result::Route;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The errno a call failed with; panics if it did not fail.
#[track_caller]
fn errno<T: std::fmt::Debug>(r: Result<T>) -> i32 {
    let e = r.unwrap_err();
    e.errno().unwrap_or_else(|| panic!("no errno in {e:?}"))
}

fn veth<'a>(host_name: &'a str, container_name: &'a str) -> VethParams<'a> {
    VethParams { host_name, container_name, mtu: None, container_mac: None }
}

/// A veth `name` here, up, its peer in `peer`.
async fn up_veth<N: Namespace>(ns: &N, peer: &N::Netns, name: &str, peer_name: &str) -> Link {
    ns.create_veth(peer, &veth(name, peer_name)).await.unwrap();
    let link = ns.require_link(name).await.unwrap();
    ns.set_up(&link, true).await.unwrap();
    link
}

pub(crate) async fn links<N: Namespace>(host: &N, container: &N, peer: &N::Netns) {
    assert_eq!(host.link_by_name("nothing").await.unwrap(), None);
    assert!(matches!(host.require_link("nothing").await, Err(Error::NoSuchLink(n)) if n == "nothing"));
    let lo = host.require_link("lo").await.unwrap();
    assert_eq!((lo.index, lo.loopback, lo.up, lo.mtu), (1, true, false, 65536));

    let params = BridgeParams { name: "br0", mtu: Some(1400), promisc: true, vlan_filtering: false };
    let br = host.ensure_bridge(&params).await.unwrap();
    assert_eq!((br.kind.as_str(), br.mtu, br.up), ("bridge", 1400, true));
    assert!(br.mac.is_some());
    let again = host.ensure_bridge(&params).await.unwrap();
    assert_eq!((again.index, again.mac), (br.index, br.mac));
    let bad = BridgeParams { name: "br 1", ..params };
    assert_eq!(errno(host.ensure_bridge(&bad).await), libc::EINVAL);

    let mac = Mac([2, 0, 0, 0, 0, 9]);
    let params = VethParams { mtu: Some(1450), container_mac: Some(mac), ..veth("vh0", "eth0") };
    host.create_veth(peer, &params).await.unwrap();
    let vh0 = host.require_link("vh0").await.unwrap();
    let eth0 = container.require_link("eth0").await.unwrap();
    assert_eq!((vh0.kind.as_str(), vh0.up, vh0.mtu), ("veth", true, 1450), "the host end is born up");
    assert_eq!((eth0.kind.as_str(), eth0.up, eth0.mtu, eth0.mac), ("veth", false, 1450, Some(mac)));
    assert_eq!((vh0.peer_index, eth0.peer_index), (Some(eth0.index), Some(vh0.index)));
    assert_eq!(container.link_by_index(eth0.index).await.unwrap(), Some(eth0.clone()));
    let taken = host.create_veth(peer, &params).await.unwrap_err();
    assert!(matches!(taken, Error::Exists { what: Existing::Link, .. }), "{taken:?}");
    let taken = host.create_veth(peer, &veth("vh1", "eth0")).await.unwrap_err();
    assert!(matches!(taken, Error::Exists { what: Existing::Link, .. }), "{taken:?}");
    assert_eq!(host.link_by_name("vh1").await.unwrap(), None, "a refused veth leaves no end behind");
    assert_eq!(errno(host.create_veth(peer, &veth("bad name", "eth1")).await), libc::EINVAL);

    host.set_mtu(&vh0, 1300).await.unwrap();
    assert_eq!(host.require_link("vh0").await.unwrap().mtu, 1300);
    assert_eq!(container.require_link("eth0").await.unwrap().mtu, 1450, "each end has its own MTU");
    assert_eq!(errno(host.set_mtu(&vh0, 10).await), libc::EINVAL);

    assert_eq!(errno(host.set_hairpin(&vh0, true).await), libc::EOPNOTSUPP, "not a bridge port yet");
    assert_eq!(errno(host.set_port_vlan(&vh0, 10).await), libc::EOPNOTSUPP);
    host.set_master(&vh0, &br).await.unwrap();
    assert_eq!(host.require_link("vh0").await.unwrap().master, Some(br.index));
    host.set_hairpin(&vh0, true).await.unwrap();
    // (A VLAN on a port needs a kernel with bridge VLAN filtering, which not every kernel has.)
    assert_eq!(errno(host.set_master(&br, &br).await), libc::ELOOP);
    assert_eq!(errno(host.set_master(&br, &vh0).await), libc::EOPNOTSUPP, "a veth is no master");
    let not_a_bridge = host.ensure_bridge(&BridgeParams { name: "vh0", ..params_of(&br) }).await.unwrap_err();
    assert!(matches!(&not_a_bridge, Error::NotABridge { kind, .. } if kind == "veth"), "{not_a_bridge:?}");

    container.set_up(&eth0, true).await.unwrap();
    assert!(container.require_link("eth0").await.unwrap().up);
    // Deleting one end takes the other; a link gone is not an error to delete, but one to change.
    container.delete_link(&eth0).await.unwrap();
    assert_eq!(host.link_by_name("vh0").await.unwrap(), None, "the peer outlived its veth");
    assert_eq!(container.link_by_index(eth0.index).await.unwrap(), None);
    container.delete_link(&eth0).await.unwrap();
    assert_eq!(errno(host.set_up(&vh0, false).await), libc::ENODEV);

    host.create_veth(peer, &veth("vh0", "eth0")).await.unwrap();
    let vh0_again = host.require_link("vh0").await.unwrap();
    let eth0_again = container.require_link("eth0").await.unwrap();
    assert!(vh0_again.index != vh0.index && eth0_again.index != eth0.index, "an index was reused");
    host.delete_link_unregistered(&vh0_again).await.unwrap();
    assert_eq!(host.link_by_name("vh0").await.unwrap(), None);
    assert_eq!(container.link_by_name("eth0").await.unwrap(), None);
}

fn params_of(br: &Link) -> BridgeParams<'_> {
    BridgeParams { name: &br.name, mtu: None, promisc: false, vlan_filtering: false }
}

pub(crate) async fn addresses<N: Namespace>(ns: &N, peer: &N::Netns) {
    let d0 = up_veth(ns, peer, "d0", "d1").await;
    for a in ["10.40.0.5/24", "fd40::5/64"] {
        ns.add_address(&d0, net(a)).await.unwrap();
    }
    // Already there: the same IPv4 address and prefix, or the same IPv6 address.
    ns.add_address(&d0, net("10.40.0.5/24")).await.unwrap();
    ns.add_address(&d0, net("fd40::5/48")).await.unwrap();
    ns.add_address(&d0, net("10.40.0.5/16")).await.unwrap();
    let listed = ns.addresses(&d0).await.unwrap();
    for a in ["10.40.0.5/24", "10.40.0.5/16", "fd40::5/64"] {
        assert!(listed.contains(&net(a)), "{a} not in {listed:?}");
    }
    assert!(!listed.contains(&net("fd40::5/48")), "{listed:?}");
    ns.del_address(&d0, net("10.40.0.5/16")).await.unwrap();
    ns.del_address(&d0, net("10.40.0.5/16")).await.unwrap();
    ns.del_address(&d0, net("192.0.2.9/24")).await.unwrap();
    let listed = ns.addresses(&d0).await.unwrap();
    assert!(!listed.contains(&net("10.40.0.5/16")) && listed.contains(&net("10.40.0.5/24")), "{listed:?}");

    // A link going down keeps its IPv4 addresses and loses its IPv6 ones.
    ns.set_up(&d0, false).await.unwrap();
    let listed = ns.addresses(&d0).await.unwrap();
    assert!(listed.contains(&net("10.40.0.5/24")) && !listed.contains(&net("fd40::5/64")), "{listed:?}");

    ns.delete_link(&d0).await.unwrap();
    assert!(ns.addresses(&d0).await.unwrap().is_empty());
    assert_eq!(errno(ns.add_address(&d0, net("10.40.0.5/24")).await), libc::ENODEV);
    ns.del_address(&d0, net("10.40.0.5/24")).await.unwrap();

    let lo = ns.require_link("lo").await.unwrap();
    assert!(ns.addresses(&lo).await.unwrap().is_empty(), "lo has no address while down");
    ns.set_up(&lo, true).await.unwrap();
    let listed = ns.addresses(&lo).await.unwrap();
    assert!(listed.contains(&net("127.0.0.1/8")) && listed.contains(&net("::1/128")), "{listed:?}");
}

fn listed(dst: &str, gw: Option<&str>, priority: Option<u32>, scope: u8) -> Route {
    Route { gw: gw.map(ip), priority, table: Some(254), scope: Some(scope), ..Route::to(net(dst)) }
}

pub(crate) async fn routes<N: Namespace>(ns: &N, peer: &N::Netns) {
    let r0 = up_veth(ns, peer, "r0", "r1").await;
    let dev = Some(r0.index);
    for a in ["10.40.0.5/24", "fd40::5/64"] {
        ns.add_address(&r0, net(a)).await.unwrap();
    }
    // The fake has no IPv6 link-local routes.
    let on_r0 = || async {
        let all = ns.routes().await.unwrap();
        let link_local = net("fe80::/10");
        all.into_iter()
            .filter(|l| l.oif == dev && !link_local.contains(&l.route.dst))
            .map(|l| l.route)
            .collect::<Vec<_>>()
    };
    let found = on_r0().await;
    assert!(found.contains(&listed("10.40.0.0/24", None, None, 253)), "no IPv4 prefix route in {found:?}");
    assert!(found.contains(&listed("fd40::/64", None, Some(256), 0)), "no IPv6 prefix route in {found:?}");
    let prefix = Route::to(net("10.40.0.0/24"));
    assert!(matches!(ns.add_route(&prefix, dev).await, Err(Error::Exists { what: Existing::Route, .. })));

    let via = Route::to(net("192.0.2.0/24")).via(ip("10.40.0.1"));
    ns.add_route(&via, dev).await.unwrap();
    let taken = ns.add_route(&via, dev).await.unwrap_err();
    assert!(matches!(taken, Error::Exists { what: Existing::Route, .. }), "{taken:?}");
    let moved = Route::to(net("192.0.2.0/24")).via(ip("10.40.0.2"));
    ns.replace_route(&moved, dev).await.unwrap();
    let to_192: Vec<_> = on_r0().await.into_iter().filter(|r| r.dst == net("192.0.2.0/24")).collect();
    assert_eq!(to_192, [listed("192.0.2.0/24", Some("10.40.0.2"), None, 0)]);
    // A route's MTU is listed back.
    let narrow = Route { mtu: Some(1400), ..Route::to(net("192.0.3.0/24")).via(ip("10.40.0.1")) };
    ns.add_route(&narrow, dev).await.unwrap();
    let listed_mtu = on_r0().await.into_iter().find(|r| r.dst == net("192.0.3.0/24")).map(|r| r.mtu);
    assert_eq!(listed_mtu, Some(Some(1400)));
    // Without a device, the gateway's.
    ns.add_route(&Route::to(net("198.51.100.0/24")).via(ip("10.40.0.7")), None).await.unwrap();
    assert!(on_r0().await.contains(&listed("198.51.100.0/24", Some("10.40.0.7"), None, 0)));
    ns.add_route(&Route::to(net("fd99::/64")).via(ip("fd40::1")), dev).await.unwrap();
    assert!(on_r0().await.contains(&listed("fd99::/64", Some("fd40::1"), Some(1024), 0)));
    ns.add_route(&Route::to(net("fd97::/64")).via(ip("fe80::1")), dev).await.unwrap();

    // A gateway must be on the link: behind a prefix or device route, not behind another gateway.
    let unreachable = Route::to(net("203.0.113.0/24")).via(ip("10.50.0.1"));
    assert_eq!(errno(ns.add_route(&unreachable, dev).await), libc::ENETUNREACH);
    // Onlink, the same gateway is taken as on the link, and listed so.
    ns.replace_onlink_route(&unreachable, r0.index).await.unwrap();
    let onlink = ns.routes().await.unwrap().into_iter().find(|l| l.route.dst == net("203.0.113.0/24")).unwrap();
    assert_eq!((onlink.oif, onlink.onlink, onlink.route.gw), (dev, true, Some(ip("10.50.0.1"))));
    ns.del_route(&unreachable, dev).await.unwrap();
    assert!(ns.routes().await.unwrap().iter().all(|l| l.route.dst != net("203.0.113.0/24") && !l.onlink));
    let behind = Route::to(net("10.61.0.0/24")).via(ip("198.51.100.1"));
    assert_eq!(errno(ns.add_route(&behind, None).await), libc::ENETUNREACH);
    assert_eq!(errno(ns.add_route(&Route::to(net("fd98::/64")).via(ip("fd41::1")), dev).await), libc::EHOSTUNREACH);
    ns.add_route(&Route::to(net("10.62.0.1/32")), dev).await.unwrap();
    assert!(on_r0().await.contains(&listed("10.62.0.1/32", None, None, 253)), "a device route is link-scoped");
    ns.add_route(&Route::to(net("10.63.0.0/24")).via(ip("10.62.0.1")), dev).await.unwrap();

    assert_eq!(errno(ns.add_route(&Route::to(net("10.64.0.0/24")), Some(9999)).await), libc::ENODEV);
    assert_eq!(errno(ns.add_route(&Route::to(net("10.64.0.0/24")), None).await), libc::ENODEV);
    let mixed = ns.add_route(&Route::to(net("fd64::/64")).via(ip("10.40.0.1")), dev).await.unwrap_err();
    assert!(matches!(mixed, Error::InvalidRoute { .. }), "{mixed:?}");
    // An IPv4 route may go through an IPv6 gateway (RTA_VIA), which the listing does not read back.
    ns.add_route(&Route::to(net("10.65.0.0/24")).via(ip("fd40::1")), dev).await.unwrap();
    assert!(on_r0().await.contains(&listed("10.65.0.0/24", None, None, 0)));

    ns.del_route(&moved, dev).await.unwrap();
    ns.del_route(&moved, dev).await.unwrap();
    // Deleting without a gateway or device matches any.
    ns.del_route(&Route::to(net("198.51.100.0/24")), None).await.unwrap();
    let found = on_r0().await;
    assert!(!found.iter().any(|r| r.dst == net("192.0.2.0/24") || r.dst == net("198.51.100.0/24")), "{found:?}");

    // Down, the link loses every route through it, and takes no new one.
    ns.set_up(&r0, false).await.unwrap();
    assert_eq!(on_r0().await, []);
    assert_eq!(errno(ns.add_route(&Route::to(net("10.64.0.0/24")), dev).await), libc::ENETDOWN);
    ns.set_up(&r0, true).await.unwrap();
    assert_eq!(on_r0().await, [listed("10.40.0.0/24", None, None, 253)], "the IPv6 address went with the link");
    ns.add_route(&via, dev).await.unwrap();
    ns.delete_link(&r0).await.unwrap();
    assert_eq!(on_r0().await, []);
}

/// A VTEP on `underlay` (a link with 192.0.2.1/24, MTU 1500): created,
/// kept, recreated when its VNI changes; its neighbour and FDB entries
/// set, replaced and removed.
pub(crate) async fn overlay<N: Namespace + Overlay>(ns: &N, underlay: &Link) {
    let mac = Mac([0x0e, 0, 0, 0, 0, 1]);
    let p = VtepParams {
        name: "vtep.1",
        vni: 1,
        port: 8472,
        local: ip("192.0.2.1"),
        underlay: underlay.index,
        mtu: 1450,
        mac,
    };
    let vtep = ns.ensure_vtep(&p).await.unwrap();
    assert_eq!((vtep.kind.as_str(), vtep.mtu, vtep.mac, vtep.up), ("vxlan", 1450, Some(mac), true));
    assert_eq!(ns.ensure_vtep(&p).await.unwrap().index, vtep.index, "an unchanged VTEP was recreated");

    let peer_mac = Mac([0x0e, 0, 0, 0, 0, 2]);
    let n = Neighbor { ip: ip("10.244.2.0"), mac: peer_mac };
    ns.set_neighbor(&vtep, &n).await.unwrap();
    let moved = Neighbor { mac: Mac([0x0e, 0, 0, 0, 0, 3]), ..n };
    ns.set_neighbor(&vtep, &moved).await.unwrap();
    assert_eq!(ns.neighbors(&vtep).await.unwrap(), [moved]);
    ns.del_neighbor(&vtep, &moved).await.unwrap();
    ns.del_neighbor(&vtep, &moved).await.unwrap();
    assert_eq!(ns.neighbors(&vtep).await.unwrap(), []);

    let e = Fdb { mac: peer_mac, dst: ip("192.0.2.2") };
    ns.set_fdb(&vtep, &e).await.unwrap();
    let elsewhere = Fdb { dst: ip("192.0.2.3"), ..e };
    ns.set_fdb(&vtep, &elsewhere).await.unwrap();
    assert_eq!(ns.fdb(&vtep).await.unwrap(), [elsewhere]);
    ns.del_fdb(&vtep, &elsewhere).await.unwrap();
    ns.del_fdb(&vtep, &elsewhere).await.unwrap();
    assert_eq!(ns.fdb(&vtep).await.unwrap(), []);

    ns.set_neighbor(&vtep, &n).await.unwrap();
    ns.set_fdb(&vtep, &e).await.unwrap();
    let other = ns.ensure_vtep(&VtepParams { vni: 2, ..p }).await.unwrap();
    assert_ne!(other.index, vtep.index, "a VTEP with another VNI was kept");
    assert_eq!((ns.neighbors(&other).await.unwrap(), ns.fdb(&other).await.unwrap()), (vec![], vec![]));
    assert_eq!(ns.link_by_index(vtep.index).await.unwrap(), None);
    // A link of the VTEP's name that is something else is refused, not replaced.
    let not_vtep = ns.ensure_vtep(&VtepParams { name: &underlay.name, ..p }).await.unwrap_err();
    assert!(matches!(&not_vtep, Error::NotAVtep { .. }), "{not_vtep:?}");
    assert!(ns.link_by_index(underlay.index).await.unwrap().is_some());
}

pub(crate) async fn sysctls<N: Namespace>(ns: &N, peer: &N::Netns) {
    let fresh = [
        ("ipv4/ip_forward", "0"),
        ("ipv4/conf/all/rp_filter", "0"),
        ("ipv6/conf/all/forwarding", "0"),
        ("ipv4/conf/lo/arp_notify", "0"),
        ("ipv6/conf/lo/accept_dad", "-1"),
    ];
    for (key, value) in fresh {
        assert_eq!(ns.sysctl(key).unwrap(), value, "{key}");
    }
    let s0 = up_veth(ns, peer, "s0", "s1").await;
    let per_link = [
        ("ipv4/conf/s0/forwarding", "0"),
        ("ipv4/conf/s0/proxy_arp", "0"),
        ("ipv4/conf/s0/rp_filter", "0"),
        ("ipv4/conf/s0/route_localnet", "0"),
        ("ipv6/conf/s0/accept_ra", "1"),
        ("ipv6/conf/s0/accept_dad", "1"),
        ("ipv6/conf/s0/disable_ipv6", "0"),
    ];
    for (key, value) in per_link {
        assert_eq!(ns.sysctl(key).unwrap(), value, "{key}");
    }
    ns.set_sysctl("ipv4/conf/s0/proxy_arp", "1").unwrap();
    assert_eq!(ns.sysctl("ipv4/conf/s0/proxy_arp").unwrap(), "1");
    // Forwarding on for all is forwarding on for each link.
    ns.set_sysctl("ipv4/ip_forward", "1").unwrap();
    assert_eq!(ns.sysctl("ipv4/conf/s0/forwarding").unwrap(), "1");
    assert_eq!(ns.sysctl("ipv4/conf/default/forwarding").unwrap(), "1");
    ns.set_sysctl("ipv6/conf/all/forwarding", "1").unwrap();
    assert_eq!(ns.sysctl("ipv6/conf/s0/forwarding").unwrap(), "1");
    assert_eq!(N::connect(peer).sysctl("ipv4/ip_forward").unwrap(), "0", "another namespace's own");

    let bad = ns.set_sysctl("ipv4/conf/s0/proxy_arp", "abc").unwrap_err();
    assert!(matches!(&bad, Error::Sysctl { value: Some(v), .. } if v == "abc"), "{bad:?}");
    assert_eq!(bad.errno(), Some(libc::EINVAL));
    assert_eq!(errno(ns.sysctl("ipv4/conf/nothing/forwarding")), libc::ENOENT);
    assert_eq!(errno(ns.set_sysctl("ipv4/conf/nothing/forwarding", "1")), libc::ENOENT);
    ns.delete_link(&s0).await.unwrap();
    assert_eq!(errno(ns.sysctl("ipv4/conf/s0/forwarding")), libc::ENOENT, "a link's keys go with it");
}

fn owner(network: &str, container: &str, ifname: &str) -> Owner {
    Owner { network: network.into(), container_id: container.into(), ifname: ifname.into() }
}

/// `elements(network, exclude)`: the sources masqueraded there, sorted.
pub(crate) fn nat(m: &impl Nat, elements: impl Fn(&str, IpNet) -> Vec<IpAddr>) {
    let v4 = net("10.88.0.0/16");
    m.add(&owner("cbr0", "c1", "eth0"), ip("10.88.0.5"), v4).unwrap();
    m.add(&owner("cbr0", "c1", "eth0"), ip("10.88.0.5"), v4).unwrap();
    // Host bits in the exclude name the same set.
    m.add(&owner("cbr0", "c2", "eth0"), ip("10.88.0.6"), net("10.88.0.1/16")).unwrap();
    assert_eq!(elements("cbr0", v4), [ip("10.88.0.5"), ip("10.88.0.6")]);
    // An address taken over survives its old owner's late delete.
    m.add(&owner("cbr0", "new", "eth0"), ip("10.88.0.5"), v4).unwrap();
    m.delete(&owner("cbr0", "c1", "eth0")).unwrap();
    assert_eq!(elements("cbr0", v4), [ip("10.88.0.5"), ip("10.88.0.6")]);
    m.add(&owner("cbr0", "c2", "net1"), ip("10.88.0.7"), v4).unwrap();
    m.add(&owner("other", "c9", "eth0"), ip("10.99.0.9"), net("10.99.0.0/16")).unwrap();
    m.gc("cbr0", |c, i| (c, i) == ("c2", "eth0")).unwrap();
    assert_eq!(elements("cbr0", v4), [ip("10.88.0.6")]);
    assert_eq!(elements("other", net("10.99.0.0/16")), [ip("10.99.0.9")], "another network's are left alone");
    m.delete(&owner("cbr0", "c2", "eth0")).unwrap();
    m.delete(&owner("cbr0", "c2", "eth0")).unwrap();
    assert_eq!(elements("cbr0", v4), Vec::<IpAddr>::new());

    let invalid = |r: Result<()>| matches!(r, Err(Error::Masquerade(crate::masquerade::Error::Invalid { .. })));
    assert!(invalid(m.add(&owner("cbr0", "c1", "e 0"), ip("10.88.0.5"), v4)));
    assert!(invalid(m.add(&owner("cbr0", "c1", "eth0"), ip("fd00::5"), v4)));
    assert!(invalid(m.delete(&owner("a/b", "c1", "eth0"))));
    assert!(invalid(m.gc("a/b", |_, _| true)));
}

pub(crate) fn leases(l: &impl Leases) {
    let lease = |ip_: &str, c: &str, i: &str| Lease { ip: ip(ip_), container_id: c.into(), ifname: i.into() };
    assert!(l.reserve(ip("10.0.0.2"), "c1", "eth0", 0).unwrap());
    assert!(!l.reserve(ip("10.0.0.2"), "c2", "eth0", 0).unwrap(), "held");
    assert!(l.reserve(ip("10.0.0.3"), " c1 ", "eth1", 1).unwrap());
    assert!(l.reserve(ip("fd00::2"), "c2", "eth0", 0).unwrap());
    // No ifname: a lease as old host-local versions wrote them, the container's on any ifname.
    assert!(l.reserve(ip("10.0.0.4"), "c3", "", 0).unwrap());
    assert_eq!(
        (l.last_reserved(0).unwrap(), l.last_reserved(1).unwrap()),
        (Some(ip("10.0.0.4")), Some(ip("10.0.0.3")))
    );
    assert_eq!(l.last_reserved(2).unwrap(), None);
    assert_eq!(
        l.list().unwrap(),
        [
            lease("10.0.0.2", "c1", "eth0"),
            lease("10.0.0.3", "c1", "eth1"),
            lease("10.0.0.4", "c3", ""),
            lease("fd00::2", "c2", "eth0")
        ]
    );
    assert_eq!(l.release_owner("c1", "eth0").unwrap(), [ip("10.0.0.2")]);
    assert!(l.release_owner("c1", "eth0").unwrap().is_empty());
    assert_eq!(l.release_owner("c3", "eth9").unwrap(), [ip("10.0.0.4")]);
    assert_eq!(l.release_owner("c1", "eth1").unwrap(), [ip("10.0.0.3")]);
    assert_eq!(l.list().unwrap(), [lease("fd00::2", "c2", "eth0")]);
    assert_eq!(l.last_reserved(0).unwrap(), Some(ip("10.0.0.4")), "freeing does not rewind");
}

mod fake {
    use crate::fake::{self, Net};
    use futures::executor::block_on;

    #[test]
    fn links() {
        let (host, container) = (Net::new(), Net::new());
        block_on(super::links(&host, &container, &container));
    }

    #[test]
    fn addresses() {
        block_on(super::addresses(&Net::new(), &Net::new()));
    }

    #[test]
    fn routes() {
        block_on(super::routes(&Net::new(), &Net::new()));
    }

    #[test]
    fn sysctls() {
        block_on(super::sysctls(&Net::new(), &Net::new()));
    }

    #[test]
    fn overlay() {
        use crate::addr::Addresses;
        use crate::link::Links;
        let ns = Net::new();
        let underlay = ns.add_link("u0", "veth").unwrap();
        block_on(async {
            ns.set_up(&underlay, true).await.unwrap();
            ns.add_address(&underlay, "192.0.2.1/24".parse().unwrap()).await.unwrap();
            super::overlay(&ns, &underlay).await;
        });
    }

    #[test]
    fn nat() {
        let m = fake::Nat::default();
        super::nat(&m, |network, exclude| m.elements(network, exclude));
    }

    #[test]
    fn leases() {
        super::leases(&fake::Leases::default());
    }

    /// The real store needs no root: it is the same assertions on a directory of its own.
    #[test]
    fn the_lease_store_agrees_with_the_fake() {
        let root = std::env::temp_dir().join(format!("wasmcni-conformance-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        super::leases(&crate::ipam_store::IpamStore::open(&root, "net1", deadline).unwrap());
        std::fs::remove_dir_all(root).unwrap();
    }
}
