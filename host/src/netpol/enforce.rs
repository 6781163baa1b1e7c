//! Enforcement: the rules of every pod this node serves, computed from the
//! records of their ADDs (namespace and name from `K8S_POD_NAMESPACE` and
//! `K8S_POD_NAME`, addresses from the result, the inputs from the config's
//! `networkPolicy`) and applied as the node's whole filter. ADD runs it
//! before answering, so a pod is never reachable against its policy; DEL,
//! GC and the daemon's watcher run it again.
//!
//! One pass at a time per node: `<state_dir>/netpol.lock` is held from
//! reading the records to applying, so a pass that read fewer pods never
//! lands after one that read more.

use super::source::{Configured, Objects, Source};
use crate::attachments::{self, Recorded};
use crate::cni::env::parse_args;
use crate::cni::error::{CniError, Code};
use crate::config::Limits;
use crate::runner::{Runner, Target};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use wasmcni_caps::v1::netpol::{Pod, PodRules};
use wasmcni_cni::netconf::NetworkPolicy;
use wasmcni_engine::Role;
use wasmcni_kernel::flock::{self, Refused};
use wasmcni_kernel::netpol::PodFilter;

/// A pod this node serves, as its ADDs recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub namespace: String,
    pub name: String,
    pub ips: Vec<IpAddr>,
}

/// What one pass computes from, per `networkPolicy` config: its objects,
/// the pods it governs here, and the module (its file and, once loaded,
/// its digest). Equal inputs give equal rules, so the daemon skips a pass
/// whose inputs did not change.
#[derive(Debug, PartialEq, Eq)]
pub struct Input {
    config: NetworkPolicy,
    objects: Objects,
    pods: Vec<Served>,
    module: PathBuf,
    digest: Option<String>,
}

pub type Inputs = Vec<Input>;

/// Computes and applies the node's policy, unless the inputs are those of
/// the last pass this runner applied (`Runner::netpol_applied`): a daemon's
/// ADD and its watcher's next tick never both rebuild the table. Returns
/// whether it applied.
pub async fn enforce(runner: &Arc<Runner>, limits: Limits, deadline: Instant) -> Result<bool, CniError> {
    let unchanged = |inputs: &Inputs| runner.netpol_applied().lock().expect("not poisoned").as_ref() == Some(inputs);
    // With no policed pod, now or at the last pass, there is nothing to do
    // and no need to queue for the lock (an ADD that polices one applies
    // its own pass).
    if unchanged(&Inputs::new()) && served(attachments::recorded(runner.state_dir())).is_empty() {
        return Ok(false);
    }
    let lock_path = runner.state_dir().join("netpol.lock");
    std::fs::create_dir_all(runner.state_dir()).map_err(|e| CniError::io(format!("creating the state dir: {e}")))?;
    let _turn = tokio::task::spawn_blocking(move || flock::exclusive(&lock_path, deadline))
        .await
        .map_err(|e| CniError::io(e.to_string()))?
        .map_err(|r| match r {
            Refused::Busy(waited) => CniError::new(
                Code::TryAgainLater,
                format!("another network policy update held the node for {} ms; try again later", waited.as_millis()),
            ),
            Refused::Io(e) => CniError::io(format!("network policy lock: {e}")),
        })?;
    let started = Instant::now();
    let mut inputs = Inputs::new();
    for (config, pods) in served(attachments::recorded(runner.state_dir())) {
        let objects = tokio::time::timeout_at(deadline.into(), Configured::of(&config).snapshot())
            .await
            .map_err(|_| CniError::new(Code::TryAgainLater, "network policy inputs: no answer before the deadline"))?
            .map_err(|e| CniError::new(Code::TryAgainLater, format!("network policy inputs: {e:#}")))?;
        let module = runner.module_dir().locate(&config.module)?;
        let digest = runner.served(&module).map(|m| m.sha256.clone());
        inputs.push(Input { config, objects, pods, module, digest });
    }
    if unchanged(&inputs) {
        return Ok(false);
    }
    let read = started.elapsed();
    let mut filters = Vec::new();
    for Input { objects, pods, module, .. } in &inputs {
        let target = Target { path: module.clone(), sha256: None, limits, role: Some(Role::Netpol) };
        let (local, remote) = split(objects, pods);
        let (policies, namespaces) = (&objects.policies, &objects.namespaces);
        let rules = runner.network_policy(&target, policies, namespaces, &local, &remote, Some(deadline)).await?;
        filters.extend(self::filters(rules, &local));
    }
    let computed = started.elapsed();
    crate::runner::blocking(|| runner.netpol().apply(&filters)).map_err(CniError::from)?;
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 100_000.0).round() / 100.0;
    tracing::info!(
        pods = filters.len(),
        inputs_ms = ms(read),
        module_ms = ms(computed - read),
        kernel_ms = ms(started.elapsed() - computed),
        "network policy applied"
    );
    *runner.netpol_applied().lock().expect("not poisoned") = Some(inputs);
    Ok(true)
}

