//! Network policy's costs, on a node of its own: what a pod's ADD spends on
//! policy (wasm-bridge with `networkPolicy` against the same without, and
//! the reference bridge, calls alternating), how long the daemon takes from
//! a policy file being replaced to a connection the new policy allows
//! going through, and both again with `pods` pods and `policies`
//! NetworkPolicy objects.

use serde_json::{Value, json};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasmcni_bench::percentile;
use wasmcni_e2e::daemon::Daemon;
use wasmcni_e2e::probe::{self, Port};
use wasmcni_e2e::{Invoke, Lab, Netns, REFERENCE_DIR, addr_of};

/// Label groups the pods are spread over; each policy selects one.
const GROUPS: usize = 50;

struct Node {
    lab: Lab,
    manifests: PathBuf,
    policed: Value,
    plain: Value,
    reference: Value,
    pods: Vec<Netns>,
}

impl Node {
    fn new() -> Node {
        let lab = Lab::new();
        let manifests = lab.data_dir.join("manifests");
        std::fs::create_dir_all(&manifests).unwrap();
        let ns = "kind: Namespace\nmetadata: {name: bench, labels: {team: bench}}\n";
        std::fs::write(manifests.join("namespace.yaml"), ns).unwrap();
        let conf = |name: &str, bridge: &str, subnet: &str| {
            let mut c = lab.bridge_conf("1.0.0", json!({"subnet": subnet}));
            c["name"] = name.into();
            c["bridge"] = bridge.into();
            c
        };
        let mut policed = conf("policed", "wcbpol", "10.70.0.0/16");
        policed["networkPolicy"] = json!({"manifests": manifests});
        let plain = conf("plain", "wcbplain", "10.71.0.0/16");
        let mut reference = conf("reference", "wcbref", "10.72.0.0/16");
        reference["type"] = "bridge".into();
        reference["ipam"]["type"] = "host-local".into();
        Node { lab, manifests, policed, plain, reference, pods: Vec::new() }
    }

    /// Execs one call; returns how long it took.
    fn call(&self, command: &str, conf: &Value, id: &str, args: &str, netns: &Netns) -> Duration {
        let plugin = match conf["type"].as_str().unwrap() {
            "bridge" => format!("{REFERENCE_DIR}/bridge"),
            other => other.to_owned(),
        };
        let path = netns.path();
        let i = Invoke { plugin: &plugin, command, container_id: id, netns: &path, ifname: "eth0", args, config: conf };
        let start = Instant::now();
        let out = self.lab.invoke(&i);
        let took = start.elapsed();
        assert!(out.ok, "{command} {id}: {}{}", out.stdout, out.stderr);
        took
    }

    /// Attaches one more pod to the policed network: `bench/p<n>`, labelled
    /// with its group.
    fn pod(&mut self) -> Duration {
        let n = self.pods.len();
        let netns = self.lab.container();
        let took = self.call("ADD", &self.policed, &format!("p{n}"), &args(n), &netns);
        self.pods.push(netns);
        took
    }

    fn write(&self, file: &str, text: &str) {
        let staged = self.manifests.join(format!(".{file}"));
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, self.manifests.join(file)).unwrap();
    }

    /// The Pod objects of `pods` pods, in groups.
    fn pod_manifests(&self, pods: usize) {
        let items: Vec<Value> = (0..pods)
            .map(|n| {
                json!({"kind": "Pod", "metadata": {"name": format!("p{n}"), "namespace": "bench",
                "labels": {"group": format!("g{}", n % GROUPS)}}})
            })
            .collect();
        self.write("pods.json", &json!({"kind": "List", "items": items}).to_string());
    }

    /// `count` policies: policy k isolates group k and lets in group k+1
    /// on `port`, TCP and UDP.
    fn policies(&self, count: usize, port: u16) {
        let items: Vec<Value> = (0..count)
            .map(|k| {
                let peer = json!({"podSelector": {"matchLabels": {"group": format!("g{}", (k + 1) % GROUPS)}}});
                let ports = json!([{"port": port}, {"protocol": "UDP", "port": port}]);
                json!({"kind": "NetworkPolicy", "metadata": {"name": format!("np{k}"), "namespace": "bench"},
                    "spec": {"podSelector": {"matchLabels": {"group": format!("g{}", k % GROUPS)}},
                        "ingress": [{"from": [peer], "ports": ports}]}})
            })
            .collect();
        self.write("policies.json", &json!({"kind": "NetworkPolicyList", "items": items}).to_string());
    }

    /// Replaces the policies `changes` times under a daemon watching every
    /// `interval_ms`, each time opening another port from group 1 to group
    /// 0: the p50 and p95 from the rename to pod 1's connection to pod 0 on
    /// that port going through.
    fn enforcement(&self, count: usize, changes: usize, interval_ms: &str) -> (f64, f64) {
        let daemon = Daemon::start(&self.lab, &["--watch-interval-ms", interval_ms]);
        let (from, to) = (self.pods[1].path(), &self.pods[0]);
        let ip: IpAddr = addr_of(&to.addrs("eth0")[0]).parse().unwrap();
        let period: u64 = interval_ms.parse().unwrap();
        // The daemon's first pass.
        std::thread::sleep(Duration::from_secs(2));
        let mut took = Vec::new();
        for k in 0..changes {
            let port = 81 + (k % 2) as u16;
            let start = Instant::now();
            self.policies(count, port);
            while !probe::reach(&from, vec![(ip, Port::Tcp(port))])[0] {
                assert!(start.elapsed() < Duration::from_secs(10), "port {port} never opened");
            }
            took.push(start.elapsed());
            // Each change lands alone, at a different point of the daemon's period.
            std::thread::sleep(Duration::from_millis(300 + (k as u64 * 397) % period));
        }
        self.policies(count, 80);
        drop(daemon);
        took.sort();
        (percentile(&took, 0.5), percentile(&took, 0.95))
    }

    /// Where one more pod's ADD spends its policy time, as the host logs it:
    /// reading the records and inputs, the module, the kernel.
    fn breakdown(&mut self) -> String {
        self.lab.extra_env.lock().unwrap().push(("WASMCNI_LOG".into(), "info".into()));
        let n = self.pods.len();
        let netns = self.lab.container();
        let path = netns.path();
        let args = args(n);
        let id = format!("p{n}");
        let i = Invoke {
            plugin: "wasm-bridge",
            command: "ADD",
            container_id: &id,
            netns: &path,
            ifname: "eth0",
            args: &args,
            config: &self.policed,
        };
        let out = self.lab.invoke(&i);
        self.lab.extra_env.lock().unwrap().pop();
        assert!(out.ok, "{}", out.stderr);
        self.pods.push(netns);
        let line = out.stderr.lines().find(|l| l.contains("network policy applied")).unwrap_or_default().to_owned();
        let field = |name: &str| {
            let at = line.find(&format!("{name}=")).map(|i| i + name.len() + 1).unwrap_or(line.len());
            line[at..].split_whitespace().next().unwrap_or("?").to_owned()
        };
        format!("inputs {} ms, module {} ms, kernel {} ms", field("inputs_ms"), field("module_ms"), field("kernel_ms"))
    }

    fn rules(&self) -> usize {
        let out = self.lab.host.must(&["nft", "list", "table", "inet", "wasmcni-netpol"]);
        out.lines().filter(|l| l.contains("return") || l.contains("reject")).count()
    }
}

