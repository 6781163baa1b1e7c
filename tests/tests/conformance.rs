//! `wasmcni test`: every first-party and example module passes the
//! conformance run of its world, and a module that breaks the contract
//! fails it, with the failing check named and a non-zero exit.

use std::process::{Command, Output};
use wasmcni_e2e::{cache_dir, example_module, module_dir, test_module, wasmcni_bin};

fn conformance(module: &str, extra: &[&str]) -> Output {
    Command::new(wasmcni_bin())
        .arg("test")
        .arg(module)
        .args(extra)
        .arg("--module-dir")
        .arg(module_dir())
        .env("WASMCNI_CACHE_DIR", cache_dir())
        .output()
        .expect("run wasmcni test")
}

#[track_caller]
fn passes(module: &str, extra: &[&str]) {
    let out = conformance(module, extra);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{module}:\n{table}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains(" 0 failed"), "{table}");
    assert!(!table.contains("FAIL"), "{table}");
}

fn first_party(name: &str) -> String {
    module_dir().join(format!("{name}.wasm")).display().to_string()
}

#[test]
fn the_first_party_handlers_pass_the_cni_contract() {
    for name in ["bridge", "host-local", "loopback"] {
        passes(&first_party(name), &[]);
    }
    passes(
        &first_party("custom-route"),
        &["--chained", "--config", r#"{"rules": [{"dst": "172.20.0.0/16", "dev": "eth0"}]}"#],
    );
}

#[test]
fn the_first_party_routing_and_netpol_modules_pass_their_calls() {
    for name in ["host-gw", "vxlan", "k8s-networkpolicy"] {
        passes(&first_party(name), &[]);
    }
}

#[test]
fn the_example_modules_pass() {
    for name in ["lowest-free", "ipam-python", "ipam-js", "namespace-isolation"] {
        passes(&example_module(name), &[]);
    }
    passes(&example_module("namespace-allowlist"), &["--config", r#"{"namespaces": ["conformance"]}"#]);
    passes(
        &example_module("pool-by-namespace"),
        &["--config", r#"{"pools": {"conformance": {"subnet": "10.223.0.0/24"}}}"#],
    );
}

#[test]
fn a_module_whose_del_leaks_its_veth_fails_the_run() {
    let out = conformance(&test_module("hostile"), &["--config", r#"{"mode": "leak"}"#]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{table}");
    let del = table.lines().find(|l| l.starts_with("DEL ")).unwrap_or_default();
    assert!(del.contains("FAIL") && del.contains("eth0"), "{table}");
    let left = table.lines().find(|l| l.starts_with("ADD killed after 20 ms")).unwrap_or_default();
    assert!(left.contains("FAIL"), "{table}");
}

#[test]
fn a_module_that_traps_fails_the_add_and_the_run() {
    let out = conformance(&test_module("hostile"), &["--config", r#"{"mode": "trap"}"#]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{table}");
    let add = table.lines().find(|l| l.starts_with("ADD ")).unwrap_or_default();
    assert!(add.contains("FAIL") && add.contains("trapped"), "{table}");
}

#[test]
fn a_run_removes_what_a_killed_run_left() {
    // A pid no process has any more: that of a child already reaped.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let (netns, scratch) =
        (format!("wct{}n0", gone.id()), std::env::temp_dir().join(format!("wct{}-conformance-1", gone.id())));
    assert!(Command::new("ip").args(["netns", "add", &netns]).status().unwrap().success());
    std::fs::create_dir_all(&scratch).unwrap();
    passes(&first_party("host-local"), &[]);
    assert!(!std::path::Path::new(&format!("/run/netns/{netns}")).exists(), "{netns} is left");
    assert!(!scratch.exists(), "{} is left", scratch.display());
}
