//! `wasmcni install` lays out a CNI bin dir and a module dir that work.

use std::process::Command;
use wasmcni_e2e::{unique, wasmcni_bin};

#[test]
fn install_creates_the_binary_links_and_precompiled_modules() {
    let root = std::env::temp_dir().join(unique("wcni-install-"));
    let (bin, wasm, cache) = (root.join("bin"), root.join("wasm"), root.join("cache"));
    let out = Command::new(wasmcni_bin())
        .args(["install", "--bin-dir"])
        .arg(&bin)
        .arg("--module-dir")
        .arg(&wasm)
        .env("WASMCNI_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(wasm.join("host-gw.wasm").is_file(), "the routing module");
    assert!(!bin.join("wasm-host-gw").exists(), "a routing module is not exec'd by runtimes");
    for name in ["bridge", "host-local", "loopback", "custom-route"] {
        assert!(wasm.join(format!("{name}.wasm")).is_file(), "{name} module");
        let link = std::fs::read_link(bin.join(format!("wasm-{name}"))).unwrap();
        assert_eq!(link, std::path::Path::new("wasmcni"));
    }
    assert!(!wasm.join("hostile.wasm").exists(), "a test-only module was installed");
    let cached = std::fs::read_dir(&cache)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "cwasm"))
        .count();
    let first_party = std::fs::read_dir(wasmcni_e2e::module_dir()).unwrap().count();
    assert_eq!(cached, first_party, "modules are precompiled at install");

    // The installed link answers as a CNI plugin.
    let version = Command::new(bin.join("wasm-bridge")).env("CNI_COMMAND", "VERSION").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&version.stdout).unwrap();
    assert_eq!(v["supportedVersions"].as_array().unwrap().len(), 7);
    std::fs::remove_dir_all(&root).unwrap();
}
