//! What a container gets from the network: connectivity, IPv6 and dual
//! stack, requested addresses, masquerade, and leases under concurrency and GC.

use serde_json::{Value, json};
use std::thread;
use wasmcni_e2e::{Invoke, Lab, addr_of, result_ips};

fn nft_rules(lab: &Lab) -> String {
    String::from_utf8_lossy(&lab.host.exec(&["nft", "list", "ruleset"]).stdout).into_owned()
}

/// ping with a few tries: a fresh IPv6 gateway address may still be settling.
fn reaches(from: &wasmcni_e2e::Netns, addr: &str) -> bool {
    (0..5).any(|_| from.ping(addr))
}

#[test]
fn two_containers_reach_each_other_and_the_gateway() {
    let lab = Lab::new();
    let conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.80.0.0/24"}));
    let (a, b) = (lab.container(), lab.container());
    let ra = lab.cni("ADD", &conf, "ping-a", &a.path()).expect_ok().json();
    let rb = lab.cni("ADD", &conf, "ping-b", &b.path()).expect_ok().json();
    let (ipa, ipb) = (result_ips(&ra)[0].clone(), result_ips(&rb)[0].clone());
    assert_ne!(ipa, ipb);
    assert!(reaches(&a, addr_of(&ipb)), "a cannot reach b");
    assert!(reaches(&b, addr_of(&ipa)), "b cannot reach a");
    assert!(reaches(&a, "10.80.0.1"), "a cannot reach the gateway");
    lab.cni("DEL", &conf, "ping-a", &a.path()).expect_ok();
    assert!(!b.ping(addr_of(&ipa)), "a is still reachable after DEL");
}

#[test]
fn ipv6_and_dual_stack_range_sets() {
    let lab = Lab::new();
    let conf =
        lab.bridge_conf("1.1.0", json!({"ranges": [[{"subnet": "10.81.0.0/24"}], [{"subnet": "fd00:81::/64"}]]}));
    let (a, b) = (lab.container(), lab.container());
    let ra = lab.cni("ADD", &conf, "ds-a", &a.path()).expect_ok().json();
    let rb = lab.cni("ADD", &conf, "ds-b", &b.path()).expect_ok().json();
    let ips_a = result_ips(&ra);
    assert_eq!(ips_a.len(), 2, "{ra}");
    assert!(ips_a[0].starts_with("10.81.0.") && ips_a[1].starts_with("fd00:81::"), "{ips_a:?}");
    assert_eq!(a.addrs("eth0"), ips_a);
    let v6_b = addr_of(&result_ips(&rb)[1]).to_owned();
    assert!(reaches(&a, &v6_b), "no IPv6 path between the containers");
    assert!(reaches(&a, addr_of(&result_ips(&rb)[0])), "no IPv4 path between the containers");
    assert!(lab.host.addrs(&lab.bridge).contains(&"fd00:81::1/64".to_string()));
    assert_eq!(lab.leases().len(), 4);
    lab.cni("DEL", &conf, "ds-a", &a.path()).expect_ok();
    lab.cni("DEL", &conf, "ds-b", &b.path()).expect_ok();
    assert!(lab.leases().is_empty());
}

#[test]
fn ipv6_only_network() {
    let lab = Lab::new();
    let conf = lab.bridge_conf("1.0.0", json!({"ranges": [[{"subnet": "fd00:82::/120"}]]}));
    let c = lab.container();
    let r = lab.cni("ADD", &conf, "v6", &c.path()).expect_ok().json();
    assert_eq!(result_ips(&r), vec!["fd00:82::2/120".to_string()]);
    assert!(reaches(&c, "fd00:82::1"), "cannot reach the IPv6 gateway");
    lab.cni("DEL", &conf, "v6", &c.path()).expect_ok();
}

#[test]
fn requested_ip_from_cni_args_args_and_runtime_config() {
    let lab = Lab::new();
    let base = lab.bridge_conf("1.0.0", json!({"subnet": "10.83.0.0/24"}));
    let c1 = lab.container();
    let by_env = lab.invoke(&Invoke {
        plugin: "wasm-bridge",
        command: "ADD",
        container_id: "req-1",
        netns: &c1.path(),
        ifname: "eth0",
        args: "IgnoreUnknown=1;IP=10.83.0.50",
        config: &base,
    });
    assert_eq!(result_ips(&by_env.expect_ok().json()), vec!["10.83.0.50/24".to_string()]);

    let c2 = lab.container();
    let mut conf = base.clone();
    conf["runtimeConfig"] = json!({"ips": ["10.83.0.60/24"]});
    let r = lab.cni("ADD", &conf, "req-2", &c2.path()).expect_ok().json();
    assert_eq!(result_ips(&r), vec!["10.83.0.60/24".to_string()]);

    // Taken already: refused, and nothing is left behind.
    let c3 = lab.container();
    let mut conf = base.clone();
    conf["args"] = json!({"cni": {"ips": ["10.83.0.60"]}});
    let taken = lab.cni("ADD", &conf, "req-3", &c3.path());
    assert!(taken.code() >= 100);
    assert!(taken.json()["msg"].as_str().unwrap().contains("10.83.0.60"), "{}", taken.stdout);
    assert!(!c3.has_link("eth0"), "failed ADD left the veth behind");
    assert_eq!(lab.leases(), vec!["10.83.0.50", "10.83.0.60"]);
}

