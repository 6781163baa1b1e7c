//! A `wasmcni daemon` run inside a lab's host netns, with a module
//! directory of its own, stopped (SIGTERM, then SIGKILL) when dropped.

use crate::{Lab, cache_dir, module_dir, wasmcni_bin};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub module_dir: PathBuf,
}

impl Daemon {
    /// Starts a daemon serving copies of the first-party modules, watching
    /// them every 200 ms unless `extra` (more arguments, e.g. `--tcp`) says
    /// otherwise.
    pub fn start(lab: &Lab, extra: &[&str]) -> Daemon {
        Daemon::start_with_nofile(lab, extra, None)
    }

    /// As [`Daemon::start`], under an open-file limit (soft = hard = `nofile`)
    /// set by `prlimit`, which execs the daemon (the pid stays the daemon's).
    pub fn start_with_nofile(lab: &Lab, extra: &[&str], nofile: Option<u64>) -> Daemon {
        let root = lab.data_dir.join("daemon");
        let modules = root.join("modules");
        std::fs::create_dir_all(&modules).unwrap();
        for entry in std::fs::read_dir(module_dir()).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, modules.join(path.file_name().unwrap())).unwrap();
        }
        let socket = root.join("wasmcni.sock");
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).args(["--", "ip"]);
                c
            }
            None => Command::new("ip"),
        };
        let child = cmd
            .args(["netns", "exec", &lab.host.name])
            .arg(wasmcni_bin())
            .args(["daemon", "--socket"])
            .arg(&socket)
            .arg("--module-dir")
            .arg(&modules)
            .args(if extra.contains(&"--watch-interval-ms") { &[][..] } else { &["--watch-interval-ms", "200"] })
            .args(extra)
            .env("WASMCNI_CACHE_DIR", cache_dir())
            .env("WASMCNI_STATE_DIR", lab.state_dir())
            .env("WASMCNI_LOG", "info")
            .envs(lab.extra_env.lock().unwrap().iter().cloned())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("daemon.log")).unwrap())
            .spawn()
            .expect("start the daemon");
        let d = Daemon { child, socket, module_dir: modules };
        d.wait_ready();
        d
    }

    fn wait_ready(&self) {
        for _ in 0..200 {
            if self.get("/healthz").is_some_and(|v| v["status"] == "ok") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the daemon did not become ready on {}", self.socket.display());
    }

    /// `curl` over the unix socket: (HTTP status, body).
    pub fn http(&self, method: &str, path: &str, body_file: Option<&std::path::Path>) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--unix-socket"]).arg(&self.socket);
        if let Some(f) = body_file {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"]).arg(format!("@{}", f.display()));
        }
        let out = cmd.arg(format!("http://wasmcni{path}")).output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (status.trim().parse().unwrap_or(0), body.to_owned())
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        let (status, body) = self.http("GET", path, None);
        (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()
    }

    /// The value of a metric line starting with `prefix` (0 when absent).
    pub fn metric(&self, prefix: &str) -> f64 {
        let (_, body) = self.http("GET", "/metrics", None);
        body.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..100 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}
