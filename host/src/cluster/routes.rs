//! Keeps the routes to other nodes' pods in the daemon's own netns. Each pass
//! compares what the routing plugin wants with what the kernel has, never
//! with what an earlier pass attempted: a route lost to a link flap comes
//! back, a route no current lease explains goes (one left from before a
//! restart too), and a pass that failed halfway is finished by the next.
//!
//! The routes it manages are the main table's routes through the underlay
//! (and an overlay's VTEP) to node subnets of the cluster network other than
//! this node's own. A route the plugin returns outside them is refused and
//! reported, and the rest are still applied: the plugin computes, the host
//! decides. Routes through other links (another tool's, a VPN's) are left
//! alone.

use crate::cni::result::Route;
use anyhow::Result;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use wasmcni_kernel::addr::Addresses;
use wasmcni_kernel::link::Links;
use wasmcni_kernel::netns::Kernel;
use wasmcni_kernel::route::{Listed, Routes, TABLE_MAIN, V6_DEFAULT_METRIC};

/// Which routes the applier manages.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub network: Ipv4Net,
    /// This node's own pod subnet, reached through its bridge: never touched.
    pub local: Ipv4Net,
    /// Dual stack: the IPv6 cluster network and this node's IPv6 subnet.
    pub v6: Option<(Ipv6Net, Ipv6Net)>,
}

impl Scope {
    /// The cluster network and this node's subnet of `dst`'s family, if
    /// the cluster has that family.
    fn family(&self, dst: &IpNet) -> Option<(IpNet, IpNet)> {
        match dst {
            IpNet::V4(_) => Some((IpNet::V4(self.network), IpNet::V4(self.local))),
            IpNet::V6(_) => self.v6.map(|(network, local)| (IpNet::V6(network), IpNet::V6(local))),
        }
    }

    /// Why `dst` is not (in) another node's subnet, if it is not.
    pub fn refuses(&self, dst: &IpNet) -> Option<String> {
        let Some((network, local)) = self.family(dst) else {
            return Some(format!("not in the cluster network {}", self.network));
        };
        if !network.contains(dst) || dst.prefix_len() <= network.prefix_len() {
            return Some(format!("not a node subnet of {network}"));
        }
        if local.contains(dst) || dst.contains(&local) {
            return Some(format!("overlaps this node's own subnet {local}"));
        }
        None
    }

    /// Whether `dst` lies in a cluster network (a route there may be ours).
    pub fn covers(&self, dst: &IpNet) -> bool {
        self.family(dst).is_some_and(|(network, _)| network.contains(dst))
    }

    fn manages(&self, l: &Listed, oifs: &[u32]) -> bool {
        l.oif.is_some_and(|o| oifs.contains(&o))
            && l.route.table.unwrap_or(TABLE_MAIN) == TABLE_MAIN
            && self.refuses(&l.route.dst).is_none()
    }
}

/// A route to install, through link `oif` (named `dev`, for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub route: Route,
    pub oif: u32,
    pub dev: String,
    /// The gateway is on `oif` whatever its addresses say (a VTEP's peers).
    pub onlink: bool,
}

/// Something from the plugin that the host will not install, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// What it is: `the route to 10.0.0.0/8`.
    pub what: String,
    pub reason: String,
}

/// Splits the plugin's routes into those the applier may install and those
/// it refuses (outside its scope, in another table, a second route to one
/// destination and metric).
pub fn admit(scope: &Scope, routes: Vec<Wanted>) -> (Vec<Wanted>, Vec<Refused>) {
    let (mut admitted, mut refused) = (Vec::<Wanted>::new(), Vec::new());
    for w in routes {
        let r = &w.route;
        let reason = match (scope.refuses(&r.dst), r.table) {
            (Some(why), _) => Some(why),
            (None, Some(t)) if t != TABLE_MAIN => Some(format!("in table {t}, not the main table")),
            _ if admitted.iter().any(|a| key(&a.route) == key(r)) => Some("a second route to it".into()),
            _ => None,
        };
        match reason {
            Some(reason) => refused.push(Refused { what: format!("the route to {}", r.dst), reason }),
            None => admitted.push(w),
        }
    }
    (admitted, refused)
}

