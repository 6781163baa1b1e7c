//! Leaving the machine as it was, also on Ctrl-C or SIGTERM: every netns and
//! daemon the program makes is registered here, and a watcher thread removes
//! them (and the scratch dir) when a signal arrives. A panic unwinds through
//! the owners' Drop instead.

use std::collections::BTreeSet;
use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use wasmcni_e2e::Netns;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static NETNS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static PIDS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
static SCRATCH: OnceLock<(PathBuf, bool)> = OnceLock::new();

extern "C" fn on_signal(_: nix::libc::c_int) {
    // Only an atomic store: all a signal handler may safely do.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs the SIGINT/SIGTERM handling; `scratch` is removed on a signal
/// unless `keep`.
pub fn install(scratch: PathBuf, keep: bool) {
    SCRATCH.set((scratch, keep)).expect("installed once");
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(sig, &action) }.expect("signal handler");
    }
    std::thread::spawn(|| {
        while !INTERRUPTED.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("\ninterrupted: removing the namespaces and daemons of this run");
        for pid in PIDS.lock().unwrap().iter() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), nix::sys::signal::SIGKILL);
        }
        for name in NETNS.lock().unwrap().iter() {
            let _ = Command::new("ip").args(["netns", "del", name]).stderr(Stdio::null()).status();
        }
        if let Some((dir, keep)) = SCRATCH.get() {
            if *keep {
                eprintln!("kept {}", dir.display());
            } else {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        std::process::exit(130);
    });
}

/// A registered network namespace, removed when dropped.
pub struct Ns(Netns);

impl Ns {
    pub fn new(tag: &str) -> Ns {
        let ns = Netns::new(tag);
        NETNS.lock().unwrap().insert(ns.name.clone());
        Ns(ns)
    }
}

impl Deref for Ns {
    type Target = Netns;
    fn deref(&self) -> &Netns {
        &self.0
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        NETNS.lock().unwrap().remove(&self.0.name);
    }
}

/// Registers a process to kill on a signal, for as long as the guard lives.
pub struct Tracked(u32);

impl Tracked {
    pub fn new(pid: u32) -> Tracked {
        PIDS.lock().unwrap().insert(pid);
        Tracked(pid)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        PIDS.lock().unwrap().remove(&self.0);
    }
}
