//! Precompiled artifacts, keyed by the module's sha256 and the engine's
//! configuration, so later calls never compile.
//!
//! Two things keep the hot path cheap without trusting anything blindly:
//! - a module's sha256 is remembered per (device, inode, size, mtime), so an
//!   unchanged file is not rehashed, and any replacement is;
//! - an artifact is stored with its length, the sha256 of the module it was
//!   compiled from, and an xxh3 checksum seeded by that sha256, checked
//!   before it is loaded: a corrupt file, or another module's artifact under
//!   this module's key, is rebuilt, never run. The checksum (not the sha256
//!   binding) is skipped while the file's identity, including its ctime
//!   (which any write changes and no one can set back), is the one it was
//!   checked under.

use crate::Error;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;
use xxhash_rust::xxh3::xxh3_64;

pub const DEFAULT_CACHE_DIR: &str = "/var/cache/wasmcni";

/// The cache in one directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// A loaded module and its identity.
pub struct Loaded {
    pub component: Component,
    pub sha256: String,
    /// The module's `wasmcni-metadata` section, if it has one.
    pub metadata: Option<serde_json::Value>,
    /// Whether this call had to compile it (a cache miss).
    pub compiled: bool,
}

fn engine_key(engine: &Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn unreadable(path: &Path, source: std::io::Error) -> Error {
    Error::Unreadable { path: path.to_owned(), source }
}

/// A file's identity as the filesystem sees it: it changes whenever the
/// file is replaced or rewritten.
pub fn file_stamp(path: &Path) -> Option<String> {
    std::fs::metadata(path).ok().map(|m| stamp(&m))
}

fn stamp(meta: &std::fs::Metadata) -> String {
    format!("{} {} {} {}.{}", meta.dev(), meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec())
}

/// An artifact's identity when its checksum was last verified.
fn verified_stamp(meta: &std::fs::Metadata) -> String {
    format!("{}.{}.{}.{}.{}", meta.dev(), meta.ino(), meta.size(), meta.ctime(), meta.ctime_nsec())
}

/// The `.sum` file: the artifact's length and checksum, the identity it was
/// verified under, the module it was compiled from, then its metadata.
fn sum_text(len: usize, checksum: u64, verified: &str, sha256: &str, metadata: &str) -> String {
    format!("{len} {checksum:016x} {verified} {sha256}\n{metadata}")
}

/// The artifact's checksum, bound to the module it was compiled from: a sum
/// copied along with another module's artifact does not match.
fn checksum(artifact: &[u8], sha256: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(artifact, xxh3_64(sha256.as_bytes()))
}

/// Refuses a module whose sha256 is not the one the config pins.
pub fn check_pin(path: &Path, sha256: &str, pin: Option<&str>) -> Result<(), Error> {
    match pin {
        Some(pin) if !pin.eq_ignore_ascii_case(sha256) => {
            Err(Error::Refused(format!("module {} has sha256 {sha256}, but the config pins {pin}", path.display())))
        }
        _ => Ok(()),
    }
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    fn artifact_paths(&self, engine: &Engine, sha256: &str) -> (PathBuf, PathBuf) {
        let base = self.dir.join(format!("{sha256}-{}", engine_key(engine)));
        (base.with_extension("cwasm"), base.with_extension("cwasm.sum"))
    }

    fn index_path(&self, path: &Path) -> PathBuf {
        let key = xxh3_64(path.as_os_str().as_encoded_bytes());
        self.dir.join("index").join(format!("{key:016x}"))
    }

    /// The module's sha256, from the index when the file is unchanged. Returns
    /// the bytes too when it had to read them.
    fn identify(&self, path: &Path) -> Result<(String, Option<Vec<u8>>), Error> {
        let meta = std::fs::metadata(path).map_err(|e| unreadable(path, e))?;
        // Reading a FIFO or a device would block the call.
        if !meta.is_file() {
            return Err(Error::Refused(format!("module {} is not a regular file", path.display())));
        }
        let stamp = stamp(&meta);
        let index = self.index_path(path);
        if let Ok(entry) = std::fs::read_to_string(&index)
            && let Some((recorded, sha)) = entry.rsplit_once(' ')
            && recorded == stamp
            && sha.len() == 64
        {
            return Ok((sha.to_owned(), None));
        }
        let bytes = std::fs::read(path).map_err(|e| unreadable(path, e))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let _ = std::fs::create_dir_all(index.parent().expect("index has a parent"));
        let _ = write_atomically(&index, format!("{stamp} {sha}").as_bytes());
        Ok((sha, Some(bytes)))
    }

    /// The artifact (and the module's metadata, kept with its checksum) if
    /// present and intact.
    fn load_artifact(&self, engine: &Engine, sha256: &str) -> Option<(Component, Option<serde_json::Value>)> {
        let (artifact, sum) = self.artifact_paths(engine, sha256);
        let file = std::fs::File::open(&artifact).ok()?;
        let recorded = std::fs::read_to_string(&sum).ok()?;
        // Entries in an older layout are rebuilt.
        let (first, metadata) = recorded.split_once('\n')?;
        let mut fields = first.split(' ');
        let (len, recorded_sum, verified, module) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
        if module != sha256 {
            tracing::warn!(
                "cache entry {} was compiled from module {module}, not {sha256}; rebuilding",
                artifact.display()
            );
            return None;
        }
        let stamp = verified_stamp(&file.metadata().ok()?);
        if stamp != verified {
            // SAFETY: a read-only private mapping; artifacts are only ever
            // replaced by rename, never written in place by wasmcni.
            let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
            let actual = checksum(&map, sha256);
            if format!("{} {actual:016x}", map.len()) != format!("{len} {recorded_sum}") {
                tracing::warn!("cache entry {} is corrupt or not this module's; rebuilding", artifact.display());
                return None;
            }
            // Intact (e.g. a cache copied from elsewhere): remember it as such.
            let _ = write_atomically(&sum, sum_text(map.len(), actual, &stamp, sha256, metadata).as_bytes());
        }
        // SAFETY: the file was produced by `Component::serialize` for this
        // engine configuration (the key includes it) and is unchanged since it
        // was verified (length and checksum matched under this identity);
        // wasmtime also checks version and settings.
        match unsafe { Component::deserialize_file(engine, &artifact) } {
            Ok(c) => Some((c, serde_json::from_str(metadata).ok())),
            Err(e) => {
                tracing::warn!("cache entry {} unusable ({e}); rebuilding", artifact.display());
                None
            }
        }
    }

    /// Saves `component` (the module with `sha256`, declaring `metadata`) for
    /// later processes.
    pub fn store_artifact(
        &self,
        engine: &Engine,
        sha256: &str,
        component: &Component,
        metadata: Option<&serde_json::Value>,
    ) -> Result<(), Error> {
        let (artifact, sum) = self.artifact_paths(engine, sha256);
        let bytes = component.serialize().map_err(|e| Error::Host(format!("cannot serialize module: {e}")))?;
        let meta = metadata.map(ToString::to_string).unwrap_or_default();
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            write_atomically(&artifact, &bytes)?;
            let verified = verified_stamp(&std::fs::metadata(&artifact)?);
            write_atomically(&sum, sum_text(bytes.len(), checksum(&bytes, sha256), &verified, sha256, &meta).as_bytes())
        };
        write().map_err(|e| Error::Host(format!("cannot write cache entry {}: {e}", artifact.display())))
    }

    /// Loads `path` (checking `pin` first), from the cache when possible.
    pub fn load(&self, engine: &Engine, path: &Path, pin: Option<&str>) -> Result<Loaded, Error> {
        let (sha256, bytes) = self.identify(path)?;
        check_pin(path, &sha256, pin)?;
        if let Some((component, metadata)) = self.load_artifact(engine, &sha256) {
            return Ok(Loaded { component, sha256, metadata, compiled: false });
        }
        let bytes = match bytes {
            Some(b) => b,
            None => std::fs::read(path).map_err(|e| unreadable(path, e))?,
        };
        // The index can be stale if the file was rewritten keeping its size and
        // mtime: trust the bytes, re-pin, and fix the index.
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != sha256 {
            check_pin(path, &actual, pin)?;
            if let Some(stamp) = file_stamp(path) {
                let _ = write_atomically(&self.index_path(path), format!("{stamp} {actual}").as_bytes());
            }
            if let Some((component, metadata)) = self.load_artifact(engine, &actual) {
                return Ok(Loaded { component, sha256: actual, metadata, compiled: false });
            }
        }
        let sha256 = actual;
        let component = Component::from_binary(engine, &bytes)
            .map_err(|e| Error::Refused(format!("module {} is not a valid component: {e:#}", path.display())))?;
        let metadata = crate::metadata::read(&bytes);
        // A read-only or full cache costs speed, not correctness.
        if let Err(e) = self.store_artifact(engine, &sha256, &component, metadata.as_ref()) {
            tracing::warn!("{e}");
        }
        Ok(Loaded { component, sha256, metadata, compiled: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component there is: the preamble alone.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("wasmcni-cache-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn module(&self, name: &str, bytes: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn engine() -> Engine {
        crate::new_engine().unwrap()
    }

    #[test]
    fn a_module_is_compiled_once_then_loaded_from_its_artifact() {
        let (scratch, engine) = (Scratch::new("hit"), engine());
        let cache = Cache::new(scratch.0.join("cache"));
        let module = scratch.module("m.wasm", EMPTY_COMPONENT);
        let first = cache.load(&engine, &module, None).unwrap();
        assert!(first.compiled);
        let again = cache.load(&engine, &module, None).unwrap();
        assert!(!again.compiled, "the artifact was not used");
        assert_eq!(again.sha256, hex::encode(Sha256::digest(EMPTY_COMPONENT)));
    }

    #[test]
    fn a_corrupt_artifact_is_rebuilt_not_loaded() {
        let (scratch, engine) = (Scratch::new("corrupt"), engine());
        let cache = Cache::new(scratch.0.join("cache"));
        let module = scratch.module("m.wasm", EMPTY_COMPONENT);
        let sha = cache.load(&engine, &module, None).unwrap().sha256;
        let (artifact, _) = cache.artifact_paths(&engine, &sha);
        let mut bytes = std::fs::read(&artifact).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        // Replaced, as anything but wasmcni would: a new identity.
        std::fs::remove_file(&artifact).unwrap();
        std::fs::write(&artifact, bytes).unwrap();
        assert!(cache.load(&engine, &module, None).unwrap().compiled, "a corrupt artifact was loaded");
        assert!(!cache.load(&engine, &module, None).unwrap().compiled, "the rebuilt artifact was not kept");
    }

    #[test]
    fn a_pin_that_does_not_match_is_refused_and_a_replaced_file_is_rehashed() {
        let (scratch, engine) = (Scratch::new("pin"), engine());
        let cache = Cache::new(scratch.0.join("cache"));
        let module = scratch.module("m.wasm", EMPTY_COMPONENT);
        let err = cache.load(&engine, &module, Some(&"0".repeat(64))).err().unwrap();
        assert!(matches!(&err, Error::Refused(m) if m.contains("pins")), "{err}");
        let sha = cache.load(&engine, &module, None).unwrap().sha256;
        // Another module at the same path: a new sha256, not the indexed one.
        std::fs::remove_file(&module).unwrap();
        let mut other = EMPTY_COMPONENT.to_vec();
        other.extend_from_slice(&[0x00, 0x02, 0x01, b'x']);
        scratch.module("m.wasm", &other);
        let reloaded = cache.load(&engine, &module, None).unwrap();
        assert_ne!(reloaded.sha256, sha, "the index served a replaced file's old hash");
        assert!(reloaded.compiled);
    }

    #[test]
    fn a_missing_module_is_unreadable_and_a_non_regular_one_is_refused() {
        let (scratch, engine) = (Scratch::new("missing"), engine());
        let cache = Cache::new(scratch.0.join("cache"));
        let missing = cache.load(&engine, &scratch.0.join("none.wasm"), None).err().unwrap();
        assert!(matches!(&missing, Error::Unreadable { source, .. } if source.kind() == std::io::ErrorKind::NotFound));
        let dir = cache.load(&engine, &scratch.0, None).err().unwrap();
        assert!(matches!(&dir, Error::Refused(m) if m.contains("not a regular file")), "{dir}");
    }
}
