//! Policies run before a plugin's ADD: a deny creates nothing and carries
//! the reason; an allow with changes steers IPAM, Wasm or exec'd.

use serde_json::{Value, json};
use wasmcni_e2e::{Invoke, Lab, Netns, addr_of, example_module, result_ips, test_module};

fn add_in(lab: &Lab, conf: &Value, c: &Netns, id: &str, namespace: &str) -> wasmcni_e2e::CniOut {
    let args = format!("IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace}");
    let path = c.path();
    lab.invoke(&Invoke {
        plugin: "wasm-bridge",
        command: "ADD",
        container_id: id,
        netns: &path,
        ifname: "eth0",
        args: &args,
        config: conf,
    })
}

#[test]
fn a_denied_add_creates_nothing_and_says_why() {
    let lab = Lab::new();
    let mut conf = lab.bridge_conf("1.1.0", json!({"subnet": "10.86.0.0/24"}));
    conf["policies"] = json!([{"plugin": example_module("namespace-allowlist"), "namespaces": ["prod"]}]);

    let c = lab.container();
    let out = add_in(&lab, &conf, &c, "denied", "dev");
    assert_eq!(out.code(), 103, "{}", out.stdout);
    let msg = out.json()["msg"].as_str().unwrap().to_owned();
    assert_eq!(
        msg,
        format!("policy namespace-allowlist denied the ADD: namespace dev may not attach to network {}", lab.network)
    );
    assert!(!c.has_link("eth0"), "a denied ADD made the container's interface");
    assert!(!lab.host.has_link(&lab.bridge), "a denied ADD made the bridge");
    assert!(lab.leases().is_empty(), "a denied ADD took a lease: {:?}", lab.leases());

    let admitted = lab.container();
    let r = add_in(&lab, &conf, &admitted, "admitted", "prod").expect_ok().json();
    assert_eq!(result_ips(&r), ["10.86.0.2/24"]);
    assert!(admitted.ping("10.86.0.1"), "the admitted container cannot reach its gateway");
    lab.cni("DEL", &conf, "admitted", &admitted.path()).expect_ok();
    assert!(lab.leases().is_empty());
}

#[test]
fn the_pods_namespace_picks_its_pool_with_wasm_or_reference_ipam() {
    for ipam in ["wasm-host-local", "host-local"] {
        let lab = Lab::new();
        let mut conf = lab.bridge_conf("1.0.0", json!({"type": ipam, "subnet": "10.87.0.0/24"}));
        // One IPv4 gateway per bridge: the pools share the bridge as plain L2.
        conf["isGateway"] = json!(false);
        conf["policies"] = json!([
            {"plugin": example_module("namespace-allowlist"), "namespaces": ["prod", "dev", "qa"]},
            {"plugin": example_module("pool-by-namespace"), "pools": {
                "prod": {"subnet": "10.88.0.0/24"},
                "dev": {"subnet": "10.89.0.0/24", "rangeStart": "10.89.0.100"}}},
        ]);
        let pods = [
            ("prod-a", "prod", "10.88.0.2/24"),
            ("prod-b", "prod", "10.88.0.3/24"),
            ("dev-a", "dev", "10.89.0.100/24"),
            ("qa-a", "qa", "10.87.0.2/24"),
        ];
        let mut containers = Vec::new();
        for (id, ns, want) in pods {
            let c = lab.container();
            let r = add_in(&lab, &conf, &c, id, ns).expect_ok().json();
            assert_eq!(result_ips(&r), [want], "{ipam}, namespace {ns}");
            assert_eq!(c.addrs("eth0"), [want]);
            containers.push(c);
        }
        assert!(containers[0].ping("10.88.0.3"), "{ipam}: prod pods cannot reach each other");
        assert_eq!(add_in(&lab, &conf, &lab.container(), "other", "kube-system").code(), 103);
        for ((id, _, want), c) in pods.iter().zip(&containers) {
            assert!(lab.leases().contains(&addr_of(want).to_owned()));
            lab.cni("DEL", &conf, id, &c.path()).expect_ok();
        }
        assert!(lab.leases().is_empty(), "{ipam}: {:?}", lab.leases());
    }
}

#[test]
fn policies_and_plugins_do_not_stand_in_for_each_other() {
    let lab = Lab::new();
    let c = lab.container();
    let mut conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.90.0.0/24"}));
    conf["policies"] = json!([{"plugin": "bridge"}]);
    let out = add_in(&lab, &conf, &c, "p", "prod");
    assert_eq!(out.code(), 7);
    assert!(out.json()["msg"].as_str().unwrap().contains("does not export wasmcni:plugin/admission"), "{}", out.stdout);

    let as_plugin = json!({"cniVersion": "1.0.0", "name": lab.network, "type": "wasmcni",
        "plugin": example_module("namespace-allowlist")});
    let out = lab.cni("ADD", &as_plugin, "p", &c.path());
    assert_eq!(out.code(), 7);
    assert!(out.json()["msg"].as_str().unwrap().contains("is a policy"), "{}", out.stdout);
    assert!(!c.has_link("eth0") && !lab.host.has_link(&lab.bridge));
}

#[test]
fn a_policy_that_imports_what_its_world_does_not_grant_is_refused_at_load() {
    let lab = Lab::new();
    let c = lab.container();
    let mut conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.91.0.0/24"}));
    conf["policies"] = json!([{"plugin": test_module("overreach")}]);
    let out = add_in(&lab, &conf, &c, "o", "prod");
    assert_eq!(out.code(), 7, "{}", out.stdout);
    let msg = out.json()["msg"].as_str().unwrap().to_owned();
    assert!(
        msg.contains("module overreach imports wasmcni:plugin/links@1.2.0, which the policy world does not grant"),
        "{msg}"
    );
    assert!(!c.has_link("eth0") && !lab.host.has_link(&lab.bridge) && lab.leases().is_empty());
}
