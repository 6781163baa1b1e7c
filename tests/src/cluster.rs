//! A cluster in namespaces: underlay switches (a bridge in a netns of its
//! own each, joined by a router where there are two), nodes (labs) plugged
//! into them, and an etcd server on an address of the underlay, all removed
//! when dropped.

use crate::daemon::Daemon;
use crate::{Lab, Netns, addr_of, result_ips};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The underlay network: 192.168.50.0/24 inside namespaces of our own.
pub const UNDERLAY: &str = "192.168.50";
pub const ETCD_URL: &str = "http://192.168.50.100:2379";
pub const POD_NETWORK: &str = r#"{"Network": "10.244.0.0/16", "SubnetLen": 24}"#;

/// One L2 segment: hosts plugged in get `<prefix>.<n>/24` (and with IPv6,
/// `<prefix6><n>/64`).
pub struct Switch {
    pub ns: Netns,
    pub prefix: String,
    pub prefix6: Option<String>,
    ports: std::sync::atomic::AtomicU32,
    /// The router's address on this segment, when it has one.
    gateway: Option<String>,
}

impl Switch {
    /// The segment 192.168.50.0/24.
    pub fn new() -> Switch {
        Switch::on(UNDERLAY)
    }

    /// The segment `<prefix>.0/24` (`prefix` is three octets).
    pub fn on(prefix: &str) -> Switch {
        let ns = Netns::new("wcsw");
        ns.must(&["ip", "link", "add", "br0", "type", "bridge"]);
        ns.must(&["ip", "link", "set", "br0", "up"]);
        Switch { ns, prefix: prefix.to_owned(), prefix6: None, ports: 0.into(), gateway: None }
    }

    /// The segment `<prefix>.0/24` and `<prefix6>/64` (`prefix6` like `fd00:1::`).
    pub fn dual(prefix: &str, prefix6: &str) -> Switch {
        Switch { prefix6: Some(prefix6.to_owned()), ..Switch::on(prefix) }
    }

    /// Plugs `host` in as `eth0` with address `<prefix>.<n>/24`; behind a
    /// router, with a route through it to the other segments.
    pub fn plug(&self, host: &Netns, n: u8) {
        self.plug_as(host, n, "eth0");
        if let Some(gw) = &self.gateway {
            host.must(&["ip", "route", "add", "192.168.0.0/16", "via", gw]);
            if let Some(p6) = &self.prefix6 {
                host.must(&["ip", "-6", "route", "add", "fd00::/16", "via", &format!("{p6}254")]);
            }
        }
    }

    fn plug_as(&self, host: &Netns, n: u8, ifname: &str) {
        let port = format!("p{}", self.ports.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        self.ns.must(&["ip", "link", "add", &port, "type", "veth", "peer", "name", ifname, "netns", &host.name]);
        self.ns.must(&["ip", "link", "set", &port, "master", "br0", "up"]);
        host.must(&["ip", "addr", "add", &format!("{}.{n}/24", self.prefix), "dev", ifname]);
        if let Some(p6) = &self.prefix6 {
            host.must(&["ip", "-6", "addr", "add", &format!("{p6}{n}/64"), "dev", ifname, "nodad"]);
        }
        host.must(&["ip", "link", "set", ifname, "up"]);
        host.must(&["ip", "link", "set", "lo", "up"]);
    }
}

/// Two segments joined by a router (`.254` on each): nodes on different
/// segments reach each other by IP only, never at L2.
pub struct Segments {
    pub a: Switch,
    pub b: Switch,
    pub router: Netns,
}

impl Segments {
    pub fn new(a: &str, b: &str) -> Segments {
        Segments::join(Switch::on(a), Switch::on(b))
    }

    /// Dual stack: `a`/`a6` and `b`/`b6` (IPv6 prefixes like `fd00:1::`).
    pub fn dual(a: (&str, &str), b: (&str, &str)) -> Segments {
        Segments::join(Switch::dual(a.0, a.1), Switch::dual(b.0, b.1))
    }

