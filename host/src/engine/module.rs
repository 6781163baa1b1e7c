//! A module ready to run: compiled, its world known, its imports linked
//! (InstancePre). One-shot calls build one per process; the daemon keeps
//! them for its lifetime and swaps them atomically.

use super::world::{self, ModuleInfo, Role};
use crate::caps::State;
use crate::caps::bindings::exports::wasmcni::plugin::{admission, handler, node_routes};
use crate::caps::compat::exports::wasmcni::plugin0_1_0::handler as handler_v0_1;
use crate::caps::v0_2::exports::wasmcni::plugin as v0_2;
use crate::cni::error::CniError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;
use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

/// The export a call enters a module through, found once at link time: one
/// case per role and served package version (1.x, 0.2, and 0.1, which had
/// handlers only).
pub enum Entry {
    Handler(handler::GuestIndices),
    HandlerV0_2(v0_2::handler::GuestIndices),
    HandlerV0_1(handler_v0_1::GuestIndices),
    Admission(admission::GuestIndices),
    AdmissionV0_2(v0_2::admission::GuestIndices),
    NodeRoutes(node_routes::GuestIndices),
    NodeRoutesV0_2(v0_2::node_routes::GuestIndices),
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
        let version = info.wit_version.as_deref().unwrap_or_default();
        let (v0_1, v0_2) = (version.starts_with("0.1."), version.starts_with("0.2."));
        let entry = match info.declared_role() {
            Role::Policy if v0_2 => Entry::AdmissionV0_2(v0_2::admission::GuestIndices::new(&pre).map_err(refuse)?),
            Role::Policy => Entry::Admission(admission::GuestIndices::new(&pre).map_err(refuse)?),
            Role::Routing if v0_2 => Entry::NodeRoutesV0_2(v0_2::node_routes::GuestIndices::new(&pre).map_err(refuse)?),
            Role::Routing => Entry::NodeRoutes(node_routes::GuestIndices::new(&pre).map_err(refuse)?),
            _ if v0_1 => Entry::HandlerV0_1(handler_v0_1::GuestIndices::new(&pre).map_err(refuse)?),
            _ if v0_2 => Entry::HandlerV0_2(v0_2::handler::GuestIndices::new(&pre).map_err(refuse)?),
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
