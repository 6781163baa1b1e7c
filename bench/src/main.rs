//! Times wasmcni against the reference CNI plugins, side by side in one run:
//! the reference bridge + host-local, wasmcni one-shot (bridge + host-local
//! Wasm modules, one process per call), wasmcni through its daemon (the shim
//! forwarding to warm modules), and the kernel floor (the same netlink work
//! as iproute2 batches). Calls alternate between implementations so all see
//! the same machine. Then a churn of ADD+DEL cycles with 4 in parallel, the
//! daemon's memory, the IPAM policy in Rust, Python and JavaScript, how
//! fast cluster mode's routes follow node leases, and network policy's
//! costs (an ADD's share, file change to kernel, 500 pods and 100 policies). Run as root: `scripts/bench.sh`.
//!
//! The process joins a throwaway "node" netns and execs the plugins
//! directly, so no wrapper (ip netns exec) is timed.

mod convergence;
mod floor;
mod languages;
mod netpol;
mod throughput;

use clap::Parser;
use serde_json::json;
use std::time::{Duration, Instant};
use wasmcni_bench::exec::{self, Plugin, bin_dir};
use wasmcni_bench::{daemon, percentile};
use wasmcni_e2e::{Netns, REFERENCE_DIR, unique};

#[derive(Parser)]
struct Args {
    /// Containers per implementation in the latency runs.
    #[arg(long, default_value_t = 50)]
    containers: usize,
    /// VERSION calls per implementation.
    #[arg(long, default_value_t = 100)]
    version_calls: usize,
    /// ADD+DEL cycles per implementation in the churn run.
    #[arg(long, default_value_t = 1000)]
    churn: usize,
    /// Parallel workers in the churn run.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// ADD+DEL rounds per language in the IPAM-by-language run.
    #[arg(long, default_value_t = 30)]
    language_rounds: usize,
    /// Node leases added and removed in the cluster convergence run.
    #[arg(long, default_value_t = 20)]
    joins: usize,
    /// Pods on the node in the network policy run's large case.
    #[arg(long, default_value_t = 500)]
    netpol_pods: usize,
    /// NetworkPolicy objects in the network policy run's large case.
    #[arg(long, default_value_t = 100)]
    netpol_policies: usize,
    /// ADDs per config in the network policy run, and policy file changes timed.
    #[arg(long, default_value_t = 20)]
    netpol_rounds: usize,
    /// The sections to run: latency (with churn and memory), languages,
    /// convergence, netpol, throughput.
    #[arg(long, value_delimiter = ',', default_value = "latency,languages,convergence,netpol,throughput")]
    only: Vec<String>,
    /// Seconds per iperf3 run in the pod-to-pod throughput run.
    #[arg(long, default_value_t = 3)]
    throughput_secs: u32,
}

struct Series {
    label: &'static str,
    samples: Vec<Duration>,
}

fn print_op(op: &str, series: &mut [Series]) {
    for s in series.iter_mut() {
        s.samples.sort();
    }
    let ref50 = percentile(&series[0].samples, 0.5);
    let ref95 = percentile(&series[0].samples, 0.95);
    for s in series.iter() {
        let (p50, p95) = (percentile(&s.samples, 0.5), percentile(&s.samples, 0.95));
        println!("{op:<8} {:<10} {p50:>9.2} {p95:>9.2} {:>9.2}x {:>9.2}x", s.label, p50 / ref50, p95 / ref95);
    }
}

/// One ADD+DEL cycle of an implementation, timed per operation.
trait Cycle: Sync {
    fn add(&self, worker: usize, n: usize, ns: &Netns) -> Duration;
    fn del(&self, worker: usize, n: usize, ns: &Netns) -> Duration;
}

