//! `wasmcni test MODULE.wasm`: a conformance run of one module against the
//! CNI contract, in throwaway network namespaces, printed as a pass/fail
//! table. A module that exports the handler gets the whole contract
//! (`handler`); a policy, routing, overlay or netpol module the calls the
//! host makes of it (`capless`).

mod capless;
mod handler;
mod lab;
mod report;

use crate::config::ModuleDir;
use crate::runner::{Host, Runner};
use anyhow::{Context, Result, bail};
use handler::{Shape, Subject};
use lab::Lab;
use report::Report;
use serde_json::{Map, Value};
use std::path::PathBuf;
use wasmcni_engine::cache::Cache;
use wasmcni_engine::{Role, new_engine, world};

/// The memory limits (MiB) a run tries, smallest first, for the least a call fits in.
const MEMORY_STEPS_MIB: [u64; 7] = [1, 2, 4, 8, 16, 32, 64];

pub struct Options {
    pub module: PathBuf,
    /// Merged into the module's own config (its `ipam` section for an IPAM).
    pub config: Map<String, Value>,
    /// Test a network plugin chained after the first-party bridge.
    pub chained: bool,
    pub module_dir: PathBuf,
    pub cache_dir: PathBuf,
}

/// Runs the checks for the module's world and prints the table; whether all passed.
pub fn run(opts: Options) -> Result<bool> {
    if !nix::unistd::geteuid().is_root() {
        bail!("a conformance run creates network namespaces: run it as root");
    }
    let module = opts.module.canonicalize().with_context(|| format!("reading {}", opts.module.display()))?;
    // Compiled ahead, as `wasmcni install` does, so calls are timed as deployed.
    let cache = Cache::new(opts.cache_dir.clone());
    let engine = new_engine()?;
    let loaded = cache.load(&engine, &module, None)?;
    let info = world::describe(&engine, &loaded.component);
    let Some(role) = info.world else {
        bail!("{} fits no wasmcni world: its imports are {:?}", module.display(), info.imports);
    };
    println!("{} ({} world, WIT {})", module.display(), role.world(), info.wit_version.as_deref().unwrap_or("?"));
    let lab = Lab::new(&opts.module_dir, &opts.cache_dir)?;
    let mut report = Report::default();
    match role {
        Role::Ipam | Role::Plugin => {
            let shape = match (role, opts.chained) {
                (Role::Ipam, _) => Shape::Ipam,
                (_, true) => Shape::Chained,
                (_, false) => Shape::Plugin,
            };
            let delegates = info.imports.iter().any(|i| i.starts_with("wasmcni:plugin/delegate@"));
            handler::run(&lab, &Subject { module, shape, config: opts.config, delegates }, &mut report)?;
        }
        Role::Policy => capless::policy(&lab, &module, &opts.config, &mut report)?,
        Role::Routing | Role::Overlay | Role::Netpol => {
            let runner =
                Runner::new(Host::OneCall, Vec::new(), lab.dir.join("state"), cache, ModuleDir::new(opts.module_dir))?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                match role {
                    Role::Routing => capless::routing(&runner, &module, &opts.config, &mut report).await,
                    Role::Overlay => capless::overlay(&runner, &module, &opts.config, &mut report).await,
                    _ => capless::netpol(&runner, &module, &mut report).await,
                }
            });
        }
    }
    print!("{}", report.table());
    Ok(report.failures() == 0)
}
