//! A module ready to run: compiled, its world known, its imports linked
//! (InstancePre). One-shot calls build one per process; the daemon keeps
//! them for its lifetime and swaps them atomically.

use super::world::{self, ModuleInfo, Role};
use crate::caps::State;
use crate::caps::bindings::exports::wasmcni::plugin::{admission, handler, node_routes};
use crate::caps::compat::exports::wasmcni::plugin0_1_0::handler as handler_v0_1;
use crate::cni::error::CniError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;
use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

/// The export a call enters a module through, found once at link time.
pub enum Entry {
    Handler(handler::GuestIndices),
    /// A handler built against WIT 0.1.
    HandlerV0_1(handler_v0_1::GuestIndices),
    Admission(admission::GuestIndices),
    NodeRoutes(node_routes::GuestIndices),
}

pub struct Module {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub info: ModuleInfo,
    pub pre: InstancePre<State>,
    pub entry: Entry,
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
        let pre = linker.instantiate_pre(&component).map_err(refuse)?;
        let entry = match info.declared_role() {
            Role::Policy => Entry::Admission(admission::GuestIndices::new(&pre).map_err(refuse)?),
            Role::Routing => Entry::NodeRoutes(node_routes::GuestIndices::new(&pre).map_err(refuse)?),
            _ if info.wit_version.as_deref().is_some_and(|v| v.starts_with("0.1.")) => {
                Entry::HandlerV0_1(handler_v0_1::GuestIndices::new(&pre).map_err(refuse)?)
            }
            _ => Entry::Handler(handler::GuestIndices::new(&pre).map_err(refuse)?),
        };
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
