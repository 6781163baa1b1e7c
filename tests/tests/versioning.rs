//! The host keeps serving modules built for earlier package versions:
//! test-modules/legacy-* were built against the frozen 0.1.0
//! (wit/compat/0.1.0), test-modules/v0-2-* against the frozen 0.2.0 and
//! test-modules/v1-0-* against the frozen 1.0.0; they run here next to the
//! 1.1 first-party modules.

use serde_json::{Value, json};
use wasmcni_e2e::{Lab, result_ips, test_module};

fn legacy_ipam(lab: &Lab, subnet: &str) -> Value {
    json!({"type": "wasmcni", "plugin": test_module("legacy-ipam"), "subnet": subnet,
        "dataDir": lab.data_dir.display().to_string()})
}

#[test]
fn modules_are_inspected_with_the_version_they_were_built_for() {
    for (name, version, export) in [
        ("legacy-ipam", "0.1.0", "handler"),
        ("legacy-plugin", "0.1.0", "handler"),
        ("v0-2-plugin", "0.2.0", "handler"),
        ("v0-2-policy", "0.2.0", "admission"),
        ("v1-0-policy", "1.0.0", "admission"),
    ] {
        let out = wasmcni_e2e::must(&[wasmcni_e2e::wasmcni_bin().to_str().unwrap(), "inspect", &test_module(name)]);
        let info: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(info["wit_version"], version, "{info}");
        let export = format!("wasmcni:plugin/{export}@{version}");
        assert!(info["exports"].as_array().unwrap().contains(&json!(export)), "{info}");
    }
}

#[test]
fn a_0_1_plugin_and_its_0_1_ipam_run_the_whole_lifecycle_on_the_1_1_host() {
    let lab = Lab::new();
    let c = lab.container();
    c.must(&["ip", "link", "set", "lo", "down"]);
    let conf = json!({"cniVersion": "1.1.0", "name": lab.network, "type": "wasmcni",
        "plugin": test_module("legacy-plugin"), "ipam": legacy_ipam(&lab, "10.92.0.0/24")});
    let r = lab.cni("ADD", &conf, "legacy", &c.path()).expect_ok().json();
    assert_eq!(result_ips(&r), ["10.92.0.2/24"]);
    assert_eq!(r["interfaces"][0]["name"], "lo");
    assert_eq!(r["interfaces"][0]["sandbox"], c.path());
    let lo = c.ip_json(&["link", "show", "dev", "lo"]);
    assert!(lo[0]["flags"].as_array().unwrap().contains(&json!("UP")), "{lo}");
    assert_eq!(lab.leases(), ["10.92.0.2"]);
    assert!(lab.lease_content("10.92.0.2").starts_with("legacy"));

    let mut check = conf.clone();
    check["prevResult"] = r;
    lab.cni("CHECK", &check, "legacy", &c.path()).expect_ok();
    lab.cni("DEL", &conf, "legacy", &c.path()).expect_ok();
    assert!(lab.leases().is_empty());
    lab.cni("DEL", &conf, "legacy", &c.path()).expect_ok();
}

#[test]
fn a_1_1_bridge_delegates_to_a_0_1_ipam() {
    let lab = Lab::new();
    let c = lab.container();
    let conf = lab.bridge_conf("1.0.0", legacy_ipam(&lab, "10.93.0.0/24"));
    let r = lab.cni("ADD", &conf, "mixed", &c.path()).expect_ok().json();
    assert_eq!(result_ips(&r), ["10.93.0.2/24"]);
    assert!(c.ping("10.93.0.1"), "the container cannot reach the bridge gateway");
    lab.cni("DEL", &conf, "mixed", &c.path()).expect_ok();
    assert!(lab.leases().is_empty());
}

#[test]
fn a_0_2_plugin_with_a_1_1_ipam_runs_the_whole_lifecycle_through_the_string_contract() {
    let lab = Lab::new();
    let c = lab.container();
    let ipam =
        json!({"type": "wasm-host-local", "subnet": "10.94.0.0/24", "dataDir": lab.data_dir.display().to_string()});
    let conf = json!({"cniVersion": "1.0.0", "name": lab.network, "type": "wasmcni",
        "plugin": test_module("v0-2-plugin"), "ipMasq": true, "ipam": ipam});
    let r = lab.cni("ADD", &conf, "v02", &c.path()).expect_ok().json();
    assert_eq!(result_ips(&r), ["10.94.0.2/24"]);
    assert_eq!(r["interfaces"][1]["sandbox"], c.path());
    assert!(r["interfaces"][0].get("sandbox").is_none(), "an empty 0.2 sandbox is a host interface: {r}");
    let mac = r["interfaces"][1]["mac"].as_str().unwrap();
    assert_eq!(mac.len(), 17, "{r}");
    assert!(c.ping("10.94.0.1"), "the container cannot reach its gateway on the host end");
    assert_eq!(lab.masq_elements(), ["10.94.0.2"]);
    let host_end = r["interfaces"][0]["name"].as_str().unwrap();
    let proxy_arp = format!("/proc/sys/net/ipv4/conf/{host_end}/proxy_arp");
    assert_eq!(lab.host.must(&["cat", &proxy_arp]).trim(), "1");

    let mut check = conf.clone();
    check["prevResult"] = r;
    lab.cni("CHECK", &check, "v02", &c.path()).expect_ok();
    lab.cni("DEL", &conf, "v02", &c.path()).expect_ok();
    assert!(lab.leases().is_empty() && lab.masq_elements().is_empty());
    assert!(!c.has_link("eth0"));
    lab.cni("DEL", &conf, "v02", &c.path()).expect_ok();
}

/// A policy that asks for `asked` (an address, as its version writes one)
/// and a route to 192.0.2.0/24: both reach the 1.1 bridge's result, and
/// DEL releases the address.
fn policy_changes_reach_the_bridge(module: &str, subnet: &str, asked: &str, got: &str) {
    let lab = Lab::new();
    let c = lab.container();
    let mut conf = lab.bridge_conf("1.0.0", json!({"subnet": subnet}));
    conf["policies"] = json!([{"plugin": test_module(module), "ip": asked}]);
    let r = lab.cni("ADD", &conf, "pol", &c.path()).expect_ok().json();
    assert_eq!(result_ips(&r), [got]);
    let routes = r["routes"].as_array().unwrap();
    assert!(routes.iter().any(|r| r["dst"] == "192.0.2.0/24"), "{r}");
    lab.cni("DEL", &conf, "pol", &c.path()).expect_ok();
    assert!(lab.leases().is_empty());
}

#[test]
fn a_0_2_policy_s_string_changes_reach_a_1_1_bridge_and_ipam() {
    policy_changes_reach_the_bridge("v0-2-policy", "10.97.0.0/24", "10.97.0.9/24", "10.97.0.9/24");
}

#[test]
fn a_1_0_policy_s_typed_changes_reach_a_1_1_bridge_and_ipam() {
    policy_changes_reach_the_bridge("v1-0-policy", "10.98.0.0/24", "10.98.0.9", "10.98.0.9/24");
}
