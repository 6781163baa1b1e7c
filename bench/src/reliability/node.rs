//! A row's node: a netns of its own playing the host (the calling thread
//! joins it), a bridge network with ipMasq on wasm host-local IPAM, its
//! lease and state dirs, and what is left of its containers.

use crate::cleanup::{Ns, Tracked};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use wasmcni_bench::daemon::{BenchDaemon, Options};
use wasmcni_bench::exec::{Plugin, bin_dir};
use wasmcni_e2e::unique;

pub struct Node {
    /// Removed, with all it holds, when the row's node is dropped.
    _ns: Ns,
    pub network: String,
    pub bridge: String,
    /// The pod subnet, a /16.
    pub subnet: Ipv4Addr,
    /// Every container ID of this row starts with it.
    pub tag: String,
    pub dir: PathBuf,
}

impl Node {
    /// Creates the node netns and moves the calling thread into it; rows
    /// get distinct subnets and dirs under `scratch`.
    pub fn new(row: u8, scratch: &Path) -> Node {
        let ns = Ns::new("wcrelnode");
        ns.must(&["ip", "link", "set", "lo", "up"]);
        wasmcni_bench::enter(&ns);
        let dir = scratch.join(format!("row{row}"));
        std::fs::create_dir_all(&dir).expect("row dir");
        Node {
            _ns: ns,
            network: unique("relnet"),
            bridge: unique("wcrel"),
            subnet: Ipv4Addr::new(10, 70 + row, 0, 0),
            tag: unique("rel"),
            dir,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("leases")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Container `kind``i` of this row.
    pub fn id(&self, kind: &str, i: usize) -> String {
        format!("{}-{kind}{i}", self.tag)
    }

    pub fn conf(&self) -> Value {
        json!({
            "cniVersion": "1.1.0", "name": self.network, "type": "wasm-bridge", "bridge": self.bridge,
            "isGateway": true, "ipMasq": true,
            "ipam": {
                "type": "wasm-host-local", "subnet": format!("{}/16", self.subnet),
                "dataDir": self.data_dir().display().to_string(),
            }
        })
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![("WASMCNI_STATE_DIR".into(), self.state_dir().display().to_string())]
    }

    /// The network's plugin, exec'd one call per process.
    pub fn one_shot(&self) -> Plugin {
        Plugin { bin: bin_dir().join("wasm-bridge").display().to_string(), conf: self.conf(), env: self.env() }
    }

    /// The same through the daemon: the shim answers 11 when it gets no
    /// answer, rather than running the call itself, so the row measures
    /// the daemon.
    pub fn shim(&self, daemon: &Daemon, conf: Value) -> Plugin {
        let mut conf = conf;
        conf["daemon"] = json!({"socket": daemon.socket.display().to_string(), "fallback": "fail"});
        Plugin { bin: bin_dir().join("wasm-bridge").display().to_string(), conf, env: self.env() }
    }

    /// GC with no valid attachments: everything of the network goes.
    pub fn gc(&self) -> Plugin {
        let mut p = self.one_shot();
        p.conf["cni.dev/valid-attachments"] = json!([]);
        p
    }

    /// `n` container netns, made a few at a time.
    pub fn containers(&self, n: usize) -> Vec<Ns> {
        let per = n.div_ceil(4).max(1);
        std::thread::scope(|s| {
            let parts: Vec<_> = (0..n)
                .step_by(per)
                .map(|from| s.spawn(move || (from..(from + per).min(n)).map(|_| container()).collect::<Vec<_>>()))
                .collect();
            parts.into_iter().flat_map(|p| p.join().unwrap()).collect()
        })
    }

    /// A daemon in this node with the row's state dir; `nofile` sets its fd
    /// limit, soft and hard (so that raising the soft one cannot help).
    pub fn daemon(&self, nofile: Option<u64>) -> Daemon {
        let opts = Options { nofile, env: self.env(), log: Some(self.dir.join("daemon.log")) };
        let inner = BenchDaemon::start_with(&self.dir.join("daemon"), &opts);
        let tracked = Tracked::new(inner.pid());
        Daemon { inner, _tracked: tracked }
    }

    /// What this row's containers left in the node right now.
    pub fn leftovers(&self) -> Leftovers {
        Leftovers {
            veths: self.veths(),
            leases: self.leases(),
            nft: self.nft_entries(),
            state: attachment_state(&self.state_dir()),
        }
    }

    /// Leftovers once they stop changing (the kernel tears a deleted netns
    /// down, and its veths with it, in the background), within 10 s.
    pub fn settled(&self) -> Leftovers {
        let start = Instant::now();
        let (mut last, mut since) = (self.leftovers(), Instant::now());
        while start.elapsed() < Duration::from_secs(10) && since.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(200));
            let now = self.leftovers();
            if now != last {
                (last, since) = (now, Instant::now());
            }
        }
        last
    }

