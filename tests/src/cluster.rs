//! A cluster in namespaces: an underlay switch (a bridge in a netns of its
//! own), nodes (labs) plugged into it, and an etcd server on an address of
//! the underlay, all removed when dropped.

use crate::daemon::Daemon;
use crate::{Lab, Netns};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The underlay network: 192.168.50.0/24 inside namespaces of our own.
pub const UNDERLAY: &str = "192.168.50";
pub const ETCD_URL: &str = "http://192.168.50.100:2379";
pub const POD_NETWORK: &str = r#"{"Network": "10.244.0.0/16", "SubnetLen": 24}"#;

pub struct Switch {
    pub ns: Netns,
    ports: std::sync::atomic::AtomicU32,
}

impl Switch {
    pub fn new() -> Switch {
        let ns = Netns::new("wcsw");
        ns.must(&["ip", "link", "add", "br0", "type", "bridge"]);
        ns.must(&["ip", "link", "set", "br0", "up"]);
        Switch { ns, ports: 0.into() }
    }

    /// Plugs `host` in as `eth0` with address `192.168.50.<n>/24`.
    pub fn plug(&self, host: &Netns, n: u8) {
        let port = format!("p{}", self.ports.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        self.ns.must(&["ip", "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &host.name]);
        self.ns.must(&["ip", "link", "set", &port, "master", "br0", "up"]);
        host.must(&["ip", "addr", "add", &format!("{UNDERLAY}.{n}/24"), "dev", "eth0"]);
        host.must(&["ip", "link", "set", "eth0", "up"]);
        host.must(&["ip", "link", "set", "lo", "up"]);
    }
}

impl Default for Switch {
    fn default() -> Self {
        Switch::new()
    }
}

/// etcd 3.4 (Debian's) serving on `ETCD_URL`, in a netns on the switch.
pub struct Etcd {
    pub ns: Netns,
    child: Child,
    dir: PathBuf,
}

impl Etcd {
    pub fn start(switch: &Switch) -> Etcd {
        let ns = Netns::new("wcetcd");
        switch.plug(&ns, 100);
        let dir = std::env::temp_dir().join(crate::unique("wcni-etcd-"));
        let peer = "http://127.0.0.1:2380";
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "etcd", "--name", "t", "--data-dir"])
            .arg(&dir)
            .args(["--listen-client-urls", ETCD_URL, "--advertise-client-urls", ETCD_URL])
            .args(["--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer])
            .args(["--initial-cluster", &format!("t={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        let etcd = Etcd { ns, child, dir };
        for _ in 0..100 {
            if etcd.ctl(&["endpoint", "health"]).is_some() {
                return etcd;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("etcd did not come up on {ETCD_URL}");
    }

    /// `etcdctl` against this server; its stdout when it succeeds.
    pub fn ctl(&self, args: &[&str]) -> Option<String> {
        let out = self.ns.exec(&[&["etcdctl", "--endpoints", ETCD_URL], args].concat());
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A node: a lab plugged into the switch as `192.168.50.<n>`, forwarding.
pub struct Node {
    pub lab: Lab,
    pub n: u8,
}

impl Node {
    pub fn new(switch: &Switch, n: u8) -> Node {
        let lab = Lab::new();
        switch.plug(&lab.host, n);
        lab.host.must(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        Node { lab, n }
    }

    pub fn ip(&self) -> String {
        format!("{UNDERLAY}.{}", self.n)
    }

    pub fn subnet_file(&self) -> PathBuf {
        self.lab.data_dir.join("subnet.env")
    }

    /// This node's daemon in cluster mode; `source` is `--etcd-endpoints URL`
    /// or `--peers-file FILE`.
    pub fn daemon(&self, source: &[&str]) -> Daemon {
        let file = self.subnet_file();
        let ip = self.ip();
        let args = [
            source,
            &["--node-ip", &ip, "--underlay-iface", "eth0", "--lease-ttl-secs", "3", "--subnet-file"],
            &[file.to_str().unwrap()],
        ]
        .concat();
        Daemon::start(&self.lab, &args)
    }

    /// FLANNEL_SUBNET's network, e.g. `10.244.3.0/24`.
    pub fn subnet(&self) -> String {
        let text = std::fs::read_to_string(self.subnet_file()).expect("subnet.env");
        let line = text.lines().find_map(|l| l.strip_prefix("FLANNEL_SUBNET=")).expect("FLANNEL_SUBNET");
        let (addr, len) = line.split_once('/').unwrap();
        let mut octets: Vec<&str> = addr.split('.').collect();
        octets[3] = "0";
        format!("{}/{len}", octets.join("."))
    }

    /// The pod network config: the bridge with host-local on subnet.env.
    pub fn conf(&self) -> Value {
        let mut conf = self.lab.bridge_conf("1.0.0", json!({}));
        conf["ipMasq"] = json!(true);
        conf["ipam"]["subnetFile"] = json!(self.subnet_file());
        conf
    }

    /// The route this node has to `dst`, as `ip -j route` shows it.
    pub fn route(&self, dst: &str) -> Option<Value> {
        let routes = self.lab.host.ip_json(&["route", "show", dst]);
        routes.as_array().and_then(|r| r.first().cloned())
    }
}
