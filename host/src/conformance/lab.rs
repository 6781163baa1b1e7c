//! Where a conformance run acts: a throwaway node netns (the plugin's
//! "host"), container netns, a lease and state directory, and this binary
//! exec'd inside the node netns exactly as a runtime execs a CNI plugin.
//! The kernel state is read with iproute2 and nft, as an operator would.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The subnet the run's IPAM hands out, inside the node netns only.
const SUBNET: &str = "10.222.0.0/24";

/// How long one exec may take before the run kills it and fails the check.
pub const CALL_LIMIT: Duration = Duration::from_secs(30);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A name no other run on this machine uses.
pub fn unique(tag: &str) -> String {
    format!("wct{}{tag}{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The pid in a name [`unique`] made.
fn owner(name: &str) -> Option<u32> {
    let digits: String = name.strip_prefix("wct")?.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Deletes what runs killed before they could clean up (their netns and
/// scratch directories), told apart by the pid in their names.
pub fn sweep() {
    let dead = |name: &str| owner(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
    for entry in std::fs::read_dir("/run/netns").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if dead(&name) {
            drop(Netns { name });
        }
    }
    for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if dead(&name) && name.contains("-conformance-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A named netns, deleted when dropped.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Result<Netns> {
        let netns = Netns { name: unique(tag) };
        quiet(Command::new("ip").args(["netns", "add", &netns.name]))?;
        quiet(Command::new("ip").args(["-n", &netns.name, "link", "set", "lo", "up"]))?;
        Ok(netns)
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// `ip -j <args>` in this netns, parsed (an empty answer is an empty list).
    fn ip_json(&self, args: &[&str]) -> Result<Vec<Value>> {
        let out = quiet(Command::new("ip").args(["-n", &self.name, "-j"]).args(args))?;
        if out.trim().is_empty() { Ok(Vec::new()) } else { Ok(serde_json::from_str(&out)?) }
    }

    /// Its links, addresses and routes as comparable lines, without the
    /// IPv6 link-local addresses and multicast routes the kernel adds to an
    /// up link by itself, whenever its autoconfiguration gets to it.
    pub fn state(&self) -> Result<BTreeSet<String>> {
        let mut lines = BTreeSet::new();
        for link in self.ip_json(&["-d", "link", "show"])? {
            let kind = link["linkinfo"]["info_kind"].as_str().unwrap_or("device");
            lines.insert(format!("link {} ({kind})", text(&link["ifname"])));
        }
        for link in self.ip_json(&["addr", "show"])? {
            for a in link["addr_info"].as_array().into_iter().flatten().filter(|a| !kernel_made(&a["local"])) {
                lines.insert(format!("address {}/{} on {}", text(&a["local"]), a["prefixlen"], text(&link["ifname"])));
            }
        }
        let v4 = self.ip_json(&["route", "show", "table", "all"])?;
        let v6 = self.ip_json(&["-6", "route", "show", "table", "all"])?;
        for r in v4.into_iter().chain(v6).filter(|r| !kernel_made(&r["dst"])) {
            let via = r.get("gateway").map(|g| format!(" via {}", text(g))).unwrap_or_default();
            let table = r.get("table").map(|t| format!(" table {}", text(t))).unwrap_or_default();
            lines.insert(format!("route {}{via} dev {}{table}", text(&r["dst"]), text(&r["dev"])));
        }
        if let Ok(rules) = quiet(Command::new("ip").args(["netns", "exec", &self.name, "nft", "list", "ruleset"])) {
            // Counters change with traffic; the rules are what must match.
            lines.extend(
                rules.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("nft {}", uncounted(l))),
            );
        }
        Ok(lines)
    }

    /// Its links other than lo: what an ADD left in a container netns.
    pub fn links_besides_lo(&self) -> Result<Vec<String>> {
        let lines = self.state()?.into_iter();
        Ok(lines.filter(|l| l.starts_with("link ") && !l.starts_with("link lo ")).collect())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).stderr(Stdio::null()).status();
    }
}

/// An IPv6 link-local address or prefix, or the multicast prefix.
fn kernel_made(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.starts_with("fe80:") || s == "ff00::/8")
}

/// Sets `extra`'s keys in `into`: a module's own config over the run's defaults.
pub fn merge(into: &mut Value, extra: &Map<String, Value>) {
    for (k, v) in extra {
        into[k] = v.clone();
    }
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// A ruleset line without the values of its counters.
fn uncounted(line: &str) -> String {
    let mut words = line.split_whitespace().peekable();
    let mut out = Vec::new();
    while let Some(w) = words.next() {
        out.push(w);
        if w == "packets" || w == "bytes" {
            words.next();
        }
    }
    out.join(" ")
}

/// Runs `cmd` to completion; its stdout, or an error with its stderr.
fn quiet(cmd: &mut Command) -> Result<String> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One CNI call as a runtime makes it.
pub struct Call<'a> {
    pub command: &'a str,
    pub container_id: &'a str,
    /// CNI_NETNS; empty as a runtime sends it when the container is gone.
    pub netns: String,
    pub ifname: &'a str,
    pub args: &'a str,
    /// The config on stdin (not always JSON: refusals are checked too).
    pub config: &'a str,
}

/// What one exec printed and how it ended.
#[derive(Debug)]
pub struct Reply {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Reply {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.stdout).ok()
    }

    /// The CNI error code it printed, if it printed an error.
    pub fn code(&self) -> Option<u64> {
        self.json()?.get("code")?.as_u64()
    }

    /// A one-line account of a failure, for the table.
    pub fn failure(&self) -> String {
        match self.json() {
            Some(e) if e.get("code").is_some() => format!("code {}: {}", e["code"], text(&e["msg"])),
            _ => format!("exit without a CNI error: {}", last_line(&self.stderr)),
        }
    }
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(no output)")
}

/// The node a run acts on.
pub struct Lab {
    pub node: Netns,
    pub network: String,
    pub dir: PathBuf,
    exe: PathBuf,
    module_dir: PathBuf,
    cache_dir: PathBuf,
}

impl Lab {
    pub fn new(module_dir: &Path, cache_dir: &Path) -> Result<Lab> {
        sweep();
        let dir = std::env::temp_dir().join(unique("-conformance-"));
        std::fs::create_dir_all(dir.join("leases"))?;
        Ok(Lab {
            node: Netns::new("n")?,
            network: unique("net"),
            dir,
            exe: std::env::current_exe().context("locating this binary")?,
            module_dir: module_dir.to_owned(),
            cache_dir: cache_dir.to_owned(),
        })
    }

    pub fn leases_dir(&self) -> PathBuf {
        self.dir.join("leases")
    }

    /// The host-local `ipam` section the run's modules allocate from.
    pub fn ipam(&self) -> Value {
        json!({"subnet": SUBNET, "dataDir": self.leases_dir()})
    }

    /// The first-party bridge named `bridge` over host-local, in `version`:
    /// the main plugin a chained module or a policy is checked under.
    pub fn bridge_conf(&self, version: &str, bridge: &str) -> Value {
        let mut ipam = self.ipam();
        ipam["type"] = "wasmcni".into();
        ipam["plugin"] = "host-local".into();
        json!({"cniVersion": version, "name": self.network, "type": "wasmcni", "plugin": "bridge",
            "bridge": bridge, "isGateway": true, "ipam": ipam})
    }

    /// The addresses leased on this lab's network.
    pub fn leases(&self) -> BTreeSet<String> {
        let names = std::fs::read_dir(self.leases_dir().join(&self.network)).into_iter().flatten().flatten();
        names
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .collect()
    }

    /// The node's kernel state, its leases and its per-attachment state files.
    pub fn snapshot(&self) -> Result<BTreeSet<String>> {
        let mut lines = self.node.state()?;
        lines.extend(self.leases().into_iter().map(|ip| format!("lease {ip}")));
        let state = walk(&self.dir.join("state"));
        lines.extend(state.into_iter().map(|f| format!("state file {f}")));
        Ok(lines)
    }

    /// Starts one exec of this binary in the node netns with the call's
    /// environment and config.
    pub fn spawn(&self, call: &Call) -> Result<Child> {
        let cni_path = self.exe.parent().map(Path::display).map(|d| format!("{d}:/opt/cni/bin")).unwrap_or_default();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.node.name])
            .arg(&self.exe)
            .env("CNI_COMMAND", call.command)
            .env("CNI_CONTAINERID", call.container_id)
            .env("CNI_NETNS", &call.netns)
            .env("CNI_IFNAME", call.ifname)
            .env("CNI_ARGS", call.args)
            .env("CNI_PATH", cni_path)
            .env("WASMCNI_MODULE_DIR", &self.module_dir)
            .env("WASMCNI_CACHE_DIR", &self.cache_dir)
            .env("WASMCNI_STATE_DIR", self.dir.join("state"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the plugin")?;
        child.stdin.take().expect("piped").write_all(call.config.as_bytes())?;
        Ok(child)
    }

    /// One exec to completion, killed after [`CALL_LIMIT`].
    pub fn exec(&self, call: &Call) -> Result<Reply> {
        let start = Instant::now();
        let mut child = self.spawn(call)?;
        let (mut out, mut err) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if start.elapsed() > CALL_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} did not return within {CALL_LIMIT:?}", call.command);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let took = start.elapsed();
        Ok(Reply {
            ok: status.success(),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
            took,
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every file under `dir`, relative to it.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path).into_iter().map(|f| format!("{}/{f}", entry.file_name().to_string_lossy())));
        } else {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_pid_of_their_run() {
        assert_eq!(owner(&unique("n")), Some(std::process::id()));
        assert_eq!(owner(&unique("-conformance-")), Some(std::process::id()));
        assert_eq!(owner("wch1a2b3"), None);
        assert_eq!(owner("wct"), None);
    }
}
