//! Precompiled artifacts, keyed by the module's sha256 and the engine's
//! configuration, so later calls never compile. An artifact is written with
//! its own sha256 beside it and checked before it is loaded: a corrupt or
//! foreign file is rebuilt, never trusted.

use crate::cni::error::CniError;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

pub const DEFAULT_CACHE_DIR: &str = "/var/cache/wasmcni";

pub fn cache_dir() -> PathBuf {
    std::env::var_os("WASMCNI_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|| DEFAULT_CACHE_DIR.into())
}

/// A loaded module and its identity.
pub struct Loaded {
    pub component: Component,
    pub sha256: String,
    /// Whether this call had to compile it (a cache miss).
    pub compiled: bool,
}

fn engine_key(engine: &Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn artifact_paths(engine: &Engine, sha256: &str) -> (PathBuf, PathBuf) {
    let base = cache_dir().join(format!("{sha256}-{}", engine_key(engine)));
    (base.with_extension("cwasm"), base.with_extension("cwasm.sha256"))
}

fn read_module(path: &Path) -> Result<(Vec<u8>, String), CniError> {
    let bytes =
        std::fs::read(path).map_err(|e| CniError::config(format!("cannot read module {}: {e}", path.display())))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    Ok((bytes, sha))
}

/// The artifact, if present and intact.
fn load_artifact(engine: &Engine, sha256: &str) -> Option<Component> {
    let (artifact, sum) = artifact_paths(engine, sha256);
    let bytes = std::fs::read(&artifact).ok()?;
    let expected = std::fs::read_to_string(&sum).ok()?;
    if hex::encode(Sha256::digest(&bytes)) != expected.trim() {
        tracing::warn!("cache entry {} is corrupt; rebuilding", artifact.display());
        return None;
    }
    // SAFETY: the bytes were produced by `Component::serialize` of this
    // engine configuration (the key includes it) and are unchanged since
    // (their sha256 matched); wasmtime also checks version and settings.
    match unsafe { Component::deserialize(engine, &bytes) } {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("cache entry {} unusable ({e}); rebuilding", artifact.display());
            None
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn store_artifact(engine: &Engine, sha256: &str, component: &Component) -> Result<(), CniError> {
    let (artifact, sum) = artifact_paths(engine, sha256);
    let bytes = component.serialize().map_err(|e| CniError::io(format!("cannot serialize module: {e}")))?;
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(cache_dir())?;
        write_atomically(&artifact, &bytes)?;
        write_atomically(&sum, hex::encode(Sha256::digest(&bytes)).as_bytes())
    };
    write().map_err(|e| CniError::io(format!("cannot write cache entry {}: {e}", artifact.display())))
}

/// Loads `path` (checking `pin` first), from the cache when possible.
pub fn load(engine: &Engine, path: &Path, pin: Option<&str>) -> Result<Loaded, CniError> {
    let (bytes, sha256) = read_module(path)?;
    if let Some(pin) = pin
        && !pin.eq_ignore_ascii_case(&sha256)
    {
        return Err(CniError::config(format!(
            "module {} has sha256 {sha256}, but the config pins {pin}",
            path.display()
        )));
    }
    if let Some(component) = load_artifact(engine, &sha256) {
        return Ok(Loaded { component, sha256, compiled: false });
    }
    let component = Component::from_binary(engine, &bytes)
        .map_err(|e| CniError::config(format!("module {} is not a valid component: {e:#}", path.display())))?;
    // A read-only or full cache costs speed, not correctness.
    if let Err(e) = store_artifact(engine, &sha256, &component) {
        tracing::warn!("{e}");
    }
    Ok(Loaded { component, sha256, compiled: true })
}
