//! Row 5: calls to a module that loops forever, through the daemon, and
//! what the daemon's other clients see meanwhile: /healthz latency and a
//! normal ADD+DEL, against the same on the idle daemon.

use crate::Args;
use crate::call::{self, End};
use crate::node::{self, Daemon, Node};
use crate::report::{Row, spread};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use wasmcni_bench::exec::{Plugin, bin_dir};

/// One /healthz: its latency, or what went wrong.
fn probe(daemon: &Daemon, timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    match daemon.get("/healthz", timeout) {
        Ok((200, _)) => Ok(start.elapsed()),
        Ok((status, body)) => Err(format!("HTTP {status}: {body}")),
        Err(e) => Err(format!("after {:.1} s: {e}", start.elapsed().as_secs_f64())),
    }
}

fn count_probes(row: &mut Row, when: &str, probes: Vec<Result<Duration, String>>) -> Vec<Duration> {
    let mut ok = Vec::new();
    for p in probes {
        match p {
            Ok(d) => {
                row.tally.success();
                ok.push(d);
            }
            Err(e) => {
                row.tally.calls += 1;
                row.tally.fail(&format!("/healthz {when}"), &e);
            }
        }
    }
    ok
}

/// A timed ADD then DEL of a normal container: (ADD, DEL) latencies.
fn add_del(row: &mut Row, plugin: &Plugin, id: &str, deadline: Duration) -> (Duration, Duration) {
    let c = node::container();
    let add = call::run(plugin, "ADD", id, &c.path(), deadline);
    let del = call::run(plugin, "DEL", id, &c.path(), deadline);
    row.tally.count("normal ADD", &add, true);
    row.tally.count("normal DEL", &del, true);
    (add.took, del.took)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn run(scratch: &Path, args: &Args) -> Row {
    let (loops, timeout) = (args.loops, Duration::from_millis(args.loop_timeout_ms));
    let mut row = Row::new(format!("{loops} looping calls (timeoutMs {}) vs /healthz", args.loop_timeout_ms));
    let node = Node::new(5, scratch);
    let mut daemon = node.daemon(None);
    let normal = node.shim(&daemon, node.conf());
    let hostile = |mode: &str| {
        let conf = json!({
            "cniVersion": "1.1.0", "name": format!("{}-loop", node.network), "type": "wasmcni",
            "plugin": wasmcni_e2e::test_module("hostile"), "mode": mode,
            "limits": {"timeoutMs": args.loop_timeout_ms},
        });
        Plugin { bin: bin_dir().join("wasmcni").display().to_string(), ..node.shim(&daemon, conf) }
    };
    // Past this, a looping call is given up on (and its shim killed).
    let wait = timeout * 3 + Duration::from_secs(10);
    let deadline = Duration::from_secs(args.call_timeout);

    // Idle baseline; the first calls also load the modules.
    let loop_ns = node::container();
    let trap = call::run(&hostile("trap"), "ADD", &node.id("trap", 0), &loop_ns.path(), deadline);
    if trap.end != End::Code(100) {
        row.note(format!("warm-up: hostile \"trap\" ended {} (expected code 100): {}", trap.label(), trap.msg));
    }
    add_del(&mut row, &normal, &node.id("warm", 0), deadline);
    let idle: Vec<(Duration, Duration)> =
        (1..=5).map(|i| add_del(&mut row, &normal, &node.id("idle", i), deadline)).collect();
    let idle_probes: Vec<_> = (0..args.probes)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            probe(&daemon, wait)
        })
        .collect();
    let idle_probes = count_probes(&mut row, "idle", idle_probes);

    let looping = hostile("loop");
    let (loop_calls, probes, busy) = std::thread::scope(|s| {
        let calls: Vec<_> = (0..loops)
            .map(|i| {
                let (looping, id, path) = (&looping, node.id("loop", i), loop_ns.path());
                s.spawn(move || call::run(looping, "ADD", &id, &path, wait))
            })
            .collect();
        std::thread::sleep(Duration::from_secs(1));
        let probes: Vec<_> = (0..args.probes)
            .map(|i| {
                let daemon = &daemon;
                s.spawn(move || {
                    std::thread::sleep(Duration::from_millis(100) * i as u32);
                    probe(daemon, wait)
                })
            })
            .collect();
        let mut busy_row = Row::new("");
        let busy = add_del(&mut busy_row, &normal, &node.id("busy", 0), wait);
        let probes: Vec<_> = probes.into_iter().map(|p| p.join().unwrap()).collect();
        let calls: Vec<_> = calls.into_iter().map(|c| c.join().unwrap()).collect();
        row.tally.merge(busy_row.tally);
        (calls, probes, busy)
    });
    let busy_probes = count_probes(&mut row, "during the loops", probes);

    let mut stopped = Vec::new();
    for c in &loop_calls {
        row.tally.calls += 1;
        match c.end {
            // Stopped at its deadline, give or take scheduling.
            End::Code(100) if c.took <= timeout + Duration::from_secs(5) => {
                row.tally.ok += 1;
                stopped.push(c.took);
            }
            End::Code(100) => row.tally.fail("loop ADD stopped late", &format!("after {:.1} s", c.took.as_secs_f64())),
            _ => row.tally.fail(&format!("loop ADD {}", c.label()), &c.msg),
        }
    }
    let last = loop_calls.iter().map(|c| c.took).max().unwrap_or_default();
    let p50 = |v: Vec<Duration>| {
        let mut v = v;
        v.sort();
        ms(v[v.len() / 2])
    };
    row.note(format!("/healthz idle: {}", spread(&idle_probes)));
    row.note(format!("/healthz during the loops: {}", spread(&busy_probes)));
    row.note(format!(
        "normal ADD / DEL via the daemon: idle p50 {:.1} / {:.1} ms; during the loops {:.1} / {:.1} ms",
        p50(idle.iter().map(|i| i.0).collect()),
        p50(idle.iter().map(|i| i.1).collect()),
        ms(busy.0),
        ms(busy.1)
    ));
    row.note(format!(
        "looping calls: {} stopped with code 100 within timeoutMs + 5 s ({}); all answered {:.1} s after the start",
        stopped.len(),
        spread(&stopped),
        last.as_secs_f64()
    ));
    row.leftovers = node.settled();
    crate::waves::health_after(&mut row, &mut daemon);
    row
}