fn args(n: usize) -> String {
    // As kubelet passes them: the reference plugins refuse unknown args without IgnoreUnknown.
    format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=p{n}")
}

/// ADD p50 of the three configs, `rounds` calls each, alternating; DELs
/// follow so the node keeps the pods it had.
fn adds(node: &Node, rounds: usize, first: usize) -> [f64; 3] {
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for r in 0..rounds {
        let n = first + r;
        let netns = [node.lab.container(), node.lab.container(), node.lab.container()];
        for (k, conf) in [&node.reference, &node.plain, &node.policed].into_iter().enumerate() {
            samples[k].push(node.call("ADD", conf, &format!("t{n}"), &args(n), &netns[k]));
        }
        for (k, conf) in [&node.reference, &node.plain, &node.policed].into_iter().enumerate() {
            node.call("DEL", conf, &format!("t{n}"), &args(n), &netns[k]);
        }
    }
    samples.map(|mut s| {
        s.sort();
        percentile(&s, 0.5)
    })
}

fn print_adds(label: &str, [reference, plain, policed]: [f64; 3]) {
    println!(
        "{label:<28} reference {reference:>7.2}  wasm-bridge {plain:>7.2}  with policy {policed:>7.2}  \
         policy's share {:>7.2} ms ({:.2}x the reference ADD)",
        policed - plain,
        policed / reference
    );
}

pub fn run(pods: usize, policies: usize, rounds: usize, changes: usize) {
    let mut node = Node::new();
    node.pod_manifests(pods);
    node.policies(1, 80);
    for _ in 0..10 {
        node.pod();
    }
    probe::serve(&node.pods[0].path(), &[Port::Tcp(81), Port::Tcp(82)]);
    println!("\nnetwork policy (k8s-networkpolicy module, nftables), times in ms");
    print_adds("ADD p50, 10 pods, 1 policy", adds(&node, rounds, pods));
    println!("  one such ADD's policy pass: {}", node.breakdown());
    let (p50, p95) = node.enforcement(1, changes, "1000");
    println!(
        "policy file change -> enforced, 10 pods, 1 policy, daemon watching every 1000 ms: p50 {p50:.1}  p95 {p95:.1}"
    );
    let (p50, p95) = node.enforcement(1, changes, "100");
    println!("  the same, watching every 100 ms: p50 {p50:.1}  p95 {p95:.1}");

    node.policies(policies, 80);
    let start = Instant::now();
    while node.pods.len() < pods {
        node.pod();
    }
    let grown = start.elapsed();
    println!(
        "{} more pods attached under {policies} policies in {:.1} s ({} rules in the node's table)",
        pods - 10,
        grown.as_secs_f64(),
        node.rules()
    );
    print_adds(&format!("ADD p50, {pods} pods, {policies} policies"), adds(&node, rounds, 2 * pods));
    println!("  one such ADD's policy pass: {}", node.breakdown());
    let (p50, p95) = node.enforcement(policies, changes, "100");
    println!(
        "policy file change -> enforced, {pods} pods, {policies} policies, watching every 100 ms: p50 {p50:.1}  p95 {p95:.1}"
    );
    for (n, netns) in node.pods.iter().enumerate() {
        node.call("DEL", &node.policed, &format!("p{n}"), &args(n), netns);
    }
}