/// What the kernel keys a route by in one table: destination and metric.
fn key(r: &Route) -> (IpNet, u32) {
    let default = if r.dst.addr().is_ipv6() { V6_DEFAULT_METRIC } else { 0 };
    (r.dst.trunc(), r.priority.filter(|p| *p != 0).unwrap_or(default))
}

/// One pass's changes.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Missing or different: added, replacing the one with the same key.
    pub put: Vec<Wanted>,
    /// Managed routes that nothing wanted has the key of.
    pub remove: Vec<Listed>,
}

/// What makes the managed routes (those through `oifs`) in `kernel` exactly
/// `wanted`; routes into `spared` (the subnets of peers the plugin failed on
/// this time) stay as they are.
pub fn plan(scope: &Scope, wanted: &[Wanted], oifs: &[u32], kernel: &[Listed], spared: &[IpNet]) -> Plan {
    let spared = |l: &&Listed| spared.iter().any(|s| s.contains(&l.route.dst));
    let ours: Vec<&Listed> = kernel.iter().filter(|l| scope.manages(l, oifs) && !spared(l)).collect();
    let installed = |w: &Wanted| {
        ours.iter().any(|l| {
            key(&l.route) == key(&w.route)
                && (l.oif, l.onlink, l.route.gw, l.route.mtu) == (Some(w.oif), w.onlink, w.route.gw, w.route.mtu)
        })
    };
    Plan {
        put: wanted.iter().filter(|w| !installed(w)).cloned().collect(),
        remove: ours.into_iter().filter(|l| !wanted.iter().any(|w| key(&w.route) == key(&l.route))).cloned().collect(),
    }
}

/// What a pass did; the steps that failed are retried by the next pass.
#[derive(Debug, Default)]
pub struct Applied {
    pub put: usize,
    pub removed: usize,
    pub failed: Vec<String>,
}

impl Applied {
    pub fn add(&mut self, other: Applied) {
        self.put += other.put;
        self.removed += other.removed;
        self.failed.extend(other.failed);
    }
}

/// The underlay link and the kernel routes go through.
pub struct Underlay<K = Kernel> {
    pub(super) host: K,
    pub name: String,
}

/// The underlay link's index, addresses and MTU.
pub struct UnderlayInfo {
    pub index: u32,
    pub addresses: Vec<IpNet>,
    pub mtu: u32,
}

impl Underlay {
    pub fn new(name: &str) -> Underlay {
        Underlay::with(Kernel::host(), name)
    }
}

impl<K: Links + Addresses + Routes> Underlay<K> {
    pub fn with(host: K, name: &str) -> Underlay<K> {
        Underlay { host, name: name.to_owned() }
    }

    pub async fn info(&self) -> Result<UnderlayInfo> {
        let l = self.host.require_link(&self.name).await?;
        let addresses = self.host.addresses(&l).await?;
        Ok(UnderlayInfo { index: l.index, addresses, mtu: l.mtu })
    }

