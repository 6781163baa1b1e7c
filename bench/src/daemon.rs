//! A wasmcni daemon for the benchmark and the reliability program, serving
//! five modules.

use crate::exec::bin_dir;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wasmcni_e2e::{cache_dir, module_dir};

pub struct BenchDaemon {
    child: Child,
    pub socket: PathBuf,
}

/// How to start the daemon, beyond the defaults the benchmark uses.
#[derive(Default)]
pub struct Options {
    /// RLIMIT_NOFILE of the daemon, soft and hard.
    pub nofile: Option<u64>,
    /// More environment, e.g. WASMCNI_STATE_DIR.
    pub env: Vec<(String, String)>,
    /// Where its log goes (at info level); nowhere when unset.
    pub log: Option<PathBuf>,
}

impl BenchDaemon {
    /// Starts `wasmcni daemon` in this process's netns with five modules:
    /// the first-party bridge, host-local, loopback and custom-route, and the
    /// lowest-free IPAM example.
    pub fn start(dir: &Path) -> BenchDaemon {
        BenchDaemon::start_with(dir, &Options::default())
    }

    pub fn start_with(dir: &Path, opts: &Options) -> BenchDaemon {
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
        // prlimit execs the daemon, so the child's pid is the daemon's.
        let mut cmd = match opts.nofile {
            Some(limit) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={limit}")).arg("--").arg(bin_dir().join("wasmcni"));
                c
            }
            None => Command::new(bin_dir().join("wasmcni")),
        };
        cmd.args(["daemon", "--socket"])
            .arg(&socket)
            .arg("--module-dir")
            .arg(&modules)
            .env("WASMCNI_CACHE_DIR", cache_dir())
            .envs(opts.env.iter().cloned())
            .stdout(Stdio::null());
        match &opts.log {
            Some(log) => cmd.env("WASMCNI_LOG", "info").stderr(std::fs::File::create(log).expect("daemon log")),
            None => cmd.stderr(Stdio::null()),
        };
        let child = cmd.spawn().expect("start the daemon");
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the daemon process has exited.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
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

    /// `GET path` on the socket: (HTTP status, body).
    pub fn get(&self, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
        http_get(&self.socket, path, timeout)
    }
}

/// A GET over a unix socket, HTTP/1.1 by hand so that timing one costs no
/// exec (curl) on top of the daemon's answer.
pub fn http_get(socket: &Path, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: wasmcni\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let status = status.ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:?}")))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

impl Drop for BenchDaemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        // SIGTERM lets calls in flight finish; one that never does (a guest
        // the daemon failed to stop) must not hang the program.
        for _ in 0..100 {
            if self.exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
