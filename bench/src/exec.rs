//! Timing one plugin exec, the way a runtime calls it, with wasmcni as an
//! operator deploys it: put in a bin dir by `wasmcni install`.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use wasmcni_e2e::{REFERENCE_DIR, cache_dir, wasmcni_bin};

static INSTALLED: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();

/// Installs wasmcni and the first-party modules under `scratch`.
pub fn install(scratch: &Path) {
    let (bin, modules) = (scratch.join("bin"), scratch.join("installed-modules"));
    let status = Command::new(wasmcni_bin())
        .arg("install")
        .arg("--bin-dir")
        .arg(&bin)
        .arg("--module-dir")
        .arg(&modules)
        .arg("--from")
        .arg(wasmcni_e2e::module_dir())
        .env("WASMCNI_CACHE_DIR", cache_dir())
        .stdout(Stdio::null())
        .status()
        .expect("wasmcni install");
    assert!(status.success(), "wasmcni install failed");
    INSTALLED.set((bin, modules)).expect("installed once");
}

/// The bin dir `install` filled.
pub fn bin_dir() -> &'static Path {
    &INSTALLED.get().expect("install() first").0
}

fn module_dir() -> &'static Path {
    &INSTALLED.get().expect("install() first").1
}

/// How to exec one implementation.
#[derive(Clone)]
pub struct Plugin {
    pub bin: String,
    pub conf: Value,
    /// Extra environment, e.g. the daemon socket for the shim.
    pub env: Vec<(String, String)>,
}

impl Plugin {
    /// The command a runtime would run for `command` on container `id`,
    /// with wasmcni's dirs; stdio is left to the caller.
    pub fn command(&self, command: &str, id: &str, netns: &str) -> Command {
        let path = format!("{}:{REFERENCE_DIR}", bin_dir().display());
        let mut cmd = Command::new(&self.bin);
        cmd.env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", path)
            .env("WASMCNI_MODULE_DIR", module_dir())
            .env("WASMCNI_CACHE_DIR", cache_dir())
            .envs(self.env.iter().cloned());
        cmd
    }

    pub fn exec(&self, command: &str, id: &str, netns: &str) -> Duration {
        let start = Instant::now();
        let mut child = self
            .command(command, id, netns)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn plugin");
        // A plugin that fails before reading stdin closes it: its output says why.
        let _ = child.stdin.take().unwrap().write_all(self.conf.to_string().as_bytes());
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