impl Cycle for Plugin {
    fn add(&self, w: usize, n: usize, ns: &Netns) -> Duration {
        self.exec("ADD", &format!("churn-{w}-{n}"), &ns.path())
    }
    fn del(&self, w: usize, n: usize, ns: &Netns) -> Duration {
        self.exec("DEL", &format!("churn-{w}-{n}"), &ns.path())
    }
}

impl Cycle for floor::Floor {
    fn add(&self, w: usize, n: usize, ns: &Netns) -> Duration {
        floor::Floor::add(self, w * 10_000 + n % 10_000, ns)
    }
    fn del(&self, _w: usize, _n: usize, ns: &Netns) -> Duration {
        floor::Floor::del(self, ns)
    }
}

/// Runs `cycles` ADD+DEL cycles over `parallel` workers: cycles per second,
/// and the ADD and DEL p50 under that load.
fn churn(imp: &dyn Cycle, cycles: usize, parallel: usize) -> (f64, f64, f64) {
    let netns: Vec<Netns> = (0..parallel).map(|_| Netns::new("wcbk")).collect();
    let start = Instant::now();
    let (mut adds, mut dels): (Vec<Duration>, Vec<Duration>) = std::thread::scope(|s| {
        let workers: Vec<_> = netns
            .iter()
            .enumerate()
            .map(|(w, ns)| {
                let share = cycles / parallel + usize::from(w < cycles % parallel);
                s.spawn(move || (0..share).map(|n| (imp.add(w, n, ns), imp.del(w, n, ns))).collect::<Vec<_>>())
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).unzip()
    });
    let rate = cycles as f64 / start.elapsed().as_secs_f64();
    adds.sort();
    dels.sort();
    (rate, percentile(&adds, 0.5), percentile(&dels, 0.5))
}

fn main() {
    let args = Args::parse();
    let node = Netns::new("wcbench");
    node.must(&["ip", "link", "set", "lo", "up"]);
    let scratch = std::env::temp_dir().join(unique("wcni-bench-"));
    std::fs::create_dir_all(&scratch).unwrap();
    exec::install(&scratch);
    wasmcni_bench::enter(&node);

    let runs = |section: &str| args.only.iter().any(|s| s == section);
    if runs("latency") {
        latency(&args, &scratch);
    }
    if runs("languages") {
        languages::run(&scratch, args.language_rounds);
    }
    if runs("convergence") {
        convergence::run(args.joins);
    }
    if runs("netpol") {
        netpol::run(args.netpol_pods, args.netpol_policies, args.netpol_rounds, args.netpol_rounds);
    }
    if runs("throughput") {
        throughput::run(args.throughput_secs);
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Latency per call against the reference, then the churn and the daemon's memory.
fn latency(args: &Args, scratch: &std::path::Path) {
    let conf = |bridge: &str, ipam: &str, subnet: &str| {
        json!({
            "cniVersion": "1.0.0", "name": unique("bn"), "type": "bridge", "bridge": bridge, "isGateway": true,
            "ipam": {"type": ipam, "subnet": subnet, "dataDir": scratch.join("leases").display().to_string()}
        })
    };
    let daemon = daemon::BenchDaemon::start(scratch);
    let shim_env = vec![("WASMCNI_DAEMON_SOCKET".to_string(), daemon.socket.display().to_string())];
    let wasm_bridge = bin_dir().join("wasm-bridge").display().to_string();
    let plugins = [
        (
            "reference",
            Plugin {
                bin: format!("{REFERENCE_DIR}/bridge"),
                conf: conf("wcbref", "host-local", "10.60.0.0/16"),
                env: vec![],
            },
        ),
        (
            "one-shot",
            Plugin { bin: wasm_bridge.clone(), conf: conf("wcbone", "wasm-host-local", "10.61.0.0/16"), env: vec![] },
        ),
        ("daemon", Plugin { bin: wasm_bridge, conf: conf("wcbdmn", "wasm-host-local", "10.62.0.0/16"), env: shim_env }),
    ];
    let floor = floor::Floor::new();

    // Warm up: the first calls create the bridges and fill the caches.
    let warm = Netns::new("wcbw");
    for (_, p) in &plugins {
        p.exec("ADD", "warm", &warm.path());
        p.exec("DEL", "warm", &warm.path());
    }

    let containers: Vec<Vec<Netns>> =
        (0..args.containers).map(|_| (0..=plugins.len()).map(|_| Netns::new("wcbc")).collect()).collect();
    let series = |with_floor: bool| {
        let mut v: Vec<Series> = plugins.iter().map(|(l, _)| Series { label: l, samples: Vec::new() }).collect();
        if with_floor {
            v.push(Series { label: "floor", samples: Vec::new() });
        }
        v
    };
    let (mut adds, mut dels, mut versions) = (series(true), series(true), series(false));
    for (i, cs) in containers.iter().enumerate() {
        for (k, (label, p)) in plugins.iter().enumerate() {
            adds[k].samples.push(p.exec("ADD", &format!("bench-{label}-{i}"), &cs[k].path()));
        }
        adds[plugins.len()].samples.push(floor.add(i, &cs[plugins.len()]));
    }
    // The kernel finishes a link deletion after the deleting call (the
    // daemon answers before that, see caps::netlink::link): let it settle
    // so that no implementation's DEL waits for another's.
    let settle = || std::thread::sleep(Duration::from_millis(50));
    for (i, cs) in containers.iter().enumerate() {
        for (k, (label, p)) in plugins.iter().enumerate() {
            dels[k].samples.push(p.exec("DEL", &format!("bench-{label}-{i}"), &cs[k].path()));
            settle();
        }
        dels[plugins.len()].samples.push(floor.del(&cs[plugins.len()]));
        settle();
    }
    for _ in 0..args.version_calls {
        for (k, (_, p)) in plugins.iter().enumerate() {
            versions[k].samples.push(p.exec("VERSION", "", ""));
        }
    }
    drop(containers);

    println!(
        "{} containers per implementation; reference = Debian containernetworking-plugins bridge + host-local;\n\
         one-shot = wasmcni bridge + host-local modules, one process per call; daemon = the same through the shim;\n\
         floor = the same netlink work as two iproute2 batches. Times in ms; ratios against the reference.\n",
        args.containers
    );
    println!("{:<8} {:<10} {:>9} {:>9} {:>10} {:>10}", "op", "impl", "p50", "p95", "p50 ratio", "p95 ratio");
    print_op("ADD", &mut adds);
    print_op("DEL", &mut dels);
    print_op("VERSION", &mut versions);
    let floor50 = percentile(&adds[plugins.len()].samples, 0.5);
    let daemon50 = percentile(&adds[2].samples, 0.5);
    println!("\ndaemon ADD p50 - floor ADD p50 = {:.2} ms", daemon50 - floor50);

    let rss_loaded = daemon.rss_mib();
    println!("\nchurn: {} ADD+DEL cycles, {} in parallel", args.churn, args.parallel);
    println!("{:<10} {:>10} {:>8} {:>12} {:>12}", "impl", "cycles/s", "ratio", "ADD p50 ms", "DEL p50 ms");
    let mut reference = 0.0;
    let mut imps: Vec<(&str, &dyn Cycle)> = plugins.iter().map(|(l, p)| (*l, p as &dyn Cycle)).collect();
    imps.push(("floor", &floor));
    for (label, imp) in imps {
        let (rate, add50, del50) = churn(imp, args.churn, args.parallel);
        if reference == 0.0 {
            reference = rate;
        }
        println!("{label:<10} {rate:>10.1} {:>7.2}x {add50:>12.2} {del50:>12.2}", rate / reference);
    }
    println!(
        "\ndaemon RSS with five modules loaded: {rss_loaded:.1} MiB at start, {:.1} MiB after the churn",
        daemon.rss_mib()
    );
    drop(daemon);
}
