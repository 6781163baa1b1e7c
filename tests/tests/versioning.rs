//! The host keeps serving modules built for an older minor of the WIT
//! package: test-modules/legacy-* were built against the frozen 0.1.0
//! (wit/compat/0.1.0) and run here next to 0.2.0 modules.

use serde_json::{Value, json};
use wasmcni_e2e::{Lab, result_ips, test_module};

fn legacy_ipam(lab: &Lab, subnet: &str) -> Value {
    json!({"type": "wasmcni", "plugin": test_module("legacy-ipam"), "subnet": subnet,
        "dataDir": lab.data_dir.display().to_string()})
}

#[test]
fn modules_built_for_wit_0_1_are_inspected_as_such() {
    for name in ["legacy-ipam", "legacy-plugin"] {
        let out = wasmcni_e2e::must(&[wasmcni_e2e::wasmcni_bin().to_str().unwrap(), "inspect", &test_module(name)]);
        let info: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(info["wit_version"], "0.1.0", "{info}");
        assert!(info["exports"].as_array().unwrap().contains(&json!("wasmcni:plugin/handler@0.1.0")));
    }
}

#[test]
fn a_0_1_plugin_and_its_0_1_ipam_run_the_whole_lifecycle_on_the_0_2_host() {
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
fn a_0_2_bridge_delegates_to_a_0_1_ipam() {
    let lab = Lab::new();
    let c = lab.container();
    let conf = lab.bridge_conf("1.0.0", legacy_ipam(&lab, "10.93.0.0/24"));
    let r = lab.cni("ADD", &conf, "mixed", &c.path()).expect_ok().json();
    assert_eq!(result_ips(&r), ["10.93.0.2/24"]);
    assert!(c.ping("10.93.0.1"), "the container cannot reach the bridge gateway");
    lab.cni("DEL", &conf, "mixed", &c.path()).expect_ok();
    assert!(lab.leases().is_empty());
}