#[test]
fn ip_masq_rules_follow_the_container() {
    let lab = Lab::new();
    let mut conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.84.0.0/24"}));
    conf["ipMasq"] = true.into();
    let c = lab.container();
    let r = lab.cni("ADD", &conf, "masq", &c.path()).expect_ok().json();
    let ip = addr_of(&result_ips(&r)[0]).to_owned();
    let rules = nft_rules(&lab);
    // The container's address is an element of its network's set, which one rule masquerades.
    assert!(rules.contains(&format!("elements = {{ {ip}")) && rules.contains("masquerade"), "{rules}");
    assert!(rules.contains(&format!("chain masq-{}", lab.network)), "{rules}");
    lab.cni("DEL", &conf, "masq", &c.path()).expect_ok();
    let rules = nft_rules(&lab);
    assert!(!rules.contains(&ip), "{rules}");
}

#[test]
fn fifty_parallel_adds_get_fifty_distinct_addresses() {
    let lab = Lab::new();
    let conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.85.0.0/24"}));
    let containers: Vec<_> = (0..50).map(|_| lab.container()).collect();
    let ips: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = containers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (lab, conf) = (&lab, &conf);
                s.spawn(move || {
                    result_ips(&lab.cni("ADD", conf, &format!("par-{i}"), &c.path()).expect_ok().json())[0].clone()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut unique = ips.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 50, "{ips:?}");
    assert_eq!(lab.leases().len(), 50);
    for (i, c) in containers.iter().enumerate() {
        assert_eq!(c.addrs("eth0"), vec![ips[i].clone()]);
    }
}

fn gc_conf(lab: &Lab, key: &str, valid: &[&str]) -> Value {
    let mut conf = lab.bridge_conf("1.1.0", json!({"subnet": "10.86.0.0/24"}));
    conf["ipMasq"] = true.into();
    let list: Vec<Value> = valid.iter().map(|id| json!({"containerID": id, "ifname": "eth0"})).collect();
    conf[key] = list.into();
    conf
}

#[test]
fn gc_releases_exactly_what_no_valid_attachment_owns() {
    let lab = Lab::new();
    let conf = gc_conf(&lab, "cni.dev/valid-attachments", &[]);
    let cs: Vec<_> = (0..3).map(|_| lab.container()).collect();
    let mut ips = Vec::new();
    for (i, c) in cs.iter().enumerate() {
        let r = lab.cni("ADD", &conf, &format!("gc-{i}"), &c.path()).expect_ok().json();
        ips.push(addr_of(&result_ips(&r)[0]).to_owned());
    }
    assert_eq!(lab.leases().len(), 3);
    // Each ADD is recorded; GC forgets the records of what it collects.
    let records = || {
        let dir = lab.state_dir().join("attachments").join(&lab.network).join("wasm-bridge");
        let files = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>());
        let mut owners: Vec<String> = files
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let record: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
                record["container_id"].as_str().unwrap().to_owned()
            })
            .collect();
        owners.sort();
        owners
    };
    assert_eq!(records(), ["gc-0", "gc-1", "gc-2"]);

    let gc = |key: &str, valid: &[&str]| {
        let conf = gc_conf(&lab, key, valid);
        lab.invoke(&Invoke {
            plugin: "wasm-bridge",
            command: "GC",
            container_id: "",
            netns: "",
            ifname: "",
            args: "",
            config: &conf,
        })
        .expect_ok();
    };
    gc("cni.dev/valid-attachments", &["gc-0", "gc-2"]);
    let mut want = vec![ips[0].clone(), ips[2].clone()];
    want.sort();
    assert_eq!(lab.leases(), want);
    let rules = nft_rules(&lab);
    assert!(rules.contains(&ips[0]) && rules.contains(&ips[2]) && !rules.contains(&ips[1]), "{rules}");
    assert_eq!(records(), ["gc-0", "gc-2"]);

    // The older key is honoured too.
    gc("cni.dev/attachments", &["gc-2"]);
    assert_eq!(lab.leases(), vec![ips[2].clone()]);
    assert_eq!(records(), ["gc-2"]);
}

#[test]
fn status_reports_an_exhausted_range_with_code_50() {
    let lab = Lab::new();
    let conf = lab
        .bridge_conf("1.1.0", json!({"subnet": "10.87.0.0/24", "rangeStart": "10.87.0.10", "rangeEnd": "10.87.0.11"}));
    let status = |lab: &Lab| {
        lab.invoke(&Invoke {
            plugin: "wasm-bridge",
            command: "STATUS",
            container_id: "",
            netns: "",
            ifname: "",
            args: "",
            config: &conf,
        })
    };
    status(&lab).expect_ok();
    let (a, b, c) = (lab.container(), lab.container(), lab.container());
    lab.cni("ADD", &conf, "st-a", &a.path()).expect_ok();
    lab.cni("ADD", &conf, "st-b", &b.path()).expect_ok();
    assert_eq!(status(&lab).code(), 50);
    assert_eq!(lab.cni("ADD", &conf, "st-c", &c.path()).code(), 50);
    assert!(!c.has_link("eth0"));
}
