//! One plugin call as a runtime makes it, bounded by a deadline, and what
//! it ended as; tallies of many.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use wasmcni_bench::exec::Plugin;

/// Where calls' stdout and stderr go: files, so no pipe needs draining
/// while a call is waited for (or killed).
static OUT_DIR: OnceLock<PathBuf> = OnceLock::new();

pub fn set_out_dir(dir: PathBuf) {
    std::fs::create_dir_all(&dir).expect("output dir");
    OUT_DIR.set(dir).expect("set once");
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Ok,
    /// A CNI error with its code.
    Code(u64),
    /// Non-zero exit without a CNI error on stdout.
    Exit(Option<i32>),
    Signal(i32),
    /// Killed by us at its deadline.
    Timeout,
}

#[derive(Debug)]
pub struct Outcome {
    pub end: End,
    pub stdout: String,
    /// The error's message (or the last stderr line).
    pub msg: String,
    pub took: Duration,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.end == End::Ok
    }

    /// A short name of the ending, the key of tallies.
    pub fn label(&self) -> String {
        match &self.end {
            End::Ok => "ok".into(),
            End::Code(c) => c.to_string(),
            End::Exit(Some(c)) => format!("exit {c}"),
            End::Exit(None) => "exit ?".into(),
            End::Signal(s) => format!("signal {s}"),
            End::Timeout => "timeout".into(),
        }
    }

    /// The container addresses of a successful ADD's result.
    pub fn ips(&self) -> Vec<String> {
        serde_json::from_str::<Value>(&self.stdout).map(|v| wasmcni_e2e::result_ips(&v)).unwrap_or_default()
    }
}

/// Processes waited for, with their deadlines: one watchdog kills the
/// overdue. A process stays listed until it has exited and before it is
/// reaped, so its pid is never one the kernel reused.
struct Watched {
    pid: u32,
    deadline: Instant,
    fired: Arc<AtomicBool>,
}

fn watchlist() -> &'static Mutex<Vec<Watched>> {
    static LIST: OnceLock<Mutex<Vec<Watched>>> = OnceLock::new();
    LIST.get_or_init(|| {
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(Duration::from_millis(50));
                let now = Instant::now();
                for w in watchlist().lock().unwrap().iter().filter(|w| w.deadline <= now) {
                    if !w.fired.swap(true, Ordering::SeqCst) {
                        let pid = nix::unistd::Pid::from_raw(w.pid as i32);
                        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL);
                    }
                }
            }
        });
        Mutex::new(Vec::new())
    })
}

/// A call in flight.
pub struct Running {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    start: Instant,
}

pub fn spawn(plugin: &Plugin, command: &str, id: &str, netns: &str) -> Running {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let dir = OUT_DIR.get().expect("set_out_dir() first");
    let (out, err) = (dir.join(format!("{n}.out")), dir.join(format!("{n}.err")));
    let start = Instant::now();
    let mut child = plugin
        .command(command, id, netns)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("spawn plugin");
    // A call killed early may not read its stdin: that is not our failure.
    let _ = child.stdin.take().expect("piped").write_all(plugin.conf.to_string().as_bytes());
    Running { child, out, err, start }
}

impl Running {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits for the call, killing it at `deadline` after its start.
    pub fn finish(mut self, deadline: Duration) -> Outcome {
        let fired = Arc::new(AtomicBool::new(false));
        let pid = self.child.id();
        watchlist().lock().unwrap().push(Watched { pid, deadline: self.start + deadline, fired: fired.clone() });
        // Wait for the exit without reaping (WNOWAIT): reaped only once off the watchlist.
        use nix::sys::wait::{Id, WaitPidFlag, waitid};
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
        while let Err(nix::errno::Errno::EINTR) = waitid(Id::Pid(nix::unistd::Pid::from_raw(pid as i32)), flags) {}
        let took = self.start.elapsed();
        watchlist().lock().unwrap().retain(|w| w.pid != pid);
        let status = self.child.wait().expect("reap the plugin");
        let stdout = std::fs::read_to_string(&self.out).unwrap_or_default();
        let stderr = std::fs::read_to_string(&self.err).unwrap_or_default();
        let _ = std::fs::remove_file(&self.out);
        let _ = std::fs::remove_file(&self.err);
        let error = serde_json::from_str::<Value>(&stdout).ok().filter(|v| v.get("code").is_some());
        let end = if status.success() {
            End::Ok
        } else if fired.load(Ordering::SeqCst) {
            End::Timeout
        } else if let Some(sig) = status.signal() {
            End::Signal(sig)
        } else if let Some(code) = error.as_ref().and_then(|e| e["code"].as_u64()) {
            End::Code(code)
        } else {
            End::Exit(status.code())
        };
        let msg = match &error {
            Some(e) => e["msg"].as_str().unwrap_or_default().to_owned(),
            None => stderr.lines().last().unwrap_or_default().to_owned(),
        };
        Outcome { end, stdout, msg, took }
    }
}

/// Runs one call to its end, or to `deadline`.
pub fn run(plugin: &Plugin, command: &str, id: &str, netns: &str, deadline: Duration) -> Outcome {
    spawn(plugin, command, id, netns).finish(deadline)
}

/// Calls counted by how they ended.
#[derive(Default)]
pub struct Tally {
    pub calls: usize,
    pub ok: usize,
    /// Code 11 where the design allows it ("try again later", nothing done).
    pub refused: usize,
    /// Failures by label, with the first message seen for each.
    pub failed: BTreeMap<String, (usize, String)>,
}

impl Tally {
    /// Counts an outcome; code 11 is a refusal when `refusal_ok`, else a failure.
    pub fn count(&mut self, what: &str, o: &Outcome, refusal_ok: bool) {
        self.calls += 1;
        match o.end {
            End::Ok => self.ok += 1,
            End::Code(11) if refusal_ok => self.refused += 1,
            _ => self.fail(&format!("{what} {}", o.label()), &o.msg),
        }
    }

    pub fn success(&mut self) {
        self.calls += 1;
        self.ok += 1;
    }

    pub fn fail(&mut self, label: &str, msg: &str) {
        let entry = self.failed.entry(label.to_owned()).or_insert_with(|| (0, msg.to_owned()));
        entry.0 += 1;
    }

    pub fn failures(&self) -> usize {
        self.failed.values().map(|(n, _)| n).sum()
    }

    pub fn merge(&mut self, other: Tally) {
        self.calls += other.calls;
        self.ok += other.ok;
        self.refused += other.refused;
        for (label, (n, msg)) in other.failed {
            self.failed.entry(label).or_insert((0, msg)).0 += n;
        }
    }
}

/// xorshift64*: enough randomness for kill delays, reproducible by seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// Uniform in [0, max].
    pub fn upto(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        max.mul_f64((r >> 11) as f64 / (1u64 << 53) as f64)
    }
}
