//! The precompiled-artifact cache: filled ahead of time, used on the hot
//! path, and rebuilt (never trusted) when an entry is corrupt.

use serde_json::json;
use std::path::Path;
use std::process::Command;
use wasmcni_e2e::{Lab, module_dir, unique, wasmcni_bin};

fn artifacts(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn precompile_then_calls_never_compile_and_corruption_is_rebuilt() {
    let cache = std::env::temp_dir().join(unique("wcni-cache-"));
    let out = Command::new(wasmcni_bin())
        .arg("precompile")
        .arg(module_dir().join("loopback.wasm"))
        .env("WASMCNI_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("compiled "));
    let entries = artifacts(&cache);
    assert_eq!(entries.len(), 1);

    let lab = Lab::new();
    lab.extra_env.lock().unwrap().extend([
        ("WASMCNI_CACHE_DIR".to_string(), cache.display().to_string()),
        ("WASMCNI_LOG".to_string(), "info".to_string()),
    ]);
    let c = lab.container();
    let conf = json!({"cniVersion": "1.0.0", "name": lab.network, "type": "wasm-loopback"});
    let first = lab.cni("ADD", &conf, "cache-1", &c.path());
    first.expect_ok();
    assert!(!first.stderr.contains("cache miss"), "a precompiled module was compiled again: {}", first.stderr);

    // Flip bytes in the middle of the artifact, in place, and set its mtime
    // back: the next call must still notice.
    let mtime = std::fs::metadata(&entries[0]).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xa5;
    }
    let mut file = std::fs::OpenOptions::new().write(true).open(&entries[0]).unwrap();
    std::io::Write::write_all(&mut file, &bytes).unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    assert_eq!(std::fs::metadata(&entries[0]).unwrap().modified().unwrap(), mtime);
    let second = lab.cni("ADD", &conf, "cache-2", &c.path());
    second.expect_ok();
    assert!(second.stderr.contains("corrupt") && second.stderr.contains("cache miss"), "{}", second.stderr);
    let third = lab.cni("ADD", &conf, "cache-3", &c.path());
    assert!(!third.expect_ok().stderr.contains("cache miss"), "{}", third.stderr);
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn inspect_reports_world_and_imports() {
    let run = |m: &str| {
        let out = Command::new(wasmcni_bin())
            .arg("inspect")
            .arg(module_dir().join(m))
            .env("WASMCNI_CACHE_DIR", wasmcni_e2e::cache_dir())
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let hl = run("host-local.wasm");
    assert_eq!(hl["world"], "ipam");
    assert_eq!(hl["wit_version"], "1.2.0");
    let imports = hl["imports"].to_string();
    assert!(imports.contains("ipam-store") && !imports.contains("links"), "{imports}");
    let bridge = run("bridge.wasm");
    assert_eq!(bridge["world"], "cni-plugin");
    // The SDK embeds what the module says about itself.
    assert_eq!(bridge["metadata"]["name"], "wasmcni-plugin-bridge");
    assert_eq!(bridge["metadata"]["world"], "cni-plugin");
    assert_eq!(bridge["metadata"]["wit"], "1.2.0");
    // Granted what it imports: links, addresses, routes, sysctls and NAT, never the lease store.
    let imports = bridge["imports"].to_string();
    for granted in ["links@1.2.0", "addresses@1.2.0", "routes@1.2.0", "sysctl@1.2.0", "nat@1.2.0", "delegate@1.2.0"] {
        assert!(imports.contains(granted), "{granted} missing from {imports}");
    }
    assert!(!imports.contains("ipam-store"), "{imports}");
    assert_eq!(hl["metadata"]["world"], "ipam");
}