    /// Host-side veths: the node netns holds nothing else of anyone's.
    fn veths(&self) -> usize {
        let out = Command::new("ip").args(["-j", "link", "show", "type", "veth"]).output().expect("ip");
        serde_json::from_slice::<Value>(&out.stdout).ok().and_then(|v| v.as_array().map(Vec::len)).unwrap_or(0)
    }

    fn leases(&self) -> usize {
        let dir = self.data_dir().join(&self.network);
        let names = std::fs::read_dir(dir).into_iter().flatten().flatten();
        names.filter(|e| e.file_name().to_string_lossy().parse::<std::net::IpAddr>().is_ok()).count()
    }

    /// Rules and set elements in `inet wasmcni` that name one of this row's
    /// containers or a pod address (not the subnet's own or the gateway's):
    /// the per-network table and chain are not counted.
    fn nft_entries(&self) -> usize {
        let out = Command::new("nft").args(["-j", "list", "ruleset"]).output().expect("nft");
        let ruleset: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let items = ruleset["nftables"].as_array().cloned().unwrap_or_default();
        let ours = |table: &Value| table["family"] == "inet" && table["table"] == "wasmcni";
        let mut n = 0;
        for item in &items {
            if let Some(rule) = item.get("rule").filter(|r| ours(r)) {
                n += usize::from(self.names_pod(rule));
            }
            if let Some(set) = item.get("set").or_else(|| item.get("map")).filter(|s| ours(s)) {
                let elems = set["elem"].as_array().map(Vec::as_slice).unwrap_or_default();
                n += elems.iter().filter(|e| self.names_pod(e)).count();
            }
        }
        n
    }

    fn names_pod(&self, v: &Value) -> bool {
        let base = u32::from(self.subnet);
        match v {
            Value::String(s) => {
                s.contains(&self.tag)
                    || s.parse::<Ipv4Addr>().is_ok_and(|ip| {
                        let ip = u32::from(ip);
                        ip >> 16 == base >> 16 && ip != base && ip != base + 1
                    })
            }
            Value::Array(a) => a.iter().any(|x| self.names_pod(x)),
            Value::Object(o) => o.values().any(|x| self.names_pod(x)),
            _ => false,
        }
    }
}

/// A container netns with its loopback up.
pub fn container() -> Ns {
    let c = Ns::new("wcrelc");
    c.must(&["ip", "link", "set", "lo", "up"]);
    c
}

/// Files under `dir` that belong to one attachment: masquerade records and
/// address claims, and attachment records. What a network keeps whatever its
/// containers do (the daemon's list of networks, a set's creation lock) is
/// not counted.
fn attachment_state(dir: &Path) -> usize {
    let files = |dir: PathBuf| -> Vec<String> {
        let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
        let files = entries.filter(|e| e.file_type().is_ok_and(|t| t.is_file()));
        files.map(|e| e.file_name().to_string_lossy().into_owned()).collect()
    };
    let networks = std::fs::read_dir(dir.join("masquerade")).into_iter().flatten().flatten();
    let masquerade: usize = networks
        .map(|n| {
            files(n.path()).len() + files(n.path().join("addr")).iter().filter(|f| !f.starts_with("create@")).count()
        })
        .sum();
    masquerade + files(dir.join("attachments")).len()
}

/// A daemon of a row, killed on Ctrl-C too.
pub struct Daemon {
    pub inner: BenchDaemon,
    _tracked: Tracked,
}

impl std::ops::Deref for Daemon {
    type Target = BenchDaemon;
    fn deref(&self) -> &BenchDaemon {
        &self.inner
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut BenchDaemon {
        &mut self.inner
    }
}

/// What containers left behind after their DEL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leftovers {
    pub veths: usize,
    pub leases: usize,
    pub nft: usize,
    pub state: usize,
}

impl Leftovers {
    pub fn total(&self) -> usize {
        self.veths + self.leases + self.nft + self.state
    }
}

impl std::fmt::Display for Leftovers {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        if self.total() == 0 {
            return write!(f, "0");
        }
        write!(
            f,
            "{} (veth {}, lease {}, nft {}, state {})",
            self.total(),
            self.veths,
            self.leases,
            self.nft,
            self.state
        )
    }
}
