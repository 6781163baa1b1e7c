//! Timing one plugin exec, the way a runtime calls it.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasmcni_e2e::{REFERENCE_DIR, bin_dir, cache_dir, module_dir};

/// How to exec one implementation.
#[derive(Clone)]
pub struct Plugin {
    pub bin: String,
    pub conf: Value,
    /// Extra environment, e.g. the daemon socket for the shim.
    pub env: Vec<(String, String)>,
}

impl Plugin {
    pub fn exec(&self, command: &str, id: &str, netns: &str) -> Duration {
        let path = format!("{}:{REFERENCE_DIR}", bin_dir().display());
        let start = Instant::now();
        let mut child = Command::new(&self.bin)
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", path)
            .env("WASMCNI_MODULE_DIR", module_dir())
            .env("WASMCNI_CACHE_DIR", cache_dir())
            .envs(self.env.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn plugin");
        child.stdin.take().unwrap().write_all(self.conf.to_string().as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "{} {command} failed: {}{}",
            self.bin,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }
}
