//! Rows 3 and 4: an ADD killed at a random point, then the runtime's DEL.
//! One-shot: the plugin process itself is killed (and at the end one GC
//! runs). Through the daemon: the shim is killed while the daemon, busy
//! with other containers, carries on with the call.

use crate::Args;
use crate::call::{self, End, Outcome, Rng, Tally};
use crate::node::{self, Daemon, Node};
use crate::report::{Row, spread};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmcni_bench::exec::Plugin;

fn median(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s.get(s.len() / 2).copied().unwrap_or(Duration::from_millis(50))
}

/// How the killed ADDs ended.
#[derive(Default)]
struct Kills {
    killed: usize,
    finished: usize,
}

/// One trial: ADD, SIGKILL after a delay in [0, `max_delay`], DEL at once.
/// A killed ADD is not a failure; one that failed by itself is.
#[allow(clippy::too_many_arguments)]
fn trial(
    row: &mut Row,
    kills: &mut Kills,
    plugin: &Plugin,
    id: &str,
    netns: &str,
    delay: Duration,
    deadline: Duration,
    refusal_ok: bool,
) {
    let mut add = call::spawn(plugin, "ADD", id, netns);
    std::thread::sleep(delay);
    add.kill();
    let add = add.finish(deadline);
    match add.end {
        End::Signal(9) => kills.killed += 1,
        End::Ok => kills.finished += 1,
        _ => row.tally.count("ADD (not killed)", &add, refusal_ok),
    }
    let del = call::run(plugin, "DEL", id, netns, deadline);
    row.tally.count("DEL", &del, refusal_ok);
}

fn kill_note(row: &mut Row, kills: &Kills, max_delay: Duration) {
    row.note(format!(
        "kill delay uniform in [0, {:.1} ms]: {} ADDs killed, {} had already succeeded",
        max_delay.as_secs_f64() * 1000.0,
        kills.killed,
        kills.finished
    ));
}

pub fn one_shot(scratch: &Path, args: &Args, rng: &mut Rng) -> Row {
    let trials = args.kill_trials;
    let mut row = Row::new(format!("kill -9 in one-shot ADD ({trials}x), DEL; then GC"));
    let node = Node::new(3, scratch);
    let plugin = node.one_shot();
    let deadline = Duration::from_secs(args.call_timeout);
    // The typical ADD time bounds the kill delays; these warm ADDs also
    // create the bridge, so the kills land in ordinary ADDs.
    let mut adds = Vec::new();
    for i in 0..5 {
        let c = node::container();
        let (id, path) = (node.id("w", i), c.path());
        let add = call::run(&plugin, "ADD", &id, &path, deadline);
        row.tally.count("warm-up ADD", &add, false);
        adds.push(add.took);
        row.tally.count("warm-up DEL", &call::run(&plugin, "DEL", &id, &path, deadline), false);
    }
    let max_delay = median(&adds);
    let mut kills = Kills::default();
    for t in 0..trials {
        let c = node::container();
        let delay = rng.upto(max_delay);
        trial(&mut row, &mut kills, &plugin, &node.id("k", t), &c.path(), delay, deadline, false);
    }
    kill_note(&mut row, &kills, max_delay);
    // The container netns are gone: only what the host holds can be left.
    let after_del = node.settled();
    row.note(format!("left after the DELs, before GC: {after_del}"));
    let gc = call::run(&node.gc(), "GC", "", "", deadline);
    row.tally.count("GC", &gc, false);
    row.leftovers = node.settled();
    row
}

/// Sets the flag when dropped, also while unwinding, so that background
/// workers stop and a panicking row does not hang in its scope.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// ADD+DEL cycles of one container after another until `stop`.
fn load(node: &Node, plugin: &Plugin, worker: usize, deadline: Duration, stop: &AtomicBool, out: &Mutex<Background>) {
    let c = node::container();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let id = node.id(&format!("b{worker}x"), n);
        let add = call::run(plugin, "ADD", &id, &c.path(), deadline);
        let del = call::run(plugin, "DEL", &id, &c.path(), deadline);
        out.lock().unwrap().record(add, del);
        n += 1;
    }
}

#[derive(Default)]
struct Background {
    tally: Tally,
    adds: Vec<Duration>,
    cycles: usize,
}

impl Background {
    fn record(&mut self, add: Outcome, del: Outcome) {
        self.tally.count("background ADD", &add, true);
        self.tally.count("background DEL", &del, true);
        self.adds.push(add.took);
        self.cycles += 1;
    }
}

/// The daemon's requests served so far (0 when it does not answer).
fn requests(daemon: &Daemon) -> f64 {
    let body = daemon.get("/metrics", Duration::from_secs(5)).map(|(_, b)| b).unwrap_or_default();
    let lines = body.lines().filter(|l| l.starts_with("wasmcni_requests_total"));
    lines.filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// Waits until the daemon has served nothing new for 2 s (at most 30 s):
/// a call whose shim was killed runs on to its end meanwhile.
fn wait_idle(daemon: &Daemon) -> Duration {
    let start = Instant::now();
    let (mut last, mut since) = (requests(daemon), Instant::now());
    while since.elapsed() < Duration::from_secs(2) && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
        let now = requests(daemon);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    start.elapsed()
}

pub fn shim(scratch: &Path, args: &Args, rng: &mut Rng) -> Row {
    let trials = args.shim_trials;
    let workers = args.shim_load;
    let mut row = Row::new(format!("kill -9 the shim in ADD ({trials}x, {workers} busy), DEL"));
    let node = Node::new(4, scratch);
    let mut daemon = node.daemon(None);
    let plugin = node.shim(&daemon, node.conf());
    let deadline = Duration::from_secs(args.call_timeout);
    for i in 0..2 {
        let c = node::container();
        let (id, path) = (node.id("w", i), c.path());
        row.tally.count("warm-up ADD", &call::run(&plugin, "ADD", &id, &path, deadline), true);
        row.tally.count("warm-up DEL", &call::run(&plugin, "DEL", &id, &path, deadline), true);
    }
    let (stop, background) = (AtomicBool::new(false), Mutex::new(Background::default()));
    let mut kills = Kills::default();
    let mut max_delay = Duration::ZERO;
    // The trials' netns live until the leaks are counted: a veth in one
    // after its DEL is an ADD the daemon finished after that DEL.
    let mut containers = Vec::new();
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        for w in 0..workers {
            let (node, plugin, stop, background) = (&node, &plugin, &stop, &background);
            s.spawn(move || load(node, plugin, w, deadline, stop, background));
        }
        std::thread::sleep(Duration::from_secs(1));
        max_delay = median(&background.lock().unwrap().adds);
        for t in 0..trials {
            let c = node::container();
            let delay = rng.upto(max_delay);
            trial(&mut row, &mut kills, &plugin, &node.id("k", t), &c.path(), delay, deadline, true);
            containers.push(c);
        }
    });
    let bg = background.into_inner().unwrap();
    row.note(format!(
        "background: {} ADD+DEL cycles by {workers} workers; ADD under load {}",
        bg.cycles,
        spread(&bg.adds)
    ));
    row.tally.merge(bg.tally);
    kill_note(&mut row, &kills, max_delay);
    let idle = wait_idle(&daemon);
    row.leftovers = node.settled();
    row.note(format!("daemon idle {:.1} s after the last trial; leaks counted then", idle.as_secs_f64()));
    crate::waves::health_after(&mut row, &mut daemon);
    drop(containers);
    row
}
