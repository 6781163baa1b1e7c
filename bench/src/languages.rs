//! The lowest-free IPAM policy written in Rust, Python and JavaScript, side
//! by side: what a cache miss costs (compile), the cached artifact's size,
//! and calls of the module alone, one-shot (load + instantiate + call) and
//! through the daemon (which loads it once), and one-shot as a bridge's IPAM.

use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use wasmcni_bench::daemon::BenchDaemon;
use wasmcni_bench::exec::{Plugin, bin_dir};
use wasmcni_bench::percentile;
use wasmcni_e2e::{Netns, example_module, unique, wasmcni_bin};

const MODULES: [(&str, &str); 3] = [("rust", "lowest-free"), ("python", "ipam-python"), ("javascript", "ipam-js")];

fn p50(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    percentile(&samples, 0.5)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

pub fn run(scratch: &Path, rounds: usize) {
    let daemon = BenchDaemon::start(&scratch.join("languages-daemon"));
    let shim = ("WASMCNI_DAEMON_SOCKET".to_string(), daemon.socket.display().to_string());
    println!("\nIPAM modules by language (the same lowest-free policy), {rounds} ADD+DEL each:");
    println!(
        "{:<11} {:>10} {:>12} {:>10} {:>7} {:>10} {:>7} {:>12} {:>7}",
        "language", "compile s", "artifact MB", "IPAM ms", "ratio", "daemon ms", "ratio", "bridge ms", "ratio"
    );
    let mut rust = (0.0, 0.0, 0.0);
    for (i, (label, module)) in MODULES.iter().enumerate() {
        let path = example_module(module);
        let cache = scratch.join(format!("cache-{label}"));
        let start = Instant::now();
        let out = Command::new(wasmcni_bin())
            .args(["precompile", &path])
            .env("WASMCNI_CACHE_DIR", &cache)
            .output()
            .expect("precompile");
        let compile = start.elapsed().as_secs_f64();
        assert!(out.status.success(), "precompile {path}: {}", String::from_utf8_lossy(&out.stderr));
        let env = vec![("WASMCNI_CACHE_DIR".to_string(), cache.display().to_string())];
        let leases = scratch.join(format!("leases-{label}")).display().to_string();
        let subnet = format!("10.{}.0.0/16", 70 + i);

        let alone = Plugin {
            bin: bin_dir().join("wasmcni").display().to_string(),
            conf: json!({"cniVersion": "1.0.0", "name": unique("bl"), "type": "wasmcni", "plugin": path,
                "ipam": {"subnet": subnet, "dataDir": leases}}),
            env: env.clone(),
        };
        let under_bridge = Plugin {
            bin: bin_dir().join("wasm-bridge").display().to_string(),
            conf: json!({"cniVersion": "1.0.0", "name": unique("bl"), "type": "bridge", "bridge": format!("wcbl{i}"),
                "isGateway": true, "ipam": {"type": "wasmcni", "plugin": path, "subnet": subnet, "dataDir": leases}}),
            env,
        };
        let mut warm = Plugin { conf: alone.conf.clone(), env: alone.env.clone(), bin: alone.bin.clone() };
        warm.conf["name"] = unique("bl").into();
        warm.env.push(shim.clone());
        let (mut ipam_adds, mut warm_adds, mut bridge_adds) = (Vec::new(), Vec::new(), Vec::new());
        for n in 0..rounds {
            let id = format!("lang-{n}");
            ipam_adds.push(alone.exec("ADD", &id, "/nonexistent"));
            alone.exec("DEL", &id, "/nonexistent");
            warm_adds.push(warm.exec("ADD", &id, "/nonexistent"));
            warm.exec("DEL", &id, "/nonexistent");
            let c = Netns::new("wcbl");
            bridge_adds.push(under_bridge.exec("ADD", &id, &c.path()));
            under_bridge.exec("DEL", &id, &c.path());
        }
        let (ipam, warm, bridge) = (p50(ipam_adds), p50(warm_adds), p50(bridge_adds));
        if i == 0 {
            rust = (ipam, warm, bridge);
        }
        println!(
            "{label:<11} {compile:>10.2} {:>12.1} {ipam:>10.2} {:>6.2}x {warm:>10.2} {:>6.2}x {bridge:>12.2} {:>6.2}x",
            dir_bytes(&cache) as f64 / 1e6,
            ipam / rust.0,
            warm / rust.1,
            bridge / rust.2
        );
    }
}
