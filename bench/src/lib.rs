//! What the benchmark (`wasmcni-bench`) and the reliability program
//! (`wasmcni-reliability`) share: wasmcni installed and exec'd as a runtime
//! does, its daemon, and a few helpers.

pub mod daemon;
pub mod exec;
pub mod lines;

use std::time::Duration;
use wasmcni_e2e::Netns;

/// The `p` quantile of sorted samples, in ms.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Moves the calling thread into `ns`; threads and processes it starts from
/// then on are born there, so plugins are exec'd directly (no `ip netns exec`).
pub fn enter(ns: &Netns) {
    let file = std::fs::File::open(ns.path()).expect("open the netns");
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("join the netns");
}
