//! `wasmcni new` makes crates that test and build, and whose modules the
//! host runs: the IPAM one as a bridge's IPAM, the network one chained
//! after the bridge, the policy one before the bridge's ADD, the netpol one
//! by `wasmcni netpol`.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use wasmcni_e2e::{Invoke, Lab, cache_dir, module_dir, result_ips, unique, wasmcni_bin, workspace};

fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        // One target dir for both crates and across runs.
        .env("CARGO_TARGET_DIR", workspace().join("target/scaffold"))
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{args:?} in {} failed:\n{text}", dir.display());
    text
}

/// Creates, tests and builds a plugin; returns its module.
fn scaffold(root: &Path, name: &str, kind: &str) -> PathBuf {
    run(root, &[wasmcni_bin().to_str().unwrap(), "new", name, "--kind", kind]);
    let dir = root.join(name);
    assert!(dir.join("README.md").is_file());
    let tests = run(&dir, &["cargo", "test"]);
    assert!(tests.contains("test result: ok.") && !tests.contains(" 0 passed"), "{tests}");
    run(&dir, &["cargo", "build", "--release", "--target", "wasm32-wasip2"]);
    workspace().join("target/scaffold/wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")))
}

#[test]
fn scaffolded_plugins_test_build_and_run_in_the_host() {
    let root = std::env::temp_dir().join(unique("wcni-new-"));
    std::fs::create_dir_all(&root).unwrap();
    let ipam = scaffold(&root, "my-ipam", "ipam");
    let tuning = scaffold(&root, "my-tuning", "cni");
    let policy = scaffold(&root, "my-policy", "policy");
    let netpol = scaffold(&root, "my-netpol", "netpol");
    let manifests = root.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let pods = r#"{"kind": "PodList", "items": [
        {"metadata": {"name": "a", "namespace": "x", "labels": {"isolated": "true"}}, "status": {"podIP": "10.9.0.1"}},
        {"metadata": {"name": "b", "namespace": "y"}, "status": {"podIP": "10.9.0.2"}}]}"#;
    std::fs::write(manifests.join("pods.json"), pods).unwrap();
    let cache = cache_dir();
    let rules = run(
        &root,
        &[
            wasmcni_bin().to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
            "netpol",
            "--module",
            netpol.to_str().unwrap(),
            "--manifests",
            manifests.to_str().unwrap(),
            "--local",
            "x/a",
        ],
    );
    let rules: serde_json::Value = serde_json::from_str(&rules).unwrap();
    assert_eq!(rules[0]["ingressIsolated"], true, "{rules}");
    assert_eq!(rules[0]["ingress"][0]["peers"], json!(["10.9.0.1/32"]), "{rules}");
    let inspect = run(&root, &[wasmcni_bin().to_str().unwrap(), "inspect", tuning.to_str().unwrap()]);
    assert!(inspect.contains("\"world\": \"cni-plugin\""), "{inspect}");

    let lab = Lab::new();
    let c = lab.container();
    let mut bridge = lab.bridge_conf("1.0.0", json!({"subnet": "10.58.0.0/24"}));
    bridge["ipam"]["type"] = "wasmcni".into();
    bridge["ipam"]["plugin"] = ipam.display().to_string().into();
    bridge["policies"] = json!([{"plugin": policy.display().to_string(), "deny": ["blocked"]}]);
    let add = |args: &str| {
        let path = c.path();
        lab.invoke(&Invoke {
            plugin: "wasm-bridge",
            command: "ADD",
            container_id: "scaffold",
            netns: &path,
            ifname: "eth0",
            args,
            config: &bridge,
        })
    };
    let denied = add("K8S_POD_NAMESPACE=blocked");
    assert_eq!(denied.code(), 103, "{}", denied.stdout);
    assert!(!c.has_link("eth0") && lab.leases().is_empty());
    let result = add("K8S_POD_NAMESPACE=prod").expect_ok().json();
    assert_eq!(result_ips(&result), vec!["10.58.0.2/24".to_string()]);

    let chained = json!({
        "cniVersion": "1.0.0", "name": lab.network, "type": "wasmcni",
        "plugin": tuning.display().to_string(), "proxyArp": true, "prevResult": result,
    });
    let out = lab.invoke(&Invoke {
        plugin: "wasmcni",
        command: "ADD",
        container_id: "scaffold",
        netns: &c.path(),
        ifname: "eth0",
        args: "",
        config: &chained,
    });
    assert_eq!(result_ips(&out.expect_ok().json()), result_ips(&result));
    assert_eq!(c.must(&["sysctl", "-n", "net.ipv4.conf.eth0.proxy_arp"]).trim(), "1");
    std::fs::remove_dir_all(&root).unwrap();
}

