//! A module ready to run: compiled, its world known, its imports linked
//! (InstancePre), and the export a call enters it through (`E`, found once
//! at link time by the layer that has the bindings). One-shot calls build
//! one per process; the daemon keeps them for its lifetime and swaps them
//! atomically.

use crate::Error;
use crate::world::{self, ModuleInfo, Role};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;
use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

pub struct Module<T: 'static, E> {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub info: ModuleInfo,
    pub pre: InstancePre<T>,
    pub entry: E,
    pub loaded_at: SystemTime,
    calls: AtomicU64,
}

/// A module's name: its file name without the extension.
pub fn module_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

impl<T: 'static, E> Module<T, E> {
    /// Links a compiled component. Refuses one that fits no world or whose
    /// imports this host does not provide; `entry` finds the export for the
    /// module's declared role and package version.
    pub fn new(
        engine: &Engine,
        linker: &Linker<T>,
        path: &Path,
        component: Component,
        sha256: String,
        metadata: Option<serde_json::Value>,
        entry: impl FnOnce(&InstancePre<T>, Role, &str) -> wasmtime::Result<E>,
    ) -> Result<Self, Error> {
        let name = module_name(path);
        let mut info = world::describe(engine, &component);
        info.metadata = metadata;
        world::check(&info, info.declared_role(), &name)?;
        let refuse = |e: wasmtime::Error| Error::Refused(format!("module {name} cannot be linked: {e:#}"));
        let pre = linker.instantiate_pre(&component).map_err(refuse)?;
        let entry =
            entry(&pre, info.declared_role(), info.wit_version.as_deref().unwrap_or_default()).map_err(refuse)?;
        Ok(Module {
            name,
            path: path.to_owned(),
            sha256,
            info,
            pre,
            entry,
            loaded_at: SystemTime::now(),
            calls: AtomicU64::new(0),
        })
    }

    /// The role this module runs in when `wanted` is given (delegated IPAM),
    /// or the one its world declares.
    pub fn role(&self, wanted: Option<Role>) -> Result<Role, Error> {
        let role = wanted.unwrap_or(self.info.declared_role());
        world::check(&self.info, role, &self.name)?;
        Ok(role)
    }

    pub fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}
