//! Network policy enforced end to end, checked the way upstream
//! Kubernetes' Netpol e2e checks it: namespaces x, y, z with pods a, b, c
//! on one node, dual-stack, each serving TCP and UDP on ports 80 and 81.
//! For every scenario, every pair of pods is probed on every port in both
//! families with real connections between their namespaces, and the whole
//! matrix is compared with the expected one. A daemon watches the manifests
//! and the module and re-applies on each change, as on a node.

use serde_json::{Value, json};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasmcni_e2e::cluster::{Etcd, Switch};
use wasmcni_e2e::daemon::Daemon;
use wasmcni_e2e::probe::{self, Port};
use wasmcni_e2e::{Invoke, Lab, Netns, addr_of, example_module, result_ips};

const NAMESPACES: [&str; 3] = ["x", "y", "z"];
const NAMES: [&str; 3] = ["a", "b", "c"];
const PORTS: [Port; 4] = [Port::Tcp(80), Port::Tcp(81), Port::Udp(80), Port::Udp(81)];

struct Pod {
    ns: &'static str,
    name: &'static str,
    netns: Netns,
    ips: [IpAddr; 2],
}

impl Pod {
    fn is(&self, id: &str) -> bool {
        id == format!("{}/{}", self.ns, self.name)
    }
}

/// Which traffic a scenario expects through: (from, to, port, IPv6?).
type Want = dyn Fn(&Pod, &Pod, Port, bool) -> bool;

struct Cluster {
    lab: Lab,
    manifests: PathBuf,
    conf: Value,
    pods: Vec<Pod>,
    /// The matrix the scenario before expected: each must differ from it.
    previous: Option<Vec<bool>>,
}

impl Cluster {
    fn new() -> Cluster {
        let lab = Lab::new();
        // The node sends an ICMP error for each refused probe: without its
        // rate limits a refused probe fails at once instead of timing out.
        lab.host.must(&["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"]);
        lab.host.must(&["sysctl", "-qw", "net.ipv4.icmp_msgs_per_sec=100000", "net.ipv4.icmp_msgs_burst=10000"]);
        let manifests = lab.data_dir.join("manifests");
        std::fs::create_dir_all(&manifests).unwrap();
        let namespaces: String = NAMESPACES
            .iter()
            .map(|ns| {
                let team = if *ns == "z" { "\n    team: blue" } else { "" };
                format!(
                    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    ns: {ns}{team}\n---\n"
                )
            })
            .collect();
        std::fs::write(manifests.join("namespaces.yaml"), namespaces).unwrap();
        let ranges = json!({"ranges": [[{"subnet": "10.66.0.0/24"}], [{"subnet": "fd66::/64"}]]});
        let mut conf = lab.bridge_conf("1.1.0", ranges);
        conf["networkPolicy"] = json!({"manifests": manifests});
        let mut cluster = Cluster { lab, manifests, conf, pods: Vec::new(), previous: None };
        cluster.labels(&[]);
        cluster.policies(&[]);
        for ns in NAMESPACES {
            for name in NAMES {
                let netns = cluster.lab.container();
                let out = cluster.cni("ADD", ns, name, &netns);
                let ips: Vec<IpAddr> = result_ips(&out).iter().map(|c| addr_of(c).parse().unwrap()).collect();
                probe::serve(&netns.path(), &PORTS);
                cluster.pods.push(Pod { ns, name, netns, ips: [ips[0], ips[1]] });
            }
        }
        cluster
    }

    fn cni(&self, command: &str, ns: &str, name: &str, netns: &Netns) -> Value {
        let args = format!("K8S_POD_NAMESPACE={ns};K8S_POD_NAME={name}");
        let id = format!("{}-{ns}-{name}", self.lab.network);
        let i = Invoke {
            plugin: "wasm-bridge",
            command,
            container_id: &id,
            netns: &netns.path(),
            ifname: "eth0",
            args: &args,
            config: &self.conf,
        };
        let out = self.lab.invoke(&i);
        assert!(out.ok, "{command} {ns}/{name}: {} {}", out.stdout, out.stderr);
        if command == "ADD" { out.json() } else { Value::Null }
    }