    fn join(mut a: Switch, mut b: Switch) -> Segments {
        let router = Netns::new("wcrt");
        a.plug_as(&router, 254, "a0");
        b.plug_as(&router, 254, "b0");
        router.must(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        router.must(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
        a.gateway = Some(format!("{}.254", a.prefix));
        b.gateway = Some(format!("{}.254", b.prefix));
        Segments { a, b, router }
    }
}

impl Default for Switch {
    fn default() -> Self {
        Switch::new()
    }
}

/// etcd 3.4 (Debian's) serving on `<prefix>.100:2379` of a switch
/// (`ETCD_URL` on the default one), in a netns of its own.
pub struct Etcd {
    pub ns: Netns,
    pub url: String,
    child: Child,
    dir: PathBuf,
}

impl Etcd {
    pub fn start(switch: &Switch) -> Etcd {
        let ns = Netns::new("wcetcd");
        switch.plug(&ns, 100);
        let url = format!("http://{}.100:2379", switch.prefix);
        let dir = std::env::temp_dir().join(crate::unique("wcni-etcd-"));
        let peer = "http://127.0.0.1:2380";
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "etcd", "--name", "t", "--data-dir"])
            .arg(&dir)
            .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
            .args(["--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer])
            .args(["--initial-cluster", &format!("t={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        let etcd = Etcd { ns, url, child, dir };
        for _ in 0..100 {
            if etcd.ctl(&["endpoint", "health"]).is_some() {
                return etcd;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("etcd did not come up on {}", etcd.url);
    }

    /// `etcdctl` against this server; its stdout when it succeeds.
    pub fn ctl(&self, args: &[&str]) -> Option<String> {
        let out = self.ns.exec(&[&["etcdctl", "--endpoints", &self.url], args].concat());
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

/// A node: a lab plugged into a switch as `<prefix>.<n>`, forwarding.
pub struct Node {
    pub lab: Lab,
    pub n: u8,
    ip: String,
    ip6: Option<String>,
}

impl Node {
    pub fn new(switch: &Switch, n: u8) -> Node {
        let lab = Lab::new();
        switch.plug(&lab.host, n);
        lab.host.must(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        lab.host.must(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
        let ip6 = switch.prefix6.as_ref().map(|p| format!("{p}{n}"));
        Node { lab, n, ip: format!("{}.{n}", switch.prefix), ip6 }
    }

    pub fn ip(&self) -> String {
        self.ip.clone()
    }

    /// Its IPv6 underlay address, on a dual-stack switch.
    pub fn ip6(&self) -> Option<String> {
        self.ip6.clone()
    }

    pub fn subnet_file(&self) -> PathBuf {
        self.lab.data_dir.join("subnet.env")
    }

    /// This node's daemon in cluster mode; `source` is `--etcd-endpoints URL`
    /// or `--peers-file FILE`.
    pub fn daemon(&self, source: &[&str]) -> Daemon {
        let file = self.subnet_file();
        let ip = self.ip();
        let ip6: Vec<&str> = self.ip6.as_deref().map_or(vec![], |ip6| vec!["--node-ipv6", ip6]);
        let args = [
            source,
            &["--node-ip", &ip, "--underlay-iface", "eth0", "--lease-ttl-secs", "3", "--subnet-file"],
            &[file.to_str().unwrap()],
            &ip6,
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

    /// FLANNEL_IPV6_SUBNET's network, e.g. `fc00:0:0:3::/64`, with dual stack.
    pub fn subnet6(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.subnet_file()).expect("subnet.env");
        let line = text.lines().find_map(|l| l.strip_prefix("FLANNEL_IPV6_SUBNET="))?;
        Some(line.replace("::1/", "::/"))
    }

    /// A pod on this node, attached through `conf()` as `id`: its netns and address.
    pub fn pod(&self, id: &str) -> (Netns, String) {
        let pod = self.lab.container();
        let r = self.lab.cni("ADD", &self.conf(), id, &pod.path()).expect_ok().json();
        let ip = addr_of(&result_ips(&r)[0]).to_owned();
        (pod, ip)
    }

    /// Writes a static peers file (`--peers-file`) for the cluster network
    /// 10.244.0.0/16 with `nodes` (address → subnet) into this node's data
    /// dir, and returns its path; called again, it rewrites the file.
    pub fn peers_file(&self, nodes: Value) -> PathBuf {
        let path = self.lab.data_dir.join("peers.json");
        std::fs::create_dir_all(&self.lab.data_dir).unwrap();
        std::fs::write(&path, json!({"network": "10.244.0.0/16", "nodes": nodes}).to_string()).unwrap();
        path
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
