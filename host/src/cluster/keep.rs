//! The route loop: recomputes what reaches other nodes' pods and reconciles
//! the kernel with it when the node leases change, when the kernel announces
//! a link or route change, and periodically (notices can be dropped).

use super::routes::{self, Applied, Refused, Scope, UnderlayInfo, Wanted};
use super::vtep::{self, EntryPlan};
use super::{Cluster, Mode, NodeLease};
use crate::cni::error::CniError;
use crate::runner::{OverlayPeer, Runner, Target, Underlay, Vtep};
use futures::StreamExt;
use ipnet::IpNet;
use prometheus_client::metrics::gauge::Gauge;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use wasmcni_caps::v1::overlay::Entries;
use wasmcni_kernel::events::Change;
use wasmcni_kernel::link::Link;

/// How often a pass runs with no change announced.
const PERIOD: Duration = Duration::from_secs(10);
/// After a failed pass, the next one comes sooner.
const RETRY: Duration = Duration::from_secs(2);
/// Kernel notices come in bursts (a link going down takes its routes along):
/// one pass after the burst.
const SETTLE: Duration = Duration::from_millis(100);

/// What the loop reports: peers skipped and routes refused in the last pass.
#[derive(Clone, Default)]
pub struct Health {
    pub skipped_peers: Gauge,
    pub refused_routes: Gauge,
}

type Skipped = Vec<(OverlayPeer, CniError)>;

/// What `call` computes for `peers`; a peer the plugin fails on is skipped
/// (and returned with the error), so one bad lease does not cost every
/// other node its routes. When the plugin fails on every peer, the pass fails.
async fn compute<T: Default, F: Future<Output = Result<T, CniError>>>(
    local: &OverlayPeer,
    peers: &[OverlayPeer],
    call: impl Fn(Vec<OverlayPeer>) -> F,
    merge: impl Fn(&mut T, T),
) -> Result<(T, Skipped), CniError> {
    let whole = match call(peers.to_vec()).await {
        Ok(all) => return Ok((all, Vec::new())),
        Err(e) => e,
    };
    let others: Vec<&OverlayPeer> = peers.iter().filter(|p| p.ip != local.ip).collect();
    let (mut all, mut skipped) = (T::default(), Vec::new());
    for peer in others.iter().copied() {
        match call(vec![*peer]).await {
            Ok(some) => merge(&mut all, some),
            Err(e) => skipped.push((*peer, e)),
        }
    }
    if skipped.len() == others.len() {
        return Err(whole);
    }
    Ok((all, skipped))
}

/// Logs what a pass skipped or refused when it differs from the last pass's,
/// so a standing problem is reported once, not every period.
#[derive(Default)]
struct Reported(Vec<String>);

impl Reported {
    fn update(&mut self, skipped: &Skipped, refused: &[Refused]) {
        let now: Vec<String> = skipped
            .iter()
            .map(|(n, e)| format!("skipping node {} ({}): {}", n.ip, n.subnet, e.msg))
            .chain(refused.iter().map(|r| format!("refusing {}: {}", r.what, r.reason)))
            .collect();
        if now != self.0 {
            now.iter().for_each(|line| tracing::error!("{line}"));
            self.0 = now;
        }
    }
}

/// One address family's view of the cluster: this node and every node
/// with a claim in that family (this one too), as a plugin gets them.
struct Family {
    local: OverlayPeer,
    nodes: Vec<OverlayPeer>,
}

/// The IPv4 family, and the IPv6 one when this node has a claim there.
fn families(local: &NodeLease, nodes: &[NodeLease]) -> Vec<Family> {
    let v4 = |n: &NodeLease| OverlayPeer { ip: n.ip, subnet: IpNet::V4(n.subnet), vtep_mac: n.vtep_mac };
    let v6 = |n: &NodeLease| {
        n.v6.map(|v| OverlayPeer { ip: IpAddr::V6(v.ip), subnet: IpNet::V6(v.subnet), vtep_mac: v.vtep_mac })
    };
    let mut out = vec![Family { local: v4(local), nodes: nodes.iter().map(v4).collect() }];
    if let Some(local) = v6(local) {
        out.push(Family { local, nodes: nodes.iter().filter_map(v6).collect() });
    }
    out
}

/// What one pass works with.
struct Pass<'a> {
    runner: &'a Runner,
    target: &'a Target,
    config: &'a str,
    scope: Scope,
    local: &'a NodeLease,
    underlay: &'a routes::Underlay,
}