/// The pods the records name, by the `networkPolicy` that governs them.
/// Attachments without one, or without a pod's namespace and name in
/// their CNI_ARGS, are not subject to policy.
pub fn served(records: Vec<Recorded>) -> BTreeMap<NetworkPolicy, Vec<Served>> {
    let mut by_config: BTreeMap<NetworkPolicy, BTreeMap<(String, String), BTreeSet<IpAddr>>> = BTreeMap::new();
    for r in records {
        let Some(Ok(config)) = r.config.get("networkPolicy").map(|p| serde_json::from_value(p.clone())) else {
            continue;
        };
        let args = parse_args(&r.args).unwrap_or_default();
        let arg = |k: &str| args.iter().find(|(key, v)| key == k && !v.is_empty()).map(|(_, v)| v.clone());
        let (Some(namespace), Some(name)) = (arg("K8S_POD_NAMESPACE"), arg("K8S_POD_NAME")) else { continue };
        let ips = r.result.iter().flat_map(|res| res.ips.iter().map(|ip| ip.address.addr()));
        // A pod with two interfaces on policed networks is one pod with both addresses.
        by_config.entry(config).or_default().entry((namespace, name)).or_default().extend(ips);
    }
    let pods = |m: BTreeMap<(String, String), BTreeSet<IpAddr>>| {
        m.into_iter().map(|((namespace, name), ips)| Served { namespace, name, ips: ips.into_iter().collect() })
    };
    by_config.into_iter().map(|(c, m)| (c, pods(m).collect())).collect()
}

/// The module's local pods (labels from the source's Pod objects, addresses
/// from this node's records) and remote ones (every other pod the source
/// lists).
pub fn split(objects: &Objects, served: &[Served]) -> (Vec<Pod>, Vec<Pod>) {
    let is_served = |p: &Pod| served.iter().any(|s| s.namespace == p.namespace && s.name == p.name);
    let local = served.iter().map(|s| {
        let listed = objects.pods.iter().find(|p| p.namespace == s.namespace && p.name == s.name);
        Pod {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            labels: listed.map(|p| p.labels.clone()).unwrap_or_default(),
            ips: s.ips.clone(),
        }
    });
    let remote = objects.pods.iter().filter(|p| !is_served(p)).cloned();
    (local.collect(), remote.collect())
}

/// The module's rules as filters on the local pods' addresses; rules for a
/// pod that is not local are ignored.
pub fn filters(rules: Vec<PodRules>, local: &[Pod]) -> Vec<PodFilter> {
    let addrs =
        |r: &PodRules| local.iter().find(|p| p.namespace == r.namespace && p.name == r.name).map(|p| p.ips.clone());
    rules
        .into_iter()
        .filter_map(|r| {
            let addrs = addrs(&r)?;
            Some(PodFilter {
                name: format!("{}.{}", r.namespace, r.name),
                addrs,
                ingress: r.ingress_isolated.then_some(r.ingress),
                egress: r.egress_isolated.then_some(r.egress),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
