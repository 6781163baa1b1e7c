//! The network config a runtime passes on stdin, and which Wasm module it selects.

mod module;
mod netconf;
pub mod rules_file;
mod subnet_file;

pub use module::{
    DEFAULT_MODULE_DIR, ModuleSource, locate, resolve_ipam, resolve_plugin, resolve_policy, set_module_dir,
    valid_module_name,
};
pub use netconf::{Limits, NetConf};
