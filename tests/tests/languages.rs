//! IPAM policies written in Python and JavaScript run through the host
//! exactly like the Rust one: the same lowest-free policy, the same config,
//! the same leases, under the bridge. Built by scripts/build-languages.sh.

use serde_json::json;
use std::process::Command;
use wasmcni_e2e::{Lab, cache_dir, example_module, result_ips, wasmcni_bin};

fn lifecycle(module: &str, subnet_prefix: &str) {
    // As deployed: compiling a 12-18 MB interpreter module takes seconds,
    // which `wasmcni precompile` (or `install`) spends ahead of the first call.
    let out = Command::new(wasmcni_bin())
        .args(["precompile", &example_module(module)])
        .env("WASMCNI_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lab = Lab::new();
    let ipam = json!({"type": "wasmcni", "plugin": example_module(module), "subnet": format!("{subnet_prefix}.0/24")});
    let mut conf = lab.bridge_conf("1.1.0", ipam);
    let ip = |host: u8| format!("{subnet_prefix}.{host}/24");
    let (a, b, c) = (lab.container(), lab.container(), lab.container());

    let ra = lab.cni("ADD", &conf, "a", &a.path()).expect_ok().json();
    assert_eq!(result_ips(&ra), [ip(2)], "{module}");
    let rb = lab.cni("ADD", &conf, "b", &b.path()).expect_ok().json();
    assert_eq!(result_ips(&rb), [ip(3)], "{module}");
    lab.cni("DEL", &conf, "a", &a.path()).expect_ok();
    // Lowest free: the released .2 comes back (host-local's round-robin would give .4).
    let rc = lab.cni("ADD", &conf, "c", &c.path()).expect_ok().json();
    assert_eq!(result_ips(&rc), [ip(2)], "{module}");
    assert!(c.ping(&format!("{subnet_prefix}.3")), "{module}: c cannot reach b");
    assert_eq!(lab.lease_content(&format!("{subnet_prefix}.2")).lines().next(), Some("c"));

    let mut check = conf.clone();
    check["prevResult"] = rc;
    lab.cni("CHECK", &check, "c", &c.path()).expect_ok();
    lab.cni("STATUS", &conf, "", "").expect_ok();

    conf["cni.dev/valid-attachments"] = json!([{"containerID": "c", "ifname": "eth0"}]);
    lab.cni("GC", &conf, "", "").expect_ok();
    assert_eq!(lab.leases(), [format!("{subnet_prefix}.2")], "{module}: GC kept the wrong leases");
    lab.cni("DEL", &conf, "c", &c.path()).expect_ok();
    lab.cni("DEL", &conf, "b", &b.path()).expect_ok();
    assert!(lab.leases().is_empty(), "{module}: {:?}", lab.leases());
}

#[test]
fn the_python_ipam_runs_like_the_rust_one() {
    lifecycle("ipam-python", "10.95.0");
}

#[test]
fn the_javascript_ipam_runs_like_the_rust_one() {
    lifecycle("ipam-js", "10.96.0");
}

#[test]
fn the_rust_ipam_passes_the_same_lifecycle() {
    lifecycle("lowest-free", "10.97.0");
}