/// What one pass found and did.
struct Report {
    skipped: Skipped,
    refused: Vec<Refused>,
    done: Applied,
    watched: Watched,
}

/// What of the kernel's notices matter: those of the links a pass manages
/// (the underlay, the VTEPs), and the neighbour entries of the VTEPs.
#[derive(Debug, Clone, Default)]
struct Watched {
    links: Vec<u32>,
    vteps: Vec<u32>,
}

/// The subnets and underlay addresses of the skipped peers: their entries
/// stay, for their leases, not the plugin, decide when they go.
fn spared(skipped: &Skipped) -> (Vec<IpNet>, Vec<IpAddr>) {
    skipped.iter().map(|(n, _)| (n.subnet, n.ip)).unzip()
}

/// A VTEP's admitted entries and the plan that brings the kernel to them.
struct VtepEntries {
    link: Link,
    plan: EntryPlan,
}

impl Pass<'_> {
    /// Routes alone, through the underlay (host-gw), for each family.
    async fn routes(&self, nodes: &[NodeLease], info: &UnderlayInfo) -> anyhow::Result<Report> {
        let link = Underlay { name: &self.underlay.name, addresses: &info.addresses };
        let (mut wanted, mut skipped) = (Vec::new(), Vec::new());
        for family in families(self.local, nodes) {
            let claim = |n: &OverlayPeer| (n.ip, n.subnet);
            let call = |peers: Vec<OverlayPeer>| async move {
                let peers: Vec<_> = peers.iter().map(claim).collect();
                let config = self.config.to_owned();
                self.runner.node_routes(self.target, config, claim(&family.local), &peers, link).await
            };
            let (routes, some) = compute(&family.local, &family.nodes, call, Vec::extend).await?;
            let dev = &self.underlay.name;
            wanted.extend(routes.into_iter().map(|route| Wanted {
                route,
                oif: info.index,
                dev: dev.clone(),
                onlink: false,
            }));
            skipped.extend(some);
        }
        let (admitted, refused) = routes::admit(&self.scope, wanted);
        let done = self.underlay.reconcile(&self.scope, &admitted, &[info.index], &spared(&skipped).0).await?;
        Ok(Report { skipped, refused, done, watched: Watched { links: vec![info.index], vteps: vec![] } })
    }

    /// Through a VTEP per family (or directly, where the plugin says so):
    /// neighbour and FDB entries are in place before the routes that need
    /// them, and go after them.
    async fn overlay(
        &self,
        specs: [Option<&vtep::Spec>; 2],
        nodes: &[NodeLease],
        info: &UnderlayInfo,
    ) -> anyhow::Result<Report> {
        let (mut wanted, mut skipped, mut refused, mut vteps) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (family, spec) in families(self.local, nodes).into_iter().zip(specs) {
            let Some(spec) = spec else { continue };
            let address = IpNet::from(family.local.subnet.network());
            let link = self.underlay.ensure_vtep(spec, info, family.local.ip, address).await?;
            let vtep = Vtep { name: spec.name.clone(), vni: spec.vni, mac: spec.mac, mtu: link.mtu };
            let underlay = Underlay { name: &self.underlay.name, addresses: &info.addresses };
            let (vtep, local) = (&vtep, &family.local);
            let call = |peers: Vec<OverlayPeer>| async move {
                let config = self.config.to_owned();
                self.runner.node_overlay(self.target, config, local, &peers, underlay, vtep).await
            };
            let merge = |all: &mut Entries, some: Entries| {
                all.routes.extend(some.routes);
                all.neighbors.extend(some.neighbors);
                all.fdb.extend(some.fdb);
            };
            let (entries, some) = compute(local, &family.nodes, call, merge).await?;
            wanted.extend(entries.routes.into_iter().map(|r| match r.via_vtep {
                true => Wanted { route: r.route, oif: link.index, dev: link.name.clone(), onlink: r.onlink },
                false => Wanted { route: r.route, oif: info.index, dev: self.underlay.name.clone(), onlink: r.onlink },
            }));
            let peers: Vec<IpAddr> = family.nodes.iter().map(|n| n.ip).filter(|ip| *ip != local.ip).collect();
            let (neighbors, fdb, odd) = vtep::admit(&self.scope, &peers, entries.neighbors, entries.fdb);
            refused.extend(odd);
            let (subnets, ips) = spared(&some);
            let plan = self.underlay.plan_entries(&link, (&neighbors, &fdb), (&subnets, &ips)).await?;
            skipped.extend(some);
            vteps.push(VtepEntries { link, plan });
        }
        let (admitted, odd) = routes::admit(&self.scope, wanted);
        refused.extend(odd);
        let mut done = Applied::default();
        for v in &vteps {
            done.add(self.underlay.put_entries(&v.link, &v.plan).await);
        }
        let vtep_links: Vec<u32> = vteps.iter().map(|v| v.link.index).collect();
        let links: Vec<u32> = std::iter::once(info.index).chain(vtep_links.iter().copied()).collect();
        done.add(self.underlay.reconcile(&self.scope, &admitted, &links, &spared(&skipped).0).await?);
        for v in &vteps {
            done.add(self.underlay.remove_entries(&v.link, &v.plan).await);
        }
        Ok(Report { skipped, refused, done, watched: Watched { links, vteps: vtep_links } })
    }
}

