//! Rows 1 and 2: N concurrent ADDs, then N concurrent DELs of the same
//! containers, one-shot or through a daemon with a low fd limit.

use crate::Args;
use crate::call::{self, Outcome};
use crate::cleanup::Ns;
use crate::node::Node;
use crate::report::{Row, spread};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wasmcni_bench::exec::Plugin;

/// All calls at once (released by a barrier), each to its end or deadline.
fn wave(plugin: &Plugin, command: &str, ids: &[String], netns: &[Ns], deadline: Duration) -> (Vec<Outcome>, Duration) {
    let barrier = Barrier::new(ids.len() + 1);
    let mut start = Instant::now();
    let outcomes = std::thread::scope(|s| {
        let workers: Vec<_> = ids
            .iter()
            .zip(netns)
            .map(|(id, ns)| {
                let barrier = &barrier;
                std::thread::Builder::new()
                    .stack_size(256 << 10)
                    .spawn_scoped(s, move || {
                        barrier.wait();
                        call::run(plugin, command, id, &ns.path(), deadline)
                    })
                    .expect("thread")
            })
            .collect();
        barrier.wait();
        start = Instant::now();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    (outcomes, start.elapsed())
}

/// "ADD wave 1.2 s (n ok, m code 11): p50 …" of one wave.
fn wave_note(command: &str, outcomes: &[Outcome], wall: Duration) -> String {
    let ok = outcomes.iter().filter(|o| o.ok()).count();
    let refused = outcomes.iter().filter(|o| o.label() == "11").count();
    let times: Vec<Duration> = outcomes.iter().map(|o| o.took).collect();
    format!("{command} wave {:.1} s ({ok} ok, {refused} code 11): {}", wall.as_secs_f64(), spread(&times))
}

/// ADD wave, DEL wave, leftovers; `refusal_ok` when code 11 is allowed.
fn add_del(row: &mut Row, node: &Node, plugin: &Plugin, n: usize, args: &Args, refusal_ok: bool) {
    let containers = node.containers(n);
    let ids: Vec<String> = (0..n).map(|i| node.id("c", i)).collect();
    let deadline = Duration::from_secs(args.call_timeout);
    let (adds, add_wall) = wave(plugin, "ADD", &ids, &containers, deadline);
    let mut owners: HashMap<String, usize> = HashMap::new();
    for o in adds.iter().filter(|o| o.ok()) {
        for ip in o.ips() {
            *owners.entry(ip).or_default() += 1;
        }
    }
    row.dup_ips = Some(owners.values().map(|n| n - 1).sum());
    let (dels, del_wall) = wave(plugin, "DEL", &ids, &containers, deadline);
    for o in &adds {
        row.tally.count("ADD", o, refusal_ok);
    }
    for o in &dels {
        row.tally.count("DEL", o, refusal_ok);
    }
    row.note(wave_note("ADD", &adds, add_wall));
    row.note(wave_note("DEL", &dels, del_wall));
    // Counted while the containers still exist: a veth still there is one DEL left.
    row.leftovers = node.settled();
    drop(containers);
}

pub fn one_shot(scratch: &Path, args: &Args) -> Row {
    let n = args.concurrency;
    let mut row = Row::new(format!("one-shot: {n} concurrent ADD, then DEL"));
    let node = Node::new(1, scratch);
    row.note("a cold network: the first ADDs race to create the bridge and the nft table");
    add_del(&mut row, &node, &node.one_shot(), n, args, false);
    row
}

/// The daemon's open fds, sampled until `stop`: the most seen.
fn fd_peak(pid: u32, stop: &AtomicBool, peak: &AtomicUsize) {
    while !stop.load(Ordering::SeqCst) {
        let n = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
        peak.fetch_max(n, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn daemon(scratch: &Path, args: &Args) -> Row {
    let n = args.concurrency;
    let nofile = args.daemon_nofile;
    let mut row = Row::new(format!("daemon at nofile {nofile}: {n} concurrent ADD, then DEL"));
    let node = Node::new(2, scratch);
    let mut daemon = node.daemon(Some(nofile));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", daemon.pid())).unwrap_or_default();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or_default();
    let (soft, hard) = (line.split_whitespace().nth(3), line.split_whitespace().nth(4));
    row.note(format!(
        "daemon RLIMIT_NOFILE soft {} hard {}; shim with \"fallback\": \"fail\" (a call the daemon does not answer is 11)",
        soft.unwrap_or("?"),
        hard.unwrap_or("?")
    ));
    let plugin = node.shim(&daemon, node.conf());
    let (stop, peak) = (AtomicBool::new(false), AtomicUsize::new(0));
    let pid = daemon.pid();
    std::thread::scope(|s| {
        s.spawn(|| fd_peak(pid, &stop, &peak));
        add_del(&mut row, &node, &plugin, n, args, true);
        stop.store(true, Ordering::SeqCst);
    });
    row.note(format!("daemon open fds: at most {} seen", peak.load(Ordering::SeqCst)));
    health_after(&mut row, &mut daemon);
    row
}

/// Whether the daemon outlived the row and still answers.
pub fn health_after(row: &mut Row, daemon: &mut crate::node::Daemon) {
    if daemon.exited() {
        row.tally.fail("daemon exited", "the daemon process died during the row");
        return;
    }
    match daemon.get("/healthz", Duration::from_secs(5)) {
        Ok((200, _)) => row.note(format!("daemon healthy afterwards, RSS {:.1} MiB", daemon.rss_mib())),
        Ok((status, body)) => row.tally.fail("daemon unhealthy", &format!("/healthz answered {status}: {body}")),
        Err(e) => row.tally.fail("daemon unhealthy", &format!("/healthz: {e}")),
    }
}
