//! The capability's scope, journal and undo against the kernel fakes: what
//! a plugin may touch on the host, and what a failed ADD leaves behind.

use super::*;
use wasmcni_cni::error::Code;
use wasmcni_kernel::fake;
use wasmcni_kernel::link::Links;

type Cap = NetlinkCap<fake::Net, fake::Nat>;

struct Fixture {
    host: fake::Net,
    container: fake::Net,
    nat: Arc<fake::Nat>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture { host: fake::Net::new(), container: fake::Net::new(), nat: Arc::new(fake::Nat::default()) }
    }

    /// A capability for the call (net1, c1, eth0) that may touch `declared`.
    fn cap(&self, declared: &[&str], with_netns: bool) -> Cap {
        let owner = Owner { network: "net1".into(), container_id: "c1".into(), ifname: "eth0".into() };
        let netns = with_netns.then(|| self.container.clone());
        let declared = declared.iter().map(|d| d.to_string()).collect();
        NetlinkCap::new(owner, self.nat.clone(), self.host.clone(), netns, declared, false)
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[tokio::test]
async fn host_links_outside_the_declared_scope_are_denied_before_the_kernel_is_asked() {
    let f = Fixture::new();
    f.host.add_link("eth9", "dummy").unwrap();
    f.host.add_link("br0", "bridge").unwrap();
    let mut cap = f.cap(&["br0"], true);
    for err in [
        cap.set_link_up(Side::Host, "eth9", false).await.unwrap_err(),
        cap.get_link(Side::Host, "eth9").await.unwrap_err(),
        cap.delete_link(Side::Host, "eth9").await.unwrap_err(),
        cap.add_address(Side::Host, "eth9", net("10.0.0.1/24")).await.unwrap_err(),
        cap.sysctl_set(Side::Host, "ipv4/conf/eth9/forwarding", "1").unwrap_err(),
    ] {
        assert_eq!(err.code, Code::CapabilityDenied as u32, "{}", err.msg);
    }
    assert!(f.host.link_by_name("eth9").await.unwrap().is_some(), "a denied delete removed the link");
    // The declared link is in scope; a container-side name never is checked against it.
    cap.set_link_up(Side::Host, "br0", true).await.unwrap();
    assert!(f.host.link_by_name("br0").await.unwrap().unwrap().up);
    f.container.add_link("eth9", "dummy").unwrap();
    cap.set_link_up(Side::Container, "eth9", true).await.unwrap();
}

#[tokio::test]
async fn a_veth_s_host_end_joins_the_scope_and_a_failed_add_s_undo_removes_it_and_its_masquerade() {
    let f = Fixture::new();
    let mut cap = f.cap(&[], true);
    let (host, container) = cap.create_veth("eth0", Some(1400), None).await.unwrap();
    assert_eq!(container.link.name, "eth0");
    assert_eq!(host.link.mtu, 1400);
    assert_eq!(host.link.peer_index, Some(container.link.index));
    // Created in this call, so in scope; a different call's name is not.
    cap.set_link_up(Side::Host, &host.link.name, true).await.unwrap();
    let exclude = net("10.22.0.0/16");
    cap.masquerade_add("10.22.0.5".parse().unwrap(), exclude).unwrap();
    assert_eq!(f.nat.elements("net1", exclude).len(), 1);

    cap.undo().await;
    assert!(f.host.link_by_name(&host.link.name).await.unwrap().is_none(), "undo left the host veth");
    assert!(f.container.link_by_name("eth0").await.unwrap().is_none(), "undo left the container end");
    assert!(f.nat.elements("net1", exclude).is_empty(), "undo left the masquerade entry");
}

#[tokio::test]
async fn the_host_veth_is_named_for_the_attachment_so_a_retry_finds_it() {
    let f = Fixture::new();
    let (first, _) = f.cap(&[], true).create_veth("eth0", None, None).await.unwrap();
    let err = f.cap(&[], true).create_veth("eth0", None, None).await.unwrap_err();
    assert_eq!(err.code, Code::Kernel as u32, "{}", err.msg);
    assert!(err.msg.contains(&first.link.name), "{}", err.msg);
}

#[tokio::test]
async fn a_call_without_a_netns_cannot_reach_the_container_side() {
    let f = Fixture::new();
    let mut cap = f.cap(&[], false);
    let err = cap.create_veth("eth0", None, None).await.unwrap_err();
    assert_eq!(err.code, Code::InvalidEnv as u32);
    assert_eq!(cap.get_link(Side::Container, "lo").await.unwrap_err().code, Code::InvalidEnv as u32);
    assert!(cap.veth_peer("eth0").await.is_err());
    assert!(cap.journal.created.is_empty());
}

#[tokio::test]
async fn the_peer_of_a_container_link_is_found_only_when_it_points_back() {
    let f = Fixture::new();
    let mut cap = f.cap(&[], true);
    let (host, _) = cap.create_veth("eth0", None, None).await.unwrap();
    // A later call (a DEL) finds the host end through the container's, and may then touch it.
    let mut del = f.cap(&[], true);
    let peer = del.veth_peer("eth0").await.unwrap().expect("found");
    assert_eq!(peer.link.name, host.link.name);
    del.delete_link(Side::Host, &host.link.name).await.unwrap();
    assert!(del.veth_peer("eth0").await.unwrap().is_none(), "the peer went with the host end");
    // A container link that is no veth has no peer.
    f.container.add_link("dummy0", "dummy").unwrap();
    assert!(del.veth_peer("dummy0").await.unwrap().is_none());
}

#[tokio::test]
async fn host_routes_need_a_device_in_scope_and_a_destination_the_scope_allows() {
    let f = Fixture::new();
    f.host.add_link("br0", "bridge").unwrap();
    let mut cap = f.cap(&["br0"], true);
    cap.set_link_up(Side::Host, "br0", true).await.unwrap();
    let route = Route::to(net("10.30.0.0/24"));
    let err = cap.change_route(Side::Host, None, &route, RouteOp::Add).await.unwrap_err();
    assert_eq!(err.code, Code::CapabilityDenied as u32, "{}", err.msg);
    let default = Route::to(net("0.0.0.0/0"));
    let err = cap.change_route(Side::Host, Some("br0"), &default, RouteOp::Add).await.unwrap_err();
    assert_eq!(err.code, Code::CapabilityDenied as u32, "a host default route was allowed: {}", err.msg);
    cap.change_route(Side::Host, Some("br0"), &route, RouteOp::Add).await.unwrap();
    let listed = cap.list_routes(Side::Host, Some("br0")).await.unwrap();
    assert!(listed.iter().any(|r| r.route.dst == route.dst && r.dev.as_deref() == Some("br0")), "{listed:?}");
    // The container side may have a route without a device (via a gateway on link).
    cap.create_veth("eth0", None, None).await.unwrap();
    cap.set_link_up(Side::Container, "eth0", true).await.unwrap();
    cap.add_address(Side::Container, "eth0", net("10.30.0.5/24")).await.unwrap();
    let via = Route::to(net("0.0.0.0/0")).via("10.30.0.1".parse().unwrap());
    cap.change_route(Side::Container, None, &via, RouteOp::Add).await.unwrap();
}

#[tokio::test]
async fn sysctls_are_checked_against_the_allow_list_and_set_on_their_side() {
    let f = Fixture::new();
    f.host.add_link("br0", "bridge").unwrap();
    let cap = f.cap(&["br0"], true);
    cap.sysctl_set(Side::Host, "ipv4/conf/br0/forwarding", "1").unwrap();
    assert_eq!(cap.sysctl_get(Side::Host, "ipv4/conf/br0/forwarding").unwrap(), "1");
    assert_eq!(cap.sysctl_get(Side::Container, "ipv4/ip_forward").unwrap(), "0", "the container side was the host's");
    let err = cap.sysctl_set(Side::Host, "../../kernel/core_pattern", "x").unwrap_err();
    assert_eq!(err.code, Code::CapabilityDenied as u32, "{}", err.msg);
}
