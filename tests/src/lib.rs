//! Shared fixtures for the end-to-end tests: throwaway network namespaces
//! (one plays the node's host, others the containers), a per-test lease
//! directory, and a runner that execs the real `wasmcni` binary exactly as a
//! container runtime does. Everything is removed on drop, also when a test
//! fails, and nothing outside these namespaces is touched.

pub mod cluster;
pub mod daemon;
pub mod probe;

use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

/// The binary under test (built by scripts/build.sh).
pub fn wasmcni_bin() -> PathBuf {
    std::env::var_os("WASMCNI_BIN").map(PathBuf::from).unwrap_or_else(|| workspace().join("target/dist/wasmcni"))
}

pub fn module_dir() -> PathBuf {
    workspace().join("target/dist/modules")
}

/// A module built only for the tests (e.g. `hostile`), by absolute path.
pub fn test_module(name: &str) -> String {
    workspace().join("target/dist/test-modules").join(format!("{name}.wasm")).display().to_string()
}

/// An example module (e.g. `lowest-free`), by absolute path.
pub fn example_module(name: &str) -> String {
    workspace().join("target/dist/example-modules").join(format!("{name}.wasm")).display().to_string()
}

/// The Debian reference plugins.
pub const REFERENCE_DIR: &str = "/usr/lib/cni";

/// A CNI bin dir holding `wasmcni` and its `wasm-<module>` links, made once.
pub fn bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = workspace().join("target/e2e-bin");
        std::fs::create_dir_all(&dir).expect("bin dir");
        let bin = wasmcni_bin();
        assert!(bin.is_file(), "{} is missing: run scripts/build.sh first", bin.display());
        for name in ["wasmcni", "wasm-bridge", "wasm-host-local", "wasm-loopback", "wasm-custom-route"] {
            let link = dir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&bin, &link).expect("link");
        }
        dir
    })
    .clone()
}

/// Artifacts cache shared by all tests, so each module compiles once.
pub fn cache_dir() -> PathBuf {
    workspace().join("target/e2e-cache")
}

