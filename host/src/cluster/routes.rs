//! Keeps the routes to other nodes' pods in the daemon's own netns. Each pass
//! compares what the routing plugin wants with what the kernel has, never
//! with what an earlier pass attempted: a route lost to a link flap comes
//! back, a route no current lease explains goes (one left from before a
//! restart too), and a pass that failed halfway is finished by the next.
//!
//! The routes it manages are the main table's routes through the underlay
//! to node subnets of the cluster network other than this node's own. A
//! route the plugin returns outside them is refused and reported, and the
//! rest are still applied: the plugin computes, the host decides. Routes
//! through other links (another tool's, a VPN's) are left alone.

use crate::cni::result::Route;
use anyhow::Result;
use ipnet::{IpNet, Ipv4Net};
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
}

impl Scope {
    /// Why `dst` is not another node's subnet, if it is not.
    fn refuses(&self, dst: &IpNet) -> Option<String> {
        let IpNet::V4(d) = dst else { return Some(format!("not in the cluster network {}", self.network)) };
        if !self.network.contains(d) || d.prefix_len() <= self.network.prefix_len() {
            return Some(format!("not a node subnet of {}", self.network));
        }
        if self.local.contains(d) || d.contains(&self.local) {
            return Some(format!("overlaps this node's own subnet {}", self.local));
        }
        None
    }

    fn manages(&self, l: &Listed, oif: u32) -> bool {
        l.oif == Some(oif) && l.route.table.unwrap_or(TABLE_MAIN) == TABLE_MAIN && self.refuses(&l.route.dst).is_none()
    }
}

/// A route from the plugin that the applier will not install, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub dst: IpNet,
    pub reason: String,
}

