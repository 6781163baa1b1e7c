//! The route loop: recomputes the routes to other nodes and reconciles the
//! kernel with them when the node leases change, when the kernel announces
//! a link or route change, and periodically (notices can be dropped).

use super::routes::{self, Refused, Scope};
use super::{Cluster, NodeLease};
use crate::cni::error::CniError;
use crate::cni::result::Route;
use crate::runner::{NodeClaim, Runner, Target, Underlay};
use futures::StreamExt;
use ipnet::IpNet;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::time::Duration;
use wasmcni_kernel::events::Change;

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

/// The routes for `peers`; a peer the plugin fails on is skipped (and
/// returned with the error), so one bad lease does not cost every other
/// node its routes. When the plugin fails on every peer, the pass fails.
async fn compute(
    runner: &Runner,
    target: &Target,
    config: &str,
    local: NodeClaim,
    peers: &[NodeClaim],
    link: Underlay<'_>,
) -> Result<(Vec<Route>, Vec<(NodeClaim, CniError)>), CniError> {
    let whole = match runner.node_routes(target, config.to_owned(), local, peers, link).await {
        Ok(routes) => return Ok((routes, Vec::new())),
        Err(e) => e,
    };
    let others: Vec<&NodeClaim> = peers.iter().filter(|p| p.0 != local.0).collect();
    let (mut routes, mut skipped) = (Vec::new(), Vec::new());
    for peer in &others {
        match runner.node_routes(target, config.to_owned(), local, std::slice::from_ref(peer), link).await {
            Ok(r) => routes.extend(r),
            Err(e) => skipped.push((**peer, e)),
        }
    }
    if skipped.len() == others.len() {
        return Err(whole);
    }
    Ok((routes, skipped))
}

/// Logs what a pass skipped or refused when it differs from the last pass's,
/// so a standing problem is reported once, not every period.
#[derive(Default)]
struct Reported(Vec<String>);

impl Reported {
    fn update(&mut self, skipped: &[(NodeClaim, CniError)], refused: &[Refused]) {
        let now: Vec<String> = skipped
            .iter()
            .map(|((ip, subnet), e)| format!("skipping node {ip} ({subnet}): {}", e.msg))
            .chain(refused.iter().map(|r| format!("refusing the route to {}: {}", r.dst, r.reason)))
            .collect();
        if now != self.0 {
            now.iter().for_each(|line| tracing::error!("{line}"));
            self.0 = now;
        }
    }
}

pub async fn run(
    runner: Arc<Runner>,
    target: Target,
    config: String,
    mut cluster: Cluster,
    underlay: routes::Underlay,
    health: Health,
) {
    let claim = |n: &NodeLease| (n.ip, IpNet::V4(n.subnet));
    let scope = Scope { network: cluster.network, local: cluster.local.subnet };
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
    // The underlay's index, as the last pass found it: its link notices matter.
    let mut underlay_index = None;
    loop {
        let nodes = cluster.nodes.borrow_and_update().clone();
        let pass = async {
            let info = underlay.info().await?;
            underlay_index = Some(info.index);
            let peers: Vec<_> = nodes.iter().map(claim).collect();
            let link = Underlay { name: &underlay.name, addresses: &info.addresses };
            let (routes, skipped) = compute(&runner, &target, &config, claim(&cluster.local), &peers, link).await?;
            let (admitted, refused) = routes::admit(&scope, routes);
            health.skipped_peers.set(skipped.len() as i64);
            health.refused_routes.set(refused.len() as i64);
            reported.update(&skipped, &refused);
            // A skipped peer keeps the route it had: its lease, not the plugin, decides when it goes.
            let spared: Vec<IpNet> = skipped.iter().map(|((_, subnet), _)| *subnet).collect();
            let done = underlay.reconcile(&scope, &admitted, info.index, &spared).await?;
            match done.failed.as_slice() {
                [] => anyhow::Ok(()),
                failed => anyhow::bail!("{}", failed.join("; ")),
            }
        };
        let outcome = pass.await.map_err(|e| format!("{e:#}"));
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
            Some(_) = next_change(&mut changes, |c| relevant(c, &scope, underlay_index)) => {
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

/// Whether a kernel notice can have changed what a pass would do: the
/// underlay's link, a route into the cluster network, or notices lost.
fn relevant(c: &Change, scope: &Scope, underlay: Option<u32>) -> bool {
    match c {
        Change::Link { index } => underlay.is_none_or(|u| u == *index),
        Change::Route { dst: IpNet::V4(dst) } => scope.network.contains(dst),
        Change::Route { .. } => false,
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