    /// Writes a file of the manifests whole, as an operator's tooling would.
    fn write(&self, file: &str, text: String) {
        let staged = self.manifests.join(format!(".{file}.staged"));
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, self.manifests.join(file)).unwrap();
    }

    /// The pods' labels: `pod: <name>`, except `(namespace, name, value)`.
    fn labels(&self, relabelled: &[(&str, &str, &str)]) {
        let mut yaml = String::new();
        for ns in NAMESPACES {
            for name in NAMES {
                let value = relabelled.iter().find(|r| r.0 == ns && r.1 == name).map_or(name, |r| r.2);
                let pod =
                    format!("kind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    pod: {value}\n");
                yaml.push_str(&format!("apiVersion: v1\n{pod}---\n"));
            }
        }
        self.write("pods.yaml", yaml);
    }

    /// The NetworkPolicy objects in force: `(namespace, spec)`.
    fn policies(&self, specs: &[(&str, Value)]) {
        let items: Vec<Value> = specs
            .iter()
            .enumerate()
            .map(|(i, (ns, spec))| {
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": format!("p{i}"), "namespace": ns}, "spec": spec})
            })
            .collect();
        self.write("policies.json", json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string());
    }

    /// Every probe: from each pod to each pod on each port in each family.
    fn probe(&self) -> Vec<bool> {
        std::thread::scope(|s| {
            let rows: Vec<_> = self
                .pods
                .iter()
                .map(|from| {
                    let targets: Vec<(IpAddr, Port)> = self
                        .pods
                        .iter()
                        .flat_map(|to| to.ips.iter().flat_map(|ip| PORTS.iter().map(|p| (*ip, *p))))
                        .collect();
                    let path = from.netns.path();
                    s.spawn(move || probe::reach(&path, targets))
                })
                .collect();
            rows.into_iter().flat_map(|r| r.join().unwrap()).collect()
        })
    }

    /// The matrix `want` describes (a pod always reaches itself).
    fn expected(&self, want: &Want) -> Vec<bool> {
        let mut out = Vec::new();
        for from in &self.pods {
            for to in &self.pods {
                for v6 in [false, true] {
                    out.extend(PORTS.iter().map(|p| std::ptr::eq(from, to) || want(from, to, *p, v6)));
                }
            }
        }
        out
    }

    /// Probes until the matrix is the one `want` describes, failing with
    /// the pairs that differ if it is not by the deadline.
    fn expect(&mut self, scenario: &str, want: &Want) {
        let expected = self.expected(want);
        assert_ne!(self.previous.as_ref(), Some(&expected), "{scenario}: expects what the scenario before did");
        let start = Instant::now();
        let mut got = self.probe();
        while got != expected && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(200));
            got = self.probe();
        }
        if got != expected {
            let ruleset = self.lab.host.exec(&["nft", "list", "ruleset"]);
            panic!(
                "{scenario}: the matrix differs where\n{}\nthe node's ruleset:\n{}",
                self.differences(&got, &expected),
                String::from_utf8_lossy(&ruleset.stdout)
            );
        }
        self.previous = Some(expected);
    }

    fn differences(&self, got: &[bool], expected: &[bool]) -> String {
        let mut lines = Vec::new();
        let mut i = 0;
        for from in &self.pods {
            for to in &self.pods {
                for v6 in [false, true] {
                    for p in PORTS {
                        if got[i] != expected[i] {
                            let (f, t) = (format!("{}/{}", from.ns, from.name), format!("{}/{}", to.ns, to.name));
                            let family = if v6 { "IPv6" } else { "IPv4" };
                            lines
                                .push(format!("  {f} -> {t} {p:?} {family}: expected {}, got {}", expected[i], got[i]));
                        }
                        i += 1;
                    }
                }
            }
        }
        lines.join("\n")
    }

    fn pod(&self, id: &str) -> &Pod {
        self.pods.iter().find(|p| p.is(id)).unwrap()
    }
}

fn host(ip: IpAddr) -> String {
    if ip.is_ipv4() { format!("{ip}/32") } else { format!("{ip}/128") }
}