/// Splits the plugin's routes into those the applier may install and those
/// it refuses (outside its scope, in another table, a second route to one
/// destination and metric).
pub fn admit(scope: &Scope, routes: Vec<Route>) -> (Vec<Route>, Vec<Refused>) {
    let (mut admitted, mut refused) = (Vec::<Route>::new(), Vec::new());
    for r in routes {
        let reason = match (scope.refuses(&r.dst), r.table) {
            (Some(why), _) => Some(why),
            (None, Some(t)) if t != TABLE_MAIN => Some(format!("in table {t}, not the main table")),
            _ if admitted.iter().any(|a| key(a) == key(&r)) => Some("a second route to it".into()),
            _ => None,
        };
        match reason {
            Some(reason) => refused.push(Refused { dst: r.dst, reason }),
            None => admitted.push(r),
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
    pub put: Vec<Route>,
    /// Managed routes that nothing wanted has the key of.
    pub remove: Vec<Listed>,
}

/// What makes the managed routes in `kernel` exactly `wanted` on link `oif`;
/// routes into `spared` (the subnets of peers the plugin failed on this
/// time) stay as they are.
pub fn plan(scope: &Scope, wanted: &[Route], oif: u32, kernel: &[Listed], spared: &[IpNet]) -> Plan {
    let spared = |l: &&Listed| spared.iter().any(|s| s.contains(&l.route.dst));
    let ours: Vec<&Listed> = kernel.iter().filter(|l| scope.manages(l, oif) && !spared(l)).collect();
    // `ours` holds only routes through `oif`.
    let installed =
        |w: &Route| ours.iter().any(|l| key(&l.route) == key(w) && (l.route.gw, l.route.mtu) == (w.gw, w.mtu));
    Plan {
        put: wanted.iter().filter(|w| !installed(w)).cloned().collect(),
        remove: ours.into_iter().filter(|l| !wanted.iter().any(|w| key(w) == key(&l.route))).cloned().collect(),
    }
}

/// What a pass did; the steps that failed are retried by the next pass.
#[derive(Debug, Default)]
pub struct Applied {
    pub put: usize,
    pub removed: usize,
    pub failed: Vec<String>,
}

/// The underlay link and the kernel routes go through.
pub struct Underlay<K = Kernel> {
    host: K,
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

    /// Brings the kernel's managed routes to `wanted` on link `oif` (sparing
    /// those into `spared`), going on past a step that fails.
    pub async fn reconcile(&self, scope: &Scope, wanted: &[Route], oif: u32, spared: &[IpNet]) -> Result<Applied> {
        let kernel = self.host.routes().await?;
        let plan = plan(scope, wanted, oif, &kernel, spared);
        let mut done = Applied::default();
        for r in &plan.put {
            match self.host.replace_route(r, Some(oif)).await {
                Ok(()) => {
                    done.put += 1;
                    tracing::info!(
                        "route {} via {} dev {}",
                        r.dst,
                        r.gw.map_or("-".into(), |g| g.to_string()),
                        self.name
                    );
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
        Scope { network: "10.244.0.0/16".parse().unwrap(), local: "10.244.1.0/24".parse().unwrap() }
    }

    fn via(dst: &str, gw: &str) -> Route {
        Route { gw: Some(gw.parse().unwrap()), ..Route::to(dst.parse().unwrap()) }
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
            .filter(|l| scope().manages(l, eth0.index))
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
        let (admitted, refused) = admit(&scope(), routes);
        let dsts: Vec<String> = admitted.iter().map(|r| r.dst.to_string()).collect();
        assert_eq!(dsts, ["10.244.2.0/24", "10.244.3.0/24"]);
        let reasons: Vec<(String, &str)> = refused.iter().map(|r| (r.dst.to_string(), r.reason.as_str())).collect();
        assert_eq!(
            reasons,
            [
                ("10.244.1.0/24".into(), "overlaps this node's own subnet 10.244.1.0/24"),
                ("10.0.0.0/8".into(), "not a node subnet of 10.244.0.0/16"),
                ("10.244.0.0/16".into(), "not a node subnet of 10.244.0.0/16"),
                ("10.244.4.0/24".into(), "in table 100, not the main table"),
                ("10.244.2.0/24".into(), "a second route to it"),
            ]
        );
    }

    #[tokio::test]
    async fn a_pass_adds_what_is_missing_and_removes_what_no_lease_explains() {
        let (u, eth0, _) = host().await;
        // Left from before a restart: a node that has since gone.
        u.host.add_route(&via("10.244.9.0/24", "192.168.50.9"), Some(eth0)).await.unwrap();
        let wanted = [via("10.244.2.0/24", "192.168.50.2"), via("10.244.3.0/24", "192.168.50.3")];
        let done = u.reconcile(&scope(), &wanted, eth0, &[]).await.unwrap();
        assert_eq!((done.put, done.removed, done.failed.len()), (2, 1, 0));
        let gw = |s: &str| Some(s.to_string());
        assert_eq!(
            managed(&u).await,
            [("10.244.2.0/24".into(), gw("192.168.50.2")), ("10.244.3.0/24".into(), gw("192.168.50.3"))]
        );
        // The node's own subnet route is not managed, so it stays.
        assert!(u.host.routes().await.unwrap().iter().any(|l| l.route.dst.to_string() == "10.244.1.0/24"));
        let again = u.reconcile(&scope(), &wanted, eth0, &[]).await.unwrap();
        assert_eq!((again.put, again.removed), (0, 0), "a converged pass changes nothing");
    }

    #[tokio::test]
    async fn routes_lost_from_the_kernel_come_back_and_changed_ones_are_replaced() {
        let (u, eth0, _) = host().await;
        let wanted = vec![via("10.244.2.0/24", "192.168.50.2"), via("10.244.3.0/24", "192.168.50.3")];
        u.reconcile(&scope(), &wanted, eth0, &[]).await.unwrap();
        u.host.del_route(&wanted[0], Some(eth0)).await.unwrap();
        let done = u.reconcile(&scope(), &wanted, eth0, &[]).await.unwrap();
        assert_eq!((done.put, done.removed), (1, 0));
        let narrower = [Route { mtu: Some(1400), ..via("10.244.2.0/24", "192.168.50.2") }, wanted[1].clone()];
        let done = u.reconcile(&scope(), &narrower, eth0, &[]).await.unwrap();
        assert_eq!((done.put, done.removed), (1, 0), "a changed MTU was not applied");
        let moved = [narrower[0].clone(), via("10.244.3.0/24", "192.168.50.7")];
        let done = u.reconcile(&scope(), &moved, eth0, &[]).await.unwrap();
        assert_eq!((done.put, done.removed), (1, 0));
        assert_eq!(managed(&u).await[1], ("10.244.3.0/24".into(), Some("192.168.50.7".into())));
    }

    #[tokio::test]
    async fn a_failed_step_does_not_stop_the_others_and_the_next_pass_finishes() {
        let (u, eth0, _) = host().await;
        // Not on eth0's network: the kernel refuses this gateway.
        let wanted = [via("10.244.2.0/24", "172.16.0.2"), via("10.244.3.0/24", "192.168.50.3")];
        let done = u.reconcile(&scope(), &wanted, eth0, &[]).await.unwrap();
        assert_eq!((done.put, done.failed.len()), (1, 1), "{:?}", done.failed);
        assert!(done.failed[0].contains("10.244.2.0/24"), "{:?}", done.failed);
        assert_eq!(managed(&u).await, [("10.244.3.0/24".into(), Some("192.168.50.3".into()))]);
        let fixed = [via("10.244.2.0/24", "192.168.50.2"), via("10.244.3.0/24", "192.168.50.3")];
        let done = u.reconcile(&scope(), &fixed, eth0, &[]).await.unwrap();
        assert_eq!((done.put, done.removed, done.failed.len()), (1, 0, 0));
    }

    #[test]
    fn a_different_metric_is_a_different_route_and_the_old_one_goes() {
        let listed = |metric| Listed {
            route: Route { priority: metric, table: Some(TABLE_MAIN), ..via("10.244.2.0/24", "192.168.50.2") },
            oif: Some(2),
        };
        let wanted = [Route { priority: Some(10), ..via("10.244.2.0/24", "192.168.50.2") }];
        let p = plan(&scope(), &wanted, 2, &[listed(None)], &[]);
        assert_eq!((p.put.len(), p.remove, p.put[0].priority), (1, vec![listed(None)], Some(10)));
        assert_eq!(plan(&scope(), &wanted, 2, &[listed(Some(10))], &[]), Plan::default());
        // A route on another link is not the one wanted, and not ours to remove.
        let elsewhere = Listed { oif: Some(3), ..listed(Some(10)) };
        let p = plan(&scope(), &wanted, 2, std::slice::from_ref(&elsewhere), &[]);
        assert_eq!((p.put.len(), p.remove.len()), (1, 0));
        let other_node = Listed { route: via("10.244.3.0/24", "192.168.50.3"), oif: Some(3) };
        assert_eq!(plan(&scope(), &[], 2, &[other_node], &[]), Plan::default());
    }

    #[test]
    fn the_route_of_a_peer_the_plugin_failed_on_stays() {
        let installed =
            Listed { route: Route { table: Some(TABLE_MAIN), ..via("10.244.3.0/24", "192.168.50.3") }, oif: Some(2) };
        let spared: IpNet = "10.244.3.0/24".parse().unwrap();
        assert_eq!(plan(&scope(), &[], 2, std::slice::from_ref(&installed), &[spared]), Plan::default());
        assert_eq!(plan(&scope(), &[], 2, std::slice::from_ref(&installed), &[]).remove, [installed]);
    }
}
