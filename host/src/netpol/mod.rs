//! Network policy: NetworkPolicy, Namespace and Pod objects from a source,
//! turned by a `netpol` module into each local pod's typed rules and
//! enforced with nftables (`enforce`). `wasmcni netpol` prints them, so a
//! policy can be read before it is enforced.

pub mod enforce;
pub mod source;

use crate::config::{Limits, ModuleDir};
use crate::runner::{Host, Runner, Target};
use anyhow::{Context, Result};
use source::{Objects, Source};
use std::path::PathBuf;
use wasmcni_caps::v1::netpol::{Pod, PodRules};
use wasmcni_engine::Role;
use wasmcni_engine::cache::Cache;

/// The rules `module` computes for the pods `local` names (`namespace/name`;
/// every pod when empty) from `objects`.
pub async fn rules(runner: &Runner, module: &str, objects: &Objects, local: &[String]) -> Result<Vec<PodRules>> {
    let path = runner.module_dir().locate(module)?;
    let target = Target { path, sha256: None, limits: Limits::default(), role: Some(Role::Netpol) };
    let named = |p: &Pod| local.is_empty() || local.iter().any(|l| *l == format!("{}/{}", p.namespace, p.name));
    let (mine, others): (Vec<Pod>, Vec<Pod>) = objects.pods.iter().cloned().partition(named);
    Ok(runner.network_policy(&target, &objects.policies, &objects.namespaces, &mine, &others, None).await?)
}

/// `wasmcni netpol`: the rules of the manifests in `dir`, as JSON.
pub fn print(cache: Cache, module_dir: PathBuf, module: &str, dir: PathBuf, local: &[String]) -> Result<()> {
    let state = std::env::temp_dir();
    let runner = Runner::new(Host::OneCall, Vec::new(), state, cache, ModuleDir::new(module_dir))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let rules = runtime.block_on(async {
        let objects = source::ManifestDir(dir).snapshot().await?;
        rules(&runner, module, &objects, local).await
    })?;
    println!("{}", serde_json::to_string_pretty(&rules)?);
    Ok(())
}