#[test]
fn policies_hold_for_every_pair_of_pods_on_every_port_as_the_manifests_change() {
    let mut c = Cluster::new();
    let daemon = Daemon::start(&c.lab, &[]);
    let x_a = json!({"matchLabels": {"pod": "a"}});
    let all = |_: &Pod, _: &Pod, _: Port, _: bool| true;

    c.expect("no policies", &all);

    c.policies(&[("x", json!({"podSelector": {}, "policyTypes": ["Ingress"]}))]);
    c.expect("default deny ingress in x", &|_, to, _, _| to.ns != "x");
    let node = probe::reach(&c.lab.host.path(), vec![(c.pod("x/a").ips[0], Port::Tcp(80))]);
    assert_eq!(node, [true], "the node reaches its isolated pods");

    c.policies(&[("x", json!({"podSelector": {}, "policyTypes": ["Egress"]}))]);
    c.expect("default deny egress in x", &|from, _, _, _| from.ns != "x");

    c.policies(&[("x", json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}))]);
    c.expect("allow from the same namespace", &|from, to, _, _| to.ns != "x" || from.ns == "x");

    let from_y = json!({"namespaceSelector": {"matchLabels": {"ns": "y"}}});
    c.policies(&[("x", json!({"podSelector": x_a, "ingress": [{"from": [from_y]}]}))]);
    c.expect("from a namespaceSelector", &|from, to, _, _| !to.is("x/a") || from.ns == "y");

    let b_in_y_or_z = json!({
        "namespaceSelector": {"matchExpressions": [{"key": "ns", "operator": "In", "values": ["y", "z"]}]},
        "podSelector": {"matchLabels": {"pod": "b"}}});
    c.policies(&[("x", json!({"podSelector": x_a, "ingress": [{"from": [b_in_y_or_z]}]}))]);
    c.expect("podSelector AND namespaceSelector", &|from, to, _, _| {
        !to.is("x/a") || (from.ns != "x" && from.name == "b")
    });

    let not_a_or_b =
        json!({"podSelector": {"matchExpressions": [{"key": "pod", "operator": "NotIn", "values": ["a", "b"]}]}});
    c.policies(&[("x", json!({"podSelector": x_a, "ingress": [{"from": [from_y, not_a_or_b]}]}))]);
    c.expect("podSelector OR namespaceSelector", &|from, to, _, _| !to.is("x/a") || from.ns == "y" || from.is("x/c"));

    let z_c = host(c.pod("z/c").ips[0]);
    let block = json!({"ipBlock": {"cidr": "10.66.0.0/24", "except": [z_c]}});
    c.policies(&[("x", json!({"podSelector": x_a, "ingress": [{"from": [block]}]}))]);
    c.expect("ipBlock with except (IPv4 only)", &|from, to, _, v6| !to.is("x/a") || (!v6 && !from.is("z/c")));

    c.policies(&[("x", json!({"podSelector": x_a, "ingress": [{"ports": [{"port": 80}]}]}))]);
    c.expect("a port", &|_, to, p, _| !to.is("x/a") || p == Port::Tcp(80));

    let range = json!({"protocol": "TCP", "port": 80, "endPort": 81});
    c.policies(&[("x", json!({"podSelector": x_a, "ingress": [{"ports": [range]}]}))]);
    c.expect("an endPort range", &|_, to, p, _| !to.is("x/a") || matches!(p, Port::Tcp(_)));

    let udp = json!({"protocol": "UDP", "port": 81});
    c.policies(&[("x", json!({"podSelector": x_a, "ingress": [{"ports": [udp]}]}))]);
    c.expect("UDP only", &|_, to, p, _| !to.is("x/a") || p == Port::Udp(81));

    let y_b = c.pod("y/b").ips;
    let to_y_b = json!([{"ipBlock": {"cidr": host(y_b[0])}}, {"ipBlock": {"cidr": host(y_b[1])}}]);
    let egress = json!({"podSelector": x_a, "policyTypes": ["Egress"], "egress": [{"to": to_y_b}]});
    c.policies(&[("x", egress)]);
    c.expect("egress to a CIDR", &|from, to, _, _| !from.is("x/a") || to.is("y/b"));

    let no_team = json!({"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}});
    let exists = json!({"matchExpressions": [{"key": "pod", "operator": "Exists"}]});
    let both = json!({"podSelector": exists, "policyTypes": ["Ingress", "Egress"], "ingress": [{"from": [no_team]}]});
    c.policies(&[("y", both)]);
    c.expect("both directions, Exists and DoesNotExist", &|from, to, _, _| {
        from.ns != "y" && (to.ns != "y" || from.ns != "z")
    });

    let bs = json!({"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "b"}}});
    c.policies(&[("x", json!({"podSelector": x_a, "ingress": [{"from": [bs]}]}))]);
    c.expect("pods labelled b in every namespace", &|from, to, _, _| !to.is("x/a") || from.name == "b");
    c.labels(&[("y", "c", "b")]);
    let relabelled = |from: &Pod, to: &Pod, _: Port, _: bool| !to.is("x/a") || from.name == "b" || from.is("y/c");
    c.expect("a label change on a pod", &relabelled);

    // The module swapped under the daemon: the same inputs, other rules.
    let module = daemon.module_dir.join("k8s-networkpolicy.wasm");
    let original = std::fs::read(&module).unwrap();
    let replace = |bytes: &[u8]| {
        let staged = module.with_extension("staged");
        std::fs::write(&staged, bytes).unwrap();
        std::fs::rename(&staged, &module).unwrap();
    };
    replace(&std::fs::read(example_module("namespace-isolation")).unwrap());
    c.expect("module swapped for namespace isolation", &|from, to, _, _| from.ns == to.ns);
    replace(&original);
    c.expect("module swapped back", &relabelled);

    c.labels(&[]);
    c.policies(&[]);
    c.expect("policies removed", &all);
    assert!(daemon.metric("wasmcni_netpol_updates_total{result=\"applied\"}") >= 15.0);

    for p in &c.pods {
        c.cni("DEL", p.ns, p.name, &p.netns);
    }
    let tables = c.lab.host.must(&["nft", "list", "tables"]);
    assert!(!tables.contains("wasmcni-netpol"), "{tables}");
}

/// One-shot mode, inputs from etcd: an ADD returns with its pod's policy
/// in place, DEL takes it out, and an ADD whose policy cannot be computed
/// fails without leaving the pod attached.
#[test]
fn a_pod_is_added_under_its_policy_and_bad_inputs_fail_its_add_cleanly() {
    let switch = Switch::new();
    let etcd = Etcd::start(&switch);
    let lab = Lab::new();
    switch.plug(&lab.host, 1);
    let mut conf = lab.bridge_conf("1.1.0", json!({"subnet": "10.67.0.0/24"}));
    conf["networkPolicy"] = json!({"etcd": {"endpoints": [etcd.url], "prefix": "/netpol/"}});
    let put = |key: &str, value: &str| assert!(etcd.ctl(&["put", key, value]).is_some(), "put {key}");
    put("/netpol/namespace/x", "kind: Namespace\nmetadata: {name: x, labels: {ns: x}}");
    put("/netpol/namespace/y", "kind: Namespace\nmetadata: {name: y, labels: {ns: y}}");
    let deny = json!({"kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "x"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
    put("/netpol/policy/x/deny", &deny.to_string());
    let add = |ns: &str, name: &str, netns: &Netns| {
        let args = format!("K8S_POD_NAMESPACE={ns};K8S_POD_NAME={name}");
        let id = format!("{ns}-{name}");
        lab.invoke(&Invoke {
            plugin: "wasm-bridge",
            command: "ADD",
            container_id: &id,
            netns: &netns.path(),
            ifname: "eth0",
            args: &args,
            config: &conf,
        })
    };
    let (y_b, x_a) = (lab.container(), lab.container());
    let out = add("y", "b", &y_b);
    assert!(out.ok, "{}", out.stderr);
    let out = add("x", "a", &x_a);
    assert!(out.ok, "{}", out.stderr);
    let ip: IpAddr = addr_of(&result_ips(&out.json())[0]).parse().unwrap();
    probe::serve(&x_a.path(), &[Port::Tcp(80)]);
    // Nothing else applies policy in one-shot mode: what holds now, ADD did.
    assert_eq!(probe::reach(&y_b.path(), vec![(ip, Port::Tcp(80))]), [false], "x/a is isolated once its ADD returns");
    assert_eq!(probe::reach(&lab.host.path(), vec![(ip, Port::Tcp(80))]), [true], "the node reaches it");

    let leases = lab.leases();
    put("/netpol/policy/broken", "kind: [");
    let x_c = lab.container();
    let out = add("x", "c", &x_c);
    assert_eq!((out.ok, out.code()), (false, 11), "{}", out.stdout);
    assert!(out.json()["msg"].as_str().unwrap().contains("/netpol/policy/broken"), "{}", out.stdout);
    assert!(!x_c.has_link("eth0"), "the failed ADD was undone");
    assert_eq!(lab.leases(), leases, "its lease was released");
    assert!(etcd.ctl(&["del", "/netpol/policy/broken"]).is_some());

    let del = |netns: &str| {
        let args = "K8S_POD_NAMESPACE=x;K8S_POD_NAME=a";
        lab.invoke(&Invoke {
            plugin: "wasm-bridge",
            command: "DEL",
            container_id: "x-a",
            netns,
            ifname: "eth0",
            args,
            config: &conf,
        })
    };
    let no_table = |after: &str| {
        let tables = lab.host.must(&["nft", "list", "tables"]);
        assert!(!tables.contains("wasmcni-netpol"), "{after} of the last isolated pod removes the table: {tables}");
    };
    assert!(del(&x_a.path()).ok);
    no_table("DEL");
    assert!(del("").ok, "DEL again, without a netns");

    // Back, then GC with x/a no longer listed: its record goes, and with it its rules.
    assert!(add("x", "a", &x_a).ok);
    assert_eq!(probe::reach(&y_b.path(), vec![(ip, Port::Tcp(80))]), [false], "x/a is isolated again");
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "y-b", "ifname": "eth0"}]);
    let i =
        Invoke { plugin: "wasm-bridge", command: "GC", container_id: "", netns: "", ifname: "", args: "", config: &gc };
    let out = lab.invoke(&i);
    assert!(out.ok, "GC: {}{}", out.stdout, out.stderr);
    no_table("GC");
    assert!(del(&x_a.path()).ok);
}