/// With no checkout, from a scratch directory with only the installed
/// binary: it carries the SDKs, unpacks them into the user's cache and
/// scaffolds against them, in each language; the plugin's tests pass, its
/// module builds, passes `wasmcni test` and serves an ADD as a bridge's IPAM.
#[test]
fn an_installed_binary_scaffolds_plugins_in_each_language_that_pass_conformance_and_run() {
    let root = std::env::temp_dir().join(unique("wcni-installed-"));
    let (bin, cache, work) = (root.join("bin"), root.join("cache"), root.join("work"));
    for d in [&bin, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(wasmcni_bin(), bin.join("wasmcni")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let wasmcni = |dir: &Path, args: &[&str]| {
        let out = Command::new("wasmcni")
            .args(args)
            .current_dir(dir)
            .env("PATH", &path)
            .env("XDG_CACHE_HOME", &cache)
            .env("WASMCNI_CACHE_DIR", cache_dir())
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "wasmcni {args:?}:\n{text}");
        text
    };
    for (i, lang) in ["rust", "python", "js"].into_iter().enumerate() {
        let name = format!("p-{lang}");
        wasmcni(&work, &["new", &name, "--kind", "ipam", "--lang", lang]);
        let dir = work.join(&name);
        let module = if lang == "rust" {
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            assert!(manifest.contains(cache.join("wasmcni").to_str().unwrap()), "the unpacked SDK is used: {manifest}");
            assert!(!manifest.contains(workspace().to_str().unwrap()), "not the checkout's: {manifest}");
            let tests = run(&dir, &["cargo", "test"]);
            assert!(tests.contains("test result: ok.") && !tests.contains(" 0 passed"), "{tests}");
            run(&dir, &["cargo", "build", "--release", "--target", "wasm32-wasip2"]);
            workspace().join("target/scaffold/wasm32-wasip2/release/p_rust.wasm")
        } else {
            // build.sh installs the tools, runs the tests and builds the module.
            let built = run(&dir, &["./build.sh"]);
            assert!(built.contains("passed") || built.contains("# pass"), "{lang}: no tests ran:\n{built}");
            dir.join(format!("{name}.wasm"))
        };
        let conformance =
            wasmcni(&work, &["test", module.to_str().unwrap(), "--module-dir", module_dir().to_str().unwrap()]);
        assert!(conformance.contains(" 0 failed"), "{conformance}");

        let lab = Lab::new();
        let c = lab.container();
        let mut bridge = lab.bridge_conf("1.0.0", json!({"subnet": format!("10.59.{i}.0/24")}));
        bridge["ipam"]["type"] = "wasmcni".into();
        bridge["ipam"]["plugin"] = module.display().to_string().into();
        let netns = c.path();
        let add = Invoke {
            plugin: "wasm-bridge",
            command: "ADD",
            container_id: "p",
            netns: &netns,
            ifname: "eth0",
            args: "",
            config: &bridge,
        };
        assert_eq!(result_ips(&lab.invoke(&add).expect_ok().json()), vec![format!("10.59.{i}.2/24")], "{lang}");
        lab.invoke(&Invoke { command: "DEL", ..add }).expect_ok();
    }
    std::fs::remove_dir_all(&root).unwrap();
}
