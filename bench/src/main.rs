//! Sends N containers through ADD then DEL with the reference bridge +
//! host-local and with wasmcni's bridge + host-local modules, alternating
//! call by call so both see the same machine, and prints p50/p95 per
//! operation with the ratios. Run as root: `scripts/bench.sh`.
//!
//! The process joins a throwaway "node" netns once and execs the plugins
//! directly, so no wrapper (ip netns exec) is timed.

use clap::Parser;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasmcni_e2e::{Netns, REFERENCE_DIR, bin_dir, cache_dir, module_dir, unique};

#[derive(Parser)]
struct Args {
    /// Containers per implementation.
    #[arg(long, default_value_t = 50)]
    containers: usize,
    /// VERSION calls per implementation.
    #[arg(long, default_value_t = 200)]
    version_calls: usize,
}

/// One implementation under test.
struct Impl {
    label: &'static str,
    bridge_bin: String,
    conf: Value,
}

fn exec(bin: &str, command: &str, id: &str, netns: &str, conf: &Value) -> Duration {
    let path = format!("{}:{REFERENCE_DIR}", bin_dir().display());
    let start = Instant::now();
    let mut child = Command::new(bin)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", path)
        .env("WASMCNI_MODULE_DIR", module_dir())
        .env("WASMCNI_CACHE_DIR", cache_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plugin");
    child.stdin.take().unwrap().write_all(conf.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{bin} {command} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Row {
    op: &'static str,
    samples: Vec<Vec<Duration>>,
}

fn main() {
    let args = Args::parse();
    let node = Netns::new("wcbench");
    node.must(&["ip", "link", "set", "lo", "up"]);
    let data_dir = std::env::temp_dir().join(unique("wcni-bench-"));
    let ns = std::fs::File::open(node.path()).expect("node netns");
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("join the node netns");

    let conf = |bridge: &str, ipam: &str, subnet: &str| {
        json!({
            "cniVersion": "1.0.0", "name": unique("bn"), "type": "bridge", "bridge": bridge, "isGateway": true,
            "ipam": {"type": ipam, "subnet": subnet, "dataDir": data_dir.display().to_string()}
        })
    };
    let impls = [
        Impl {
            label: "reference",
            bridge_bin: format!("{REFERENCE_DIR}/bridge"),
            conf: conf("wcbref", "host-local", "10.60.0.0/16"),
        },
        Impl {
            label: "wasmcni",
            bridge_bin: bin_dir().join("wasm-bridge").display().to_string(),
            conf: conf("wcbwasm", "wasm-host-local", "10.61.0.0/16"),
        },
    ];
    // One container netns per call, per implementation.
    let containers: Vec<[Netns; 2]> = (0..args.containers).map(|_| [Netns::new("wcbc"), Netns::new("wcbc")]).collect();

    // Warm up: first calls create the bridges and fill the module cache.
    let warm = Netns::new("wcbw");
    for im in &impls {
        exec(&im.bridge_bin, "ADD", "warm", &warm.path(), &im.conf);
        exec(&im.bridge_bin, "DEL", "warm", &warm.path(), &im.conf);
    }

    let mut rows = vec![
        Row { op: "ADD", samples: vec![Vec::new(), Vec::new()] },
        Row { op: "DEL", samples: vec![Vec::new(), Vec::new()] },
        Row { op: "VERSION", samples: vec![Vec::new(), Vec::new()] },
    ];
    for (op_index, op) in ["ADD", "DEL"].iter().enumerate() {
        for (i, c) in containers.iter().enumerate() {
            for (k, im) in impls.iter().enumerate() {
                let id = format!("bench-{}-{i}", im.label);
                rows[op_index].samples[k].push(exec(&im.bridge_bin, op, &id, &c[k].path(), &im.conf));
            }
        }
    }
    for _ in 0..args.version_calls {
        for (k, im) in impls.iter().enumerate() {
            rows[2].samples[k].push(exec(&im.bridge_bin, "VERSION", "", "", &json!({"cniVersion": "1.0.0"})));
        }
    }

    println!(
        "{} containers, {} VERSION calls; wasmcni = bridge + host-local Wasm modules, reference = Debian containernetworking-plugins",
        args.containers, args.version_calls
    );
    println!(
        "{:<8} {:>14} {:>14} {:>14} {:>14} {:>10} {:>10}",
        "op", "ref p50 ms", "ref p95 ms", "wasm p50 ms", "wasm p95 ms", "p50 ratio", "p95 ratio"
    );
    for row in &mut rows {
        for s in &mut row.samples {
            s.sort();
        }
        let (r, w) = (&row.samples[0], &row.samples[1]);
        let (r50, r95, w50, w95) = (percentile(r, 0.5), percentile(r, 0.95), percentile(w, 0.5), percentile(w, 0.95));
        println!(
            "{:<8} {:>14.2} {:>14.2} {:>14.2} {:>14.2} {:>9.2}x {:>9.2}x",
            row.op,
            ms(r50),
            ms(r95),
            ms(w50),
            ms(w95),
            ms(w50) / ms(r50),
            ms(w95) / ms(r95)
        );
    }
    drop(containers);
    let _ = std::fs::remove_dir_all(&data_dir);
}