    /// Brings the kernel's managed routes (those through `oifs`) to `wanted`
    /// (sparing those into `spared`), going on past a step that fails.
    pub async fn reconcile(&self, scope: &Scope, wanted: &[Wanted], oifs: &[u32], spared: &[IpNet]) -> Result<Applied> {
        let kernel = self.host.routes().await?;
        let plan = plan(scope, wanted, oifs, &kernel, spared);
        let mut done = Applied::default();
        for w in &plan.put {
            let r = &w.route;
            let put = match w.onlink {
                true => self.host.replace_onlink_route(r, w.oif).await,
                false => self.host.replace_route(r, Some(w.oif)).await,
            };
            match put {
                Ok(()) => {
                    done.put += 1;
                    let gw = r.gw.map_or("-".into(), |g| g.to_string());
                    tracing::info!("route {} via {gw} dev {}{}", r.dst, w.dev, if w.onlink { " onlink" } else { "" });
                }
                Err(e) => done.failed.push(format!("adding the route to {}: {e}", r.dst)),
            }
        }
        for l in &plan.remove {
            match self.host.del_route(&l.route, l.oif).await {
                Ok(()) => {
                    done.removed += 1;
                    tracing::info!("withdrew the route to {}", l.route.dst);
                }
                Err(e) => done.failed.push(format!("removing the route to {}: {e}", l.route.dst)),
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmcni_kernel::fake::Net;

    fn scope() -> Scope {
        Scope { network: "10.244.0.0/16".parse().unwrap(), local: "10.244.1.0/24".parse().unwrap(), v6: None }
    }

    fn via(dst: &str, gw: &str) -> Route {
        Route { gw: Some(gw.parse().unwrap()), ..Route::to(dst.parse().unwrap()) }
    }

    /// `routes` wanted through link `oif`.
    fn on(oif: u32, routes: impl IntoIterator<Item = Route>) -> Vec<Wanted> {
        routes.into_iter().map(|route| Wanted { route, oif, dev: format!("if{oif}"), onlink: false }).collect()
    }

    /// A host with an underlay `eth0` on 192.168.50.0/24 and this node's bridge route.
    async fn host() -> (Underlay<Net>, u32, u32) {
        let net = Net::new();
        let eth0 = net.add_link("eth0", "dummy").unwrap();
        net.set_up(&eth0, true).await.unwrap();
        net.add_address(&eth0, "192.168.50.1/24".parse().unwrap()).await.unwrap();
        let br = net.add_link("cni0", "bridge").unwrap();
        net.set_up(&br, true).await.unwrap();
        net.add_address(&br, "10.244.1.1/24".parse().unwrap()).await.unwrap();
        (Underlay::with(net, "eth0"), eth0.index, br.index)
    }

    async fn managed(u: &Underlay<Net>) -> Vec<(String, Option<String>)> {
        let (listed, eth0) = (u.host.routes().await.unwrap(), u.host.require_link("eth0").await.unwrap());
        let mut out: Vec<_> = listed
            .iter()
            .filter(|l| scope().manages(l, &[eth0.index]))
            .map(|l| (l.route.dst.to_string(), l.route.gw.map(|g| g.to_string())))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn routes_outside_the_scope_are_refused_one_by_one() {
        let routes = vec![
            via("10.244.2.0/24", "192.168.50.2"),
            via("10.244.1.0/24", "192.168.50.3"),
            via("10.0.0.0/8", "192.168.50.3"),
            via("10.244.0.0/16", "192.168.50.3"),
            Route { table: Some(100), ..via("10.244.4.0/24", "192.168.50.4") },
            via("10.244.2.0/24", "192.168.50.9"),
            via("10.244.3.0/24", "192.168.50.3"),
        ];
        let (admitted, refused) = admit(&scope(), on(2, routes));
        let dsts: Vec<String> = admitted.iter().map(|w| w.route.dst.to_string()).collect();
        assert_eq!(dsts, ["10.244.2.0/24", "10.244.3.0/24"]);
        let reasons: Vec<(&str, &str)> = refused.iter().map(|r| (r.what.as_str(), r.reason.as_str())).collect();
        assert_eq!(
            reasons,
            [
                ("the route to 10.244.1.0/24", "overlaps this node's own subnet 10.244.1.0/24"),
                ("the route to 10.0.0.0/8", "not a node subnet of 10.244.0.0/16"),
                ("the route to 10.244.0.0/16", "not a node subnet of 10.244.0.0/16"),
                ("the route to 10.244.4.0/24", "in table 100, not the main table"),
                ("the route to 10.244.2.0/24", "a second route to it"),
            ]
        );
    }

    #[test]
    fn with_dual_stack_ipv6_node_subnets_are_in_scope_and_this_nodes_is_not() {
        let mut s = scope();
        let net = |t: &str| t.parse::<IpNet>().unwrap();
        assert!(s.refuses(&net("fc00:0:0:2::/64")).unwrap().contains("not in the cluster network"));
        s.v6 = Some(("fc00::/48".parse().unwrap(), "fc00:0:0:1::/64".parse().unwrap()));
        assert_eq!(s.refuses(&net("fc00:0:0:2::/64")), None);
        assert_eq!(s.refuses(&net("fc00:0:0:1::/64")).unwrap(), "overlaps this node's own subnet fc00:0:0:1::/64");
        assert_eq!(s.refuses(&net("fd00::/64")).unwrap(), "not a node subnet of fc00::/48");
        assert!(s.covers(&net("fc00:0:0:9::/64")) && !s.covers(&net("fd00::/64")));
    }

    #[tokio::test]
    async fn a_pass_adds_what_is_missing_and_removes_what_no_lease_explains() {
        let (u, eth0, _) = host().await;
        // Left from before a restart: a node that has since gone.
        u.host.add_route(&via("10.244.9.0/24", "192.168.50.9"), Some(eth0)).await.unwrap();
        let wanted = on(eth0, [via("10.244.2.0/24", "192.168.50.2"), via("10.244.3.0/24", "192.168.50.3")]);
        let done = u.reconcile(&scope(), &wanted, &[eth0], &[]).await.unwrap();
        assert_eq!((done.put, done.removed, done.failed.len()), (2, 1, 0));
        let gw = |s: &str| Some(s.to_string());
        assert_eq!(
            managed(&u).await,
            [("10.244.2.0/24".into(), gw("192.168.50.2")), ("10.244.3.0/24".into(), gw("192.168.50.3"))]
        );
        // The node's own subnet route is not managed, so it stays.
        assert!(u.host.routes().await.unwrap().iter().any(|l| l.route.dst.to_string() == "10.244.1.0/24"));
        let again = u.reconcile(&scope(), &wanted, &[eth0], &[]).await.unwrap();
        assert_eq!((again.put, again.removed), (0, 0), "a converged pass changes nothing");
    }

    #[tokio::test]
    async fn routes_lost_from_the_kernel_come_back_and_changed_ones_are_replaced() {
        let (u, eth0, _) = host().await;
        let routes = [via("10.244.2.0/24", "192.168.50.2"), via("10.244.3.0/24", "192.168.50.3")];
        u.reconcile(&scope(), &on(eth0, routes.clone()), &[eth0], &[]).await.unwrap();
        u.host.del_route(&routes[0], Some(eth0)).await.unwrap();
        let done = u.reconcile(&scope(), &on(eth0, routes.clone()), &[eth0], &[]).await.unwrap();
        assert_eq!((done.put, done.removed), (1, 0));
        let narrower = [Route { mtu: Some(1400), ..via("10.244.2.0/24", "192.168.50.2") }, routes[1].clone()];
        let done = u.reconcile(&scope(), &on(eth0, narrower.clone()), &[eth0], &[]).await.unwrap();
        assert_eq!((done.put, done.removed), (1, 0), "a changed MTU was not applied");
        let moved = [narrower[0].clone(), via("10.244.3.0/24", "192.168.50.7")];
        let done = u.reconcile(&scope(), &on(eth0, moved), &[eth0], &[]).await.unwrap();
        assert_eq!((done.put, done.removed), (1, 0));
        assert_eq!(managed(&u).await[1], ("10.244.3.0/24".into(), Some("192.168.50.7".into())));
    }

    #[tokio::test]
    async fn a_failed_step_does_not_stop_the_others_and_the_next_pass_finishes() {
        let (u, eth0, _) = host().await;
        // Not on eth0's network: the kernel refuses this gateway.
        let wanted = on(eth0, [via("10.244.2.0/24", "172.16.0.2"), via("10.244.3.0/24", "192.168.50.3")]);
        let done = u.reconcile(&scope(), &wanted, &[eth0], &[]).await.unwrap();
        assert_eq!((done.put, done.failed.len()), (1, 1), "{:?}", done.failed);
        assert!(done.failed[0].contains("10.244.2.0/24"), "{:?}", done.failed);
        assert_eq!(managed(&u).await, [("10.244.3.0/24".into(), Some("192.168.50.3".into()))]);
        let fixed = on(eth0, [via("10.244.2.0/24", "192.168.50.2"), via("10.244.3.0/24", "192.168.50.3")]);
        let done = u.reconcile(&scope(), &fixed, &[eth0], &[]).await.unwrap();
        assert_eq!((done.put, done.removed, done.failed.len()), (1, 0, 0));
    }

    #[test]
    fn a_different_metric_is_a_different_route_and_the_old_one_goes() {
        let listed = |metric| Listed {
            route: Route { priority: metric, table: Some(TABLE_MAIN), ..via("10.244.2.0/24", "192.168.50.2") },
            oif: Some(2),
            onlink: false,
        };
        let wanted = on(2, [Route { priority: Some(10), ..via("10.244.2.0/24", "192.168.50.2") }]);
        let p = plan(&scope(), &wanted, &[2], &[listed(None)], &[]);
        assert_eq!((p.put.len(), p.remove, p.put[0].route.priority), (1, vec![listed(None)], Some(10)));
        assert_eq!(plan(&scope(), &wanted, &[2], &[listed(Some(10))], &[]), Plan::default());
        // A route on another link is not the one wanted, and not ours to remove.
        let elsewhere = Listed { oif: Some(3), ..listed(Some(10)) };
        let p = plan(&scope(), &wanted, &[2], std::slice::from_ref(&elsewhere), &[]);
        assert_eq!((p.put.len(), p.remove.len()), (1, 0));
        let other_node = Listed { route: via("10.244.3.0/24", "192.168.50.3"), oif: Some(3), onlink: false };
        assert_eq!(plan(&scope(), &[], &[2], &[other_node], &[]), Plan::default());
    }

    #[tokio::test]
    async fn a_route_moves_between_the_underlay_and_the_vtep_and_onlink_is_applied() {
        let (u, eth0, _) = host().await;
        let vtep = u.host.add_link("wasmcni.1", "vxlan").unwrap();
        u.host.set_up(&vtep, true).await.unwrap();
        let direct = on(eth0, [via("10.244.2.0/24", "192.168.50.2")]);
        let tunnel = [Wanted {
            oif: vtep.index,
            onlink: true,
            ..on(vtep.index, [via("10.244.2.0/24", "10.244.2.0")])[0].clone()
        }];
        let links = [eth0, vtep.index];
        let done = u.reconcile(&scope(), &tunnel, &links, &[]).await.unwrap();
        assert_eq!((done.put, done.failed.len()), (1, 0), "{:?}", done.failed);
        let listed = u.host.routes().await.unwrap();
        let to = listed.iter().find(|l| l.route.dst.to_string() == "10.244.2.0/24").unwrap();
        assert_eq!((to.oif, to.onlink), (Some(vtep.index), true));
        assert_eq!(u.reconcile(&scope(), &tunnel, &links, &[]).await.unwrap().put, 0);
        let done = u.reconcile(&scope(), &direct, &links, &[]).await.unwrap();
        assert_eq!((done.put, done.removed), (1, 0), "the route did not move to the underlay");
        assert_eq!(managed(&u).await, [("10.244.2.0/24".into(), Some("192.168.50.2".into()))]);
        // Withdrawn from the VTEP too when no lease explains it.
        u.reconcile(&scope(), &tunnel, &links, &[]).await.unwrap();
        assert_eq!(u.reconcile(&scope(), &[], &links, &[]).await.unwrap().removed, 1);
        assert!(u.host.routes().await.unwrap().iter().all(|l| l.oif != Some(vtep.index)));
    }

    #[test]
    fn the_route_of_a_peer_the_plugin_failed_on_stays() {
        let route = Route { table: Some(TABLE_MAIN), ..via("10.244.3.0/24", "192.168.50.3") };
        let installed = Listed { route, oif: Some(2), onlink: false };
        let spared: IpNet = "10.244.3.0/24".parse().unwrap();
        assert_eq!(plan(&scope(), &[], &[2], std::slice::from_ref(&installed), &[spared]), Plan::default());
        assert_eq!(plan(&scope(), &[], &[2], std::slice::from_ref(&installed), &[]).remove, [installed]);
    }
}
