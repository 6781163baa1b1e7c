//! Every way a call can be wrong gets the spec's error code, a message a
//! person can act on, and leaves nothing behind.

use serde_json::{Value, json};
use wasmcni_e2e::{Invoke, Lab, module_dir, test_module};

fn call<'a>(command: &'a str, config: &'a Value, netns: &'a str) -> Invoke<'a> {
    Invoke { plugin: "wasm-bridge", command, container_id: "err-ctr", netns, ifname: "eth0", args: "", config }
}

fn host_links(lab: &Lab) -> Vec<String> {
    lab.host
        .ip_json(&["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn environment_errors_are_code_4_and_name_the_variable() {
    let lab = Lab::new();
    let c = lab.container();
    let conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.90.0.0/24"}));
    let out = lab.invoke(&Invoke { container_id: "", ..call("ADD", &conf, &c.path()) });
    assert_eq!(out.code(), 4);
    assert!(out.json()["msg"].as_str().unwrap().contains("CNI_CONTAINERID"), "{}", out.stdout);
    assert_eq!(lab.invoke(&Invoke { netns: "", ..call("ADD", &conf, "") }).code(), 4);
    assert_eq!(lab.invoke(&Invoke { container_id: "bad/id", ..call("ADD", &conf, &c.path()) }).code(), 4);
    assert_eq!(lab.invoke(&Invoke { ifname: "way-too-long-ifname", ..call("ADD", &conf, &c.path()) }).code(), 4);
    assert_eq!(lab.invoke(&Invoke { args: "garbage", ..call("ADD", &conf, &c.path()) }).code(), 4);
    assert_eq!(lab.invoke(&call("FROB", &conf, &c.path())).code(), 4);
    assert_eq!(lab.invoke(&call("ADD", &conf, "/nonexistent/netns")).code(), 4);
    assert!(!lab.host.has_link(&lab.bridge), "a refused call created the bridge");
}

#[test]
fn config_errors_have_the_spec_codes() {
    let lab = Lab::new();
    let c = lab.container();
    let good = lab.bridge_conf("1.0.0", json!({"subnet": "10.91.0.0/24"}));
    let cases: Vec<(Value, u64)> = vec![
        (json!("not an object"), 6),
        (json!({"cniVersion": "9.9.9", "name": "n", "type": "wasm-bridge"}), 1),
        (json!({"cniVersion": "1.0.0", "name": "bad name", "type": "wasm-bridge"}), 7),
        (json!({"cniVersion": "1.0.0", "name": "n", "type": "wasmcni", "plugin": "no-such-module"}), 7),
        (
            {
                let mut c = good.clone();
                c["ipam"]["subnet"] = "10.91.0.0/33".into();
                c
            },
            7,
        ),
        (
            {
                let mut c = good.clone();
                c["isGateway"] = "yes".into();
                c
            },
            7,
        ),
        (
            {
                let mut c = good.clone();
                c["mtu"] = json!([1500]);
                c
            },
            7,
        ),
        (
            {
                let mut c = good.clone();
                c["ipam"]["type"] = "no-such-ipam".into();
                c
            },
            7,
        ),
    ];
    for (conf, code) in cases {
        let out = lab.invoke(&call("ADD", &conf, &c.path()));
        assert_eq!(out.code(), code, "{conf} -> {}", out.stdout);
        assert!(!out.json()["msg"].as_str().unwrap().is_empty());
    }
    assert!(lab.leases().is_empty());
    assert!(!c.has_link("eth0"));
}

#[test]
fn stdin_that_is_not_json_is_code_6() {
    let lab = Lab::new();
    let c = lab.container();
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.host.name])
        .arg(wasmcni_e2e::bin_dir().join("wasm-bridge"))
        .envs([("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "x"), ("CNI_IFNAME", "eth0"), ("CNI_PATH", "/usr/lib/cni")])
        .env("CNI_NETNS", c.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"{ this is not json").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["code"], 6);
}

#[test]
fn commands_the_config_version_does_not_allow_are_code_1() {
    let lab = Lab::new();
    let c = lab.container();
    let old = lab.bridge_conf("0.3.1", json!({"subnet": "10.92.0.0/24"}));
    assert_eq!(lab.invoke(&call("CHECK", &old, &c.path())).code(), 1);
    let v1 = lab.bridge_conf("1.0.0", json!({"subnet": "10.92.0.0/24"}));
    assert_eq!(lab.invoke(&Invoke { container_id: "", ifname: "", ..call("STATUS", &v1, "") }).code(), 1);
    assert_eq!(lab.invoke(&Invoke { container_id: "", ifname: "", ..call("GC", &v1, "") }).code(), 1);
}

#[test]
fn version_lists_every_supported_version() {
    let lab = Lab::new();
    let conf = json!({"cniVersion": "0.4.0"});
    let out = lab.invoke(&Invoke { container_id: "", netns: "", ifname: "", ..call("VERSION", &conf, "") });
    let v = out.expect_ok().json();
    assert_eq!(v["cniVersion"], "0.4.0");
    assert_eq!(v["supportedVersions"], json!(["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]));
}

#[test]
fn a_pinned_sha256_that_does_not_match_is_refused_before_anything_happens() {
    let lab = Lab::new();
    let c = lab.container();
    let mut conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.93.0.0/24"}));
    conf["pluginSha256"] = "0".repeat(64).into();
    let out = lab.invoke(&call("ADD", &conf, &c.path()));
    assert_eq!(out.code(), 7);
    assert!(out.json()["msg"].as_str().unwrap().contains("pins"), "{}", out.stdout);
    assert!(!lab.host.has_link(&lab.bridge));

    let digest = wasmcni_e2e::must(&["sha256sum", module_dir().join("bridge.wasm").to_str().unwrap()]);
    conf["pluginSha256"] = digest.split_whitespace().next().unwrap().into();
    lab.invoke(&call("ADD", &conf, &c.path())).expect_ok();
}

#[test]
fn an_ipam_section_naming_a_network_plugin_is_refused_by_world() {
    let lab = Lab::new();
    let c = lab.container();
    let conf = lab.bridge_conf("1.0.0", json!({"type": "wasm-loopback", "subnet": "10.94.0.0/24"}));
    let out = lab.invoke(&call("ADD", &conf, &c.path()));
    assert_eq!(out.code(), 7);
    let msg = out.json()["msg"].as_str().unwrap().to_owned();
    assert!(msg.contains("@1.2.0, which the ipam world does not grant"), "{msg}");
    assert!(!c.has_link("eth0"), "the refused ADD left its veth");
}

#[test]
fn a_failing_add_after_ipam_releases_the_lease_and_removes_the_veth() {
    let lab = Lab::new();
    let c = lab.container();
    // The bridge already carries another address: the gateway step fails.
    lab.host.must(&["ip", "link", "add", &lab.bridge, "type", "bridge"]);
    lab.host.must(&["ip", "addr", "add", "10.95.9.9/24", "dev", &lab.bridge]);
    let conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.95.0.0/24"}));
    let before = host_links(&lab);
    let out = lab.invoke(&call("ADD", &conf, &c.path()));
    assert!(out.code() >= 100, "{}", out.stdout);
    assert!(out.json()["msg"].as_str().unwrap().contains("forceAddress"), "{}", out.stdout);
    assert!(lab.leases().is_empty(), "lease leaked: {:?}", lab.leases());
    assert_eq!(host_links(&lab), before, "host links leaked");
    assert!(!c.has_link("eth0"));

    let mut forced = conf.clone();
    forced["forceAddress"] = true.into();
    lab.invoke(&call("ADD", &forced, &c.path())).expect_ok();
    assert_eq!(lab.host.addrs(&lab.bridge), vec!["10.95.0.1/24".to_string()]);
}

fn hostile(lab: &Lab, mode: &str, limits: Value, target: &str) -> Value {
    json!({
        "cniVersion": "1.0.0", "name": lab.network, "type": "wasmcni", "plugin": test_module("hostile"),
        "mode": mode, "target": target, "limits": limits,
    })
}

#[test]
fn an_endless_loop_is_stopped_at_its_deadline() {
    let lab = Lab::new();
    let c = lab.container();
    let conf = hostile(&lab, "loop", json!({"timeoutMs": 300}), "");
    let out = lab.invoke(&Invoke { plugin: "wasmcni", ..call("ADD", &conf, &c.path()) });
    assert_eq!(out.code(), 100);
    let msg = out.json()["msg"].as_str().unwrap().to_owned();
    assert!(msg.contains("hostile") && msg.contains("timed out after 300 ms"), "{msg}");
}

#[test]
fn a_memory_bomb_hits_its_limit() {
    let lab = Lab::new();
    let c = lab.container();
    let conf = hostile(&lab, "memory", json!({"memoryMiB": 16}), "");
    let out = lab.invoke(&Invoke { plugin: "wasmcni", ..call("ADD", &conf, &c.path()) });
    assert_eq!(out.code(), 100);
    let msg = out.json()["msg"].as_str().unwrap().to_owned();
    assert!(msg.contains("memory limit of 16 MiB"), "{msg}");
}

#[test]
fn a_trap_becomes_a_cni_error() {
    let lab = Lab::new();
    let c = lab.container();
    let conf = hostile(&lab, "trap", json!({}), "");
    let out = lab.invoke(&Invoke { plugin: "wasmcni", ..call("ADD", &conf, &c.path()) });
    assert_eq!(out.code(), 100);
    assert!(out.json()["msg"].as_str().unwrap().contains("trapped"), "{}", out.stdout);
}

#[test]
fn touching_a_host_link_it_does_not_own_is_refused_and_undone() {
    let lab = Lab::new();
    let c = lab.container();
    lab.host.must(&["ip", "link", "add", "wcvictim", "type", "bridge"]);
    lab.host.must(&["ip", "link", "set", "wcvictim", "up"]);
    let before = host_links(&lab);
    let conf = hostile(&lab, "touch-host-link", json!({}), "wcvictim");
    let out = lab.invoke(&Invoke { plugin: "wasmcni", ..call("ADD", &conf, &c.path()) });
    assert_eq!(out.code(), 101, "{}", out.stdout);
    assert!(out.json()["msg"].as_str().unwrap().contains("wcvictim"), "{}", out.stdout);
    let victim = lab.host.ip_json(&["link", "show", "dev", "wcvictim"]);
    assert!(victim[0]["flags"].as_array().unwrap().contains(&json!("UP")), "the victim was touched");
    assert_eq!(host_links(&lab), before, "the veth the plugin made was not undone");
    assert!(!c.has_link("eth0"));
}
