//! Reliability figures of wasmcni on this machine, as a table: concurrent
//! ADD/DEL one-shot and through a daemon short of fds, ADDs killed at
//! random points (the plugin process, or the shim in front of a busy
//! daemon), and looping modules against the daemon's /healthz. The goal is
//! 0 failures and 0 leftovers in every row; the program measures, reports,
//! and exits 1 when a row misses it, so it can serve as a gate.
//!
//! Each row runs in a "node" netns of its own that plays the host (the
//! program joins it and execs the plugins directly, as the benchmark does),
//! with a netns per container; all are removed on exit, on a panic and on
//! Ctrl-C. Run as root: `scripts/reliability.sh`.

mod call;
mod cleanup;
mod kills;
mod loops;
mod node;
mod report;
mod waves;

use clap::Parser;
use report::Row;
use std::path::PathBuf;
use std::time::Instant;
use wasmcni_bench::exec;
use wasmcni_e2e::unique;

#[derive(Parser)]
pub struct Args {
    /// Containers in the concurrent ADD/DEL rows (1 and 2).
    #[arg(long, default_value_t = 300)]
    concurrency: usize,
    /// RLIMIT_NOFILE of the daemon in row 2, soft and hard.
    #[arg(long, default_value_t = 1024)]
    daemon_nofile: u64,
    /// One-shot ADDs killed (row 3).
    #[arg(long, default_value_t = 100)]
    kill_trials: usize,
    /// Shims killed during an ADD through the daemon (row 4).
    #[arg(long, default_value_t = 30)]
    shim_trials: usize,
    /// Background workers cycling ADD+DEL through the daemon in row 4.
    #[arg(long, default_value_t = 4)]
    shim_load: usize,
    /// Calls to the looping module at once (row 5).
    #[arg(long, default_value_t = 32)]
    loops: usize,
    /// The looping calls' timeoutMs.
    #[arg(long, default_value_t = 15_000)]
    loop_timeout_ms: u64,
    /// /healthz probes, idle and during the loops.
    #[arg(long, default_value_t = 50)]
    probes: usize,
    /// Seconds after which a call is killed and counted as a timeout.
    #[arg(long, default_value_t = 60)]
    call_timeout: u64,
    /// The rows to run.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,5")]
    rows: Vec<usize>,
    /// Seed of the kill delays (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Keep the scratch dir (daemon logs, leases) for a look afterwards.
    #[arg(long)]
    keep: bool,
}

/// Removes the scratch dir when the run ends, also by a panic.
struct Scratch(PathBuf, bool);

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.1 {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn run(args: &Args) -> i32 {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("wasmcni-reliability needs root (network namespaces): run scripts/reliability.sh");
        return 2;
    }
    let hostile = wasmcni_e2e::test_module("hostile");
    if args.rows.contains(&5) && !std::path::Path::new(&hostile).is_file() {
        eprintln!("{hostile} is missing: run scripts/build.sh");
        return 2;
    }
    let scratch = Scratch(std::env::temp_dir().join(unique("wcni-rel-")), args.keep);
    std::fs::create_dir_all(&scratch.0).expect("scratch dir");
    cleanup::install(scratch.0.clone(), args.keep);
    exec::install(&scratch.0);
    call::set_out_dir(scratch.0.join("calls"));
    let seed = args.seed.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        now.as_nanos() as u64 ^ u64::from(std::process::id())
    });
    let mut rng = call::Rng::new(seed);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("$ {}", std::env::args().collect::<Vec<_>>().join(" "));
    println!("wasmcni {} on {cores} cores; seed {seed}", wasmcni_e2e::wasmcni_bin().display());
    let mut rows: Vec<(usize, Row)> = Vec::new();
    let start = Instant::now();
    for &i in &args.rows {
        eprintln!("[{:>5.1} s] row {i}", start.elapsed().as_secs_f64());
        let row = match i {
            1 => waves::one_shot(&scratch.0, args),
            2 => waves::daemon(&scratch.0, args),
            3 => kills::one_shot(&scratch.0, args, &mut rng),
            4 => kills::shim(&scratch.0, args, &mut rng),
            5 => loops::run(&scratch.0, args),
            other => {
                eprintln!("no row {other} (rows are 1 to 5)");
                continue;
            }
        };
        rows.push((i, row));
    }
    eprintln!("[{:>5.1} s] done", start.elapsed().as_secs_f64());
    report::print(&rows);
    let bad: Vec<String> = rows.iter().filter(|(_, r)| r.bad()).map(|(i, _)| i.to_string()).collect();
    println!("\nwall time {:.0} s", start.elapsed().as_secs_f64());
    if bad.is_empty() {
        println!("every row: 0 failures, 0 duplicates, 0 leftovers");
        0
    } else {
        println!("rows missing the goal (failures, duplicates or leftovers): {}", bad.join(", "));
        1
    }
}

fn main() {
    let args = Args::parse();
    let code = run(&args);
    std::process::exit(code);
}
