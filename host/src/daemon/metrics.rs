//! Prometheus metrics: requests by command, plugin and outcome; latency per
//! command; leases in use per network; traps and timeouts per plugin; module
//! swaps accepted and rejected; network policy updates; in cluster mode, the peers and routes the
//! last route pass left out.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub command: String,
    pub plugin: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub command: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NetworkLabels {
    pub network: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SwapLabels {
    pub result: String,
}

type Histograms = Family<CommandLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Histograms,
    pub leases: Family<NetworkLabels, Gauge>,
    pub traps: Family<PluginLabels, Counter>,
    pub timeouts: Family<PluginLabels, Counter>,
    pub swaps: Family<SwapLabels, Counter>,
    /// Network policy passes that changed the node's filter, applied or failed.
    pub netpol_updates: Family<SwapLabels, Counter>,
    pub cluster: crate::cluster::Health,
}

fn latency_buckets() -> Histogram {
    // 0.5 ms to ~4 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wasmcni");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Histograms = Family::new_with_constructor(latency_buckets);
        let leases = Family::<NetworkLabels, Gauge>::default();
        let traps = Family::<PluginLabels, Counter>::default();
        let timeouts = Family::<PluginLabels, Counter>::default();
        let swaps = Family::<SwapLabels, Counter>::default();
        registry.register("requests", "CNI requests served", requests.clone());
        registry.register("request_duration_seconds", "CNI request latency", latency.clone());
        registry.register("leases", "IP leases in use", leases.clone());
        registry.register("plugin_traps", "Plugin calls that trapped (including out of memory)", traps.clone());
        registry.register("plugin_timeouts", "Plugin calls stopped at their deadline", timeouts.clone());
        registry.register("module_swaps", "Module replacements, accepted or rejected", swaps.clone());
        let netpol_updates = Family::<SwapLabels, Counter>::default();
        registry.register(
            "netpol_updates",
            "Network policy updates of the node's filter, applied or failed",
            netpol_updates.clone(),
        );
        let cluster = crate::cluster::Health::default();
        registry.register(
            "cluster_skipped_peers",
            "Nodes the routing plugin failed on in the last route pass",
            cluster.skipped_peers.clone(),
        );
        registry.register(
            "cluster_refused_routes",
            "Routes from the routing plugin refused in the last route pass",
            cluster.refused_routes.clone(),
        );
        Metrics { registry, requests, latency, leases, traps, timeouts, swaps, netpol_updates, cluster }
    }

    pub fn swap(&self, accepted: bool) {
        let result = if accepted { "accepted" } else { "rejected" };
        self.swaps.get_or_create(&SwapLabels { result: result.into() }).inc();
    }

    pub fn netpol_update(&self, applied: bool) {
        let result = if applied { "applied" } else { "failed" };
        self.netpol_updates.get_or_create(&SwapLabels { result: result.into() }).inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}
