//! A module ready to run: compiled, its world known, its imports linked
//! (InstancePre). One-shot calls build one per process; the daemon keeps
//! them for its lifetime and swaps them atomically.

use super::world::{self, ModuleInfo, Role};
use crate::caps::State;
use crate::caps::bindings::WasmcniHostPre;
use crate::cni::error::CniError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

pub struct Module {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub info: ModuleInfo,
    pub pre: WasmcniHostPre<State>,
    pub loaded_at: SystemTime,
    calls: AtomicU64,
}

pub fn module_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

impl Module {
    /// Links a compiled component. Refuses one that fits no world or whose
    /// imports this host does not provide.
    pub fn new(
        engine: &Engine,
        linker: &Linker<State>,
        path: &Path,
        component: Component,
        sha256: String,
        metadata: Option<serde_json::Value>,
    ) -> Result<Module, CniError> {
        let name = module_name(path);
        let mut info = world::describe(engine, &component);
        info.metadata = metadata;
        world::check(&info, info.declared_role(), &name)?;
        let refuse = |e: wasmtime::Error| CniError::config(format!("module {name} cannot be linked: {e:#}"));
        let pre = WasmcniHostPre::new(linker.instantiate_pre(&component).map_err(refuse)?).map_err(refuse)?;
        Ok(Module {
            name,
            path: path.to_owned(),
            sha256,
            info,
            pre,
            loaded_at: SystemTime::now(),
            calls: AtomicU64::new(0),
        })
    }

    /// The role this module runs in when `wanted` is given (delegated IPAM),
    /// or the one its world declares.
    pub fn role(&self, wanted: Option<Role>) -> Result<Role, CniError> {
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