pub async fn run(
    runner: Arc<Runner>,
    target: Target,
    config: String,
    mut cluster: Cluster,
    underlay: routes::Underlay,
    mode: Mode,
    health: Health,
) {
    let v6 = cluster.network6.zip(cluster.local.v6.map(|v| v.subnet));
    let scope = Scope { network: cluster.network, local: cluster.local.subnet, v6 };
    let mut changes = match wasmcni_kernel::events::changes() {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("kernel change notices unavailable, checking every {PERIOD:?} only: {e}");
            None
        }
    };
    let mut reported = Reported::default();
    // A standing failure is logged once, and so is its end.
    let mut last: Result<(), String> = Ok(());
    // What the last pass managed: none yet, so every notice matters.
    let mut watched: Option<Watched> = None;
    loop {
        let nodes = cluster.nodes.borrow_and_update().clone();
        let pass = Pass {
            runner: &runner,
            target: &target,
            config: &config,
            scope,
            local: &cluster.local,
            underlay: &underlay,
        };
        let outcome = async {
            let info = underlay.info().await?;
            let report = match &mode {
                Mode::Routes => pass.routes(&nodes, &info).await?,
                Mode::Overlay { v4, v6 } => pass.overlay([Some(v4), v6.as_ref()], &nodes, &info).await?,
            };
            health.skipped_peers.set(report.skipped.len() as i64);
            health.refused_routes.set(report.refused.len() as i64);
            reported.update(&report.skipped, &report.refused);
            watched = Some(report.watched);
            match report.done.failed.as_slice() {
                [] => anyhow::Ok(()),
                failed => anyhow::bail!("{}", failed.join("; ")),
            }
        };
        let outcome = outcome.await.map_err(|e| format!("{e:#}"));
        if outcome != last {
            match &outcome {
                Ok(()) => tracing::info!("routes to other nodes are in place"),
                Err(e) => tracing::error!("routes to other nodes: {e}; retrying every {RETRY:?}"),
            }
            last = outcome.clone();
        }
        let wait = if outcome.is_ok() { PERIOD } else { RETRY };
        tokio::select! {
            changed = cluster.nodes.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(wait) => {}
            Some(_) = next_change(&mut changes, |c| relevant(c, &scope, watched.as_ref())) => {
                // The rest of the burst, unless a lease changes first (our own
                // route changes start bursts too: a lease must not wait them out).
                let rest = async { while next_change(&mut changes, |_| true).await.is_some() {} };
                tokio::select! {
                    _ = tokio::time::timeout(SETTLE, rest) => {}
                    changed = cluster.nodes.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}

/// Whether a kernel notice can have changed what a pass would do: a link
/// the pass manages, a route into the cluster network, an entry on the
/// VTEP, or notices lost.
fn relevant(c: &Change, scope: &Scope, watched: Option<&Watched>) -> bool {
    match c {
        Change::Link { index } => watched.is_none_or(|w| w.links.contains(index)),
        Change::Neighbor { index } => watched.is_none_or(|w| w.vteps.contains(index)),
        Change::Route { dst } => scope.covers(dst),
        Change::Overrun => true,
    }
}

/// The next kernel notice `wanted` accepts; pends forever once there are none to be had.
async fn next_change<S: futures::Stream<Item = Change> + Unpin>(
    changes: &mut Option<S>,
    wanted: impl Fn(&Change) -> bool,
) -> Option<Change> {
    while let Some(s) = changes {
        match s.next().await {
            Some(c) if wanted(&c) => return Some(c),
            Some(_) => {}
            None => {
                tracing::warn!("kernel change notices ended, checking every {PERIOD:?} only");
                *changes = None;
            }
        }
    }
    std::future::pending().await
}
