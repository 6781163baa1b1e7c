//! A wasmcni daemon for the benchmark, serving five modules.

use crate::exec::bin_dir;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wasmcni_e2e::{cache_dir, module_dir};

pub struct BenchDaemon {
    child: Child,
    pub socket: PathBuf,
}

impl BenchDaemon {
    /// Starts `wasmcni daemon` in this process's netns with five modules:
    /// the first-party bridge, host-local, loopback and custom-route, and the
    /// lowest-free IPAM example.
    pub fn start(dir: &Path) -> BenchDaemon {
        let modules = dir.join("modules");
        std::fs::create_dir_all(&modules).unwrap();
        let built = module_dir();
        let examples = built.parent().unwrap().join("example-modules");
        for name in ["bridge", "host-local", "loopback", "custom-route"] {
            let file = format!("{name}.wasm");
            std::fs::copy(built.join(&file), modules.join(&file)).unwrap();
        }
        std::fs::copy(examples.join("lowest-free.wasm"), modules.join("lowest-free.wasm")).unwrap();
        let socket = dir.join("wasmcni.sock");
        let child = Command::new(bin_dir().join("wasmcni"))
            .args(["daemon", "--socket"])
            .arg(&socket)
            .arg("--module-dir")
            .arg(&modules)
            .env("WASMCNI_CACHE_DIR", cache_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the daemon");
        let mut daemon = BenchDaemon { child, socket };
        // A cold cache compiles every module first.
        for _ in 0..2400 {
            if daemon.socket.exists() {
                return daemon;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = daemon.child.kill();
        let _ = daemon.child.wait();
        panic!("the daemon did not start");
    }

    /// Resident set size in MiB.
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0.0);
        kib / 1024.0
    }
}

impl Drop for BenchDaemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}