/// A name no other test (or test run) uses, at most 15 bytes.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("{tag}{:05x}{n:02x}", std::process::id() & 0xfffff)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command and returns its stdout, panicking if it fails.
pub fn must(args: &[&str]) -> String {
    let out = run(Command::new(args[0]).args(&args[1..]));
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace that exists for the life of this value.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = unique(tag);
        must(&["ip", "netns", "add", &name]);
        Netns { name }
    }

    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        run(Command::new("ip").args(["netns", "exec", &self.name]).args(args))
    }

    pub fn must(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(out.status.success(), "{args:?} in {} failed: {}", self.name, String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ip -j <args>` inside the namespace, parsed.
    pub fn ip_json(&self, args: &[&str]) -> Value {
        let mut full = vec!["ip", "-j"];
        full.extend_from_slice(args);
        let out = self.must(&full);
        if out.trim().is_empty() { json!([]) } else { serde_json::from_str(&out).expect("ip -j output") }
    }

    /// The global addresses (CIDR) on `dev`; link-local ones are the kernel's.
    pub fn addrs(&self, dev: &str) -> Vec<String> {
        let v = self.ip_json(&["addr", "show", "dev", dev]);
        v[0]["addr_info"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|i| i["scope"] == "global")
                    .map(|i| format!("{}/{}", i["local"].as_str().unwrap(), i["prefixlen"]))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn has_link(&self, dev: &str) -> bool {
        self.exec(&["ip", "link", "show", "dev", dev]).status.success()
    }

    /// Whether `dev` disappears within a few seconds: the kernel destroys a
    /// deleted netns (and the veths it held) asynchronously.
    pub fn link_goes_away(&self, dev: &str) -> bool {
        (0..100).any(|_| {
            let gone = !self.has_link(dev);
            if !gone {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            gone
        })
    }

    pub fn ping(&self, addr: &str) -> bool {
        self.exec(&["ping", "-c", "1", "-W", "2", addr]).status.success()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).stderr(Stdio::null()).status();
    }
}

/// Waits (polling every 200 ms) until `done`, failing the test after `timeout`.
pub fn wait_for(what: &str, timeout: std::time::Duration, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// What one exec of a plugin returned.
#[derive(Debug)]
pub struct CniOut {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CniOut {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    /// The CNI error code of a failed call.
    pub fn code(&self) -> u64 {
        assert!(!self.ok, "call succeeded: {}", self.stdout);
        self.json()["code"].as_u64().unwrap_or_else(|| panic!("no code in {}", self.stdout))
    }

    pub fn expect_ok(&self) -> &Self {
        assert!(self.ok, "call failed: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
}

/// One plugin exec: command, env and config.
pub struct Invoke<'a> {
    pub plugin: &'a str,
    pub command: &'a str,
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    pub args: &'a str,
    pub config: &'a Value,
}

/// One test's node: a host netns, its bridge, network name and lease dir.
pub struct Lab {
    pub host: Netns,
    pub network: String,
    pub bridge: String,
    pub data_dir: PathBuf,
    pub extra_env: Mutex<Vec<(String, String)>>,
}

impl Lab {
    pub fn new() -> Lab {
        let host = Netns::new("wch");
        host.must(&["ip", "link", "set", "lo", "up"]);
        let data_dir = std::env::temp_dir().join(unique("wcni-leases-"));
        Lab { host, network: unique("net"), bridge: unique("wcb"), data_dir, extra_env: Mutex::new(Vec::new()) }
    }

    pub fn container(&self) -> Netns {
        let c = Netns::new("wcc");
        c.must(&["ip", "link", "set", "lo", "up"]);
        c
    }

    /// Leases on disk for this lab's network (file names that are IPs).
    pub fn leases(&self) -> Vec<String> {
        let dir = self.data_dir.join(&self.network);
        let mut out: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Per-attachment state (masquerade records, the daemon's networks), removed with the lab.
    pub fn state_dir(&self) -> PathBuf {
        self.data_dir.join("state")
    }

    pub fn lease_content(&self, ip: &str) -> String {
        std::fs::read_to_string(self.data_dir.join(&self.network).join(ip)).unwrap_or_default()
    }

    /// A bridge config with (by default) our host-local IPAM on `subnet`.
    pub fn bridge_conf(&self, version: &str, ipam: Value) -> Value {
        let mut ipam = ipam;
        if ipam.get("type").is_none() {
            ipam["type"] = "wasm-host-local".into();
        }
        ipam["dataDir"] = self.data_dir.display().to_string().into();
        json!({
            "cniVersion": version,
            "name": self.network,
            "type": "wasm-bridge",
            "bridge": self.bridge,
            "isGateway": true,
            "ipam": ipam,
        })
    }

    /// Execs `plugin` (a name in the test bin dir or the reference dir)
    /// inside the host netns, as a runtime would.
    pub fn invoke(&self, i: &Invoke) -> CniOut {
        let out = self.spawn(i).wait_with_output().expect("plugin output");
        CniOut {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts the exec of [`Lab::invoke`] and returns the running plugin
    /// (`ip netns exec` execs it, so its pid is the plugin's) with its config
    /// written to stdin.
    pub fn spawn(&self, i: &Invoke) -> std::process::Child {
        let path = format!("{}:{REFERENCE_DIR}", bin_dir().display());
        let exe = if Path::new(i.plugin).is_absolute() { PathBuf::from(i.plugin) } else { bin_dir().join(i.plugin) };
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.host.name])
            .arg(&exe)
            .env("CNI_COMMAND", i.command)
            .env("CNI_CONTAINERID", i.container_id)
            .env("CNI_NETNS", i.netns)
            .env("CNI_IFNAME", i.ifname)
            .env("CNI_ARGS", i.args)
            .env("CNI_PATH", path)
            .env("WASMCNI_MODULE_DIR", module_dir())
            .env("WASMCNI_CACHE_DIR", cache_dir())
            .env("WASMCNI_STATE_DIR", self.state_dir())
            .envs(self.extra_env.lock().unwrap().iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn plugin");
        child.stdin.take().unwrap().write_all(i.config.to_string().as_bytes()).unwrap();
        child
    }

    /// [`Lab::invoke`], killing the plugin and panicking if it has not
    /// returned within `limit` (a call that used to hang fails the test
    /// instead of hanging it).
    pub fn invoke_within(&self, i: &Invoke, limit: std::time::Duration) -> CniOut {
        use std::io::Read;
        let start = std::time::Instant::now();
        let mut child = self.spawn(i);
        let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = so.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = se.read_to_string(&mut s);
            s
        });
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the plugin") {
                break status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} {} did not return within {limit:?}", i.plugin, i.command);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        CniOut { ok: status.success(), stdout: out.join().unwrap(), stderr: err.join().unwrap() }
    }

    /// Puts `dir` first in the `CNI_PATH` of later calls (before the test
    /// bin dir and the reference plugins); the daemon gets it from the shim.
    pub fn prepend_cni_path(&self, dir: &Path) {
        let path = format!("{}:{}:{REFERENCE_DIR}", dir.display(), bin_dir().display());
        self.extra_env.lock().unwrap().push(("CNI_PATH".into(), path));
    }

    /// `nft -j list table inet wasmcni` in the host netns (an empty list when there is no such table).
    pub fn nft(&self) -> Value {
        let out = self.host.exec(&["nft", "-j", "list", "table", "inet", "wasmcni"]);
        if !out.status.success() {
            return json!({"nftables": []});
        }
        serde_json::from_slice(&out.stdout).expect("nft -j output")
    }

    /// The elements of every masquerade set of this lab's network, sorted.
    pub fn masq_elements(&self) -> Vec<String> {
        let prefix = format!("masq-{}-", self.network);
        let nft = self.nft();
        let mut out: Vec<String> = nft["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("set"))
            .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with(&prefix)))
            .flat_map(|s| s["elem"].as_array().cloned().unwrap_or_default())
            .map(|e| match e {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect();
        out.sort();
        out
    }

    /// The masquerade sets of this lab's network, by name.
    pub fn masq_sets(&self) -> Vec<String> {
        let prefix = format!("masq-{}-", self.network);
        self.nft()["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("set")?["name"].as_str().map(str::to_owned))
            .filter(|n| n.starts_with(&prefix))
            .collect()
    }

    /// How many rules the network's chain `masq-<network>` holds.
    pub fn masq_rules(&self) -> usize {
        let chain = format!("masq-{}", self.network);
        self.nft()["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("rule"))
            .filter(|r| r["chain"] == chain.as_str())
            .count()
    }

    /// The veths in the host netns.
    pub fn host_veths(&self) -> Vec<String> {
        self.host
            .ip_json(&["link", "show", "type", "veth"])
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
            .collect()
    }

    /// The masquerade records left for this lab's network.
    pub fn masq_records(&self) -> Vec<String> {
        std::fs::read_dir(self.state_dir().join("masquerade").join(&self.network))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The common case: `wasm-bridge` (or the config's type) for container `id`.
    pub fn cni(&self, command: &str, config: &Value, id: &str, netns: &str) -> CniOut {
        let plugin = config["type"].as_str().unwrap_or("wasmcni");
        self.invoke(&Invoke { plugin, command, container_id: id, netns, ifname: "eth0", args: "", config })
    }
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// The container interface's address from a result of any version >= 0.3.0.
pub fn result_ips(result: &Value) -> Vec<String> {
    result["ips"]
        .as_array()
        .map(|a| a.iter().map(|ip| ip["address"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// The address part of a CIDR.
pub fn addr_of(cidr: &str) -> &str {
    cidr.split('/').next().unwrap()
}
