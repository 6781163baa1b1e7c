//! The SDK this binary carries, so `wasmcni new` works from an installed
//! binary with no checkout: the wasmcni-sdk crate with the Python and
//! JavaScript SDKs beside it (sdk/python, sdk/js), the two crates the Rust
//! SDK builds on (wasmcni-cni, wasmcni-scope) and the WIT, laid out as in
//! the repository, under a workspace manifest made from the repository's.
//! Written once per content into a cache directory and used from there as
//! a path dependency.

use anyhow::{Context, Result};
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

static SDK: Dir = include_dir!("$CARGO_MANIFEST_DIR/../sdk");
static CNI: Dir = include_dir!("$CARGO_MANIFEST_DIR/cni");
static SCOPE: Dir = include_dir!("$CARGO_MANIFEST_DIR/scope");
static WIT: Dir = include_dir!("$CARGO_MANIFEST_DIR/../wit");
/// The repository's manifest: versions, dependencies and lints the crates inherit.
const WORKSPACE: &str = include_str!("../../../Cargo.toml");

/// Each embedded directory and where it goes.
fn tree() -> [(&'static Dir<'static>, &'static str); 4] {
    [(&SDK, "sdk"), (&CNI, "host/cni"), (&SCOPE, "host/scope"), (&WIT, "wit")]
}

/// Where the SDK is unpacked unless told: `$XDG_CACHE_HOME/wasmcni`, else
/// `~/.cache/wasmcni`.
pub fn default_cache() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from);
    xdg.or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache"))).map(|c| c.join("wasmcni"))
}

/// The embedded SDK under `cache`, written there first if it is not yet;
/// returns its `sdk` directory.
pub fn unpack(cache: &Path) -> Result<PathBuf> {
    let manifest = workspace_manifest()?;
    let mut digest = Sha256::new();
    for (dir, at) in tree() {
        for file in files(dir) {
            digest.update(format!("{at}/{}\0", file.path().display()));
            digest.update(file.contents());
        }
    }
    digest.update(&manifest);
    let root = cache.join(format!("sdk-{}", &hex::encode(digest.finalize())[..16]));
    if root.join("Cargo.toml").is_file() {
        return Ok(root.join("sdk"));
    }
    // Staged and renamed: two `wasmcni new` at once never see half a tree.
    let staged = cache.join(format!(".sdk-staged-{}", std::process::id()));
    let written = (|| -> Result<()> {
        for (dir, at) in tree() {
            for file in files(dir) {
                let path = staged.join(at).join(file.path());
                std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
                std::fs::write(path, file.contents())?;
            }
        }
        std::fs::write(staged.join("Cargo.toml"), &manifest)?;
        Ok(())
    })();
    let placed = written.and_then(|()| match std::fs::rename(&staged, &root) {
        Ok(()) => Ok(()),
        // Another process placed the same content first.
        Err(_) if root.join("Cargo.toml").is_file() => Ok(()),
        Err(e) => Err(e.into()),
    });
    let _ = std::fs::remove_dir_all(&staged);
    placed.with_context(|| format!("writing the SDK to {}", root.display()))?;
    Ok(root.join("sdk"))
}

/// What a checkout's tools leave in the SDK sources, which is not the SDK.
const NOT_SOURCES: [&str; 6] = ["node_modules", "__pycache__", ".pytest_cache", "build", "dist", "target"];

fn files<'a>(dir: &'a Dir<'a>) -> Vec<&'a include_dir::File<'a>> {
    let mut out: Vec<_> = dir.files().collect();
    for sub in dir.dirs() {
        let name = sub.path().file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !NOT_SOURCES.contains(&name) && !name.ends_with(".egg-info") {
            out.extend(files(sub));
        }
    }
    out
}

/// The workspace the unpacked crates inherit from: the repository's
/// package fields, lints and dependencies, without the crates that are not
/// there.
fn workspace_manifest() -> Result<String> {
    let mut repo: toml::Table = WORKSPACE.parse().context("the embedded workspace manifest")?;
    let mut ws = match repo.remove("workspace") {
        Some(toml::Value::Table(t)) => t,
        _ => anyhow::bail!("the embedded workspace manifest has no [workspace]"),
    };
    let members = ["sdk", "host/cni", "host/scope"];
    let mut deps = match ws.remove("dependencies") {
        Some(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    deps.retain(|_, spec| spec.get("path").and_then(|p| p.as_str()).is_none_or(|p| members.contains(&p)));
    let mut out = toml::Table::new();
    out.insert("members".into(), members.iter().map(|m| toml::Value::from(*m)).collect::<Vec<_>>().into());
    out.insert("resolver".into(), "3".into());
    for key in ["package", "lints"] {
        if let Some(v) = ws.remove(key) {
            out.insert(key.into(), v);
        }
    }
    out.insert("dependencies".into(), deps.into());
    let mut manifest = toml::Table::new();
    manifest.insert("workspace".into(), out.into());
    Ok(toml::to_string(&manifest)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_unpacks_once_with_a_workspace_of_its_own() {
        let cache = std::env::temp_dir().join(format!("wcni-sdk-cache-{}", std::process::id()));
        let sdk = unpack(&cache).unwrap();
        assert!(sdk.join("src/lib.rs").is_file() && sdk.join("../wit/wasmcni.wit").is_file());
        assert!(sdk.join("../host/cni/src/lib.rs").is_file());
        assert!(sdk.join("js/package.json").is_file() && sdk.join("python/pyproject.toml").is_file());
        let manifest: toml::Table = std::fs::read_to_string(sdk.join("../Cargo.toml")).unwrap().parse().unwrap();
        let deps = manifest["workspace"]["dependencies"].as_table().unwrap();
        assert!(deps.contains_key("wasmcni-cni") && deps.contains_key("serde") && !deps.contains_key("wasmcni-kernel"));
        assert_eq!(unpack(&cache).unwrap(), sdk, "the same content is not written twice");
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
        std::fs::remove_dir_all(&cache).unwrap();
    }
}
