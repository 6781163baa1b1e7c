//! What a wasmcni plugin author depends on: the WIT bindings for each world,
//! an export macro per world, CNI error helpers, and IP range arithmetic.
//!
//! ```text
//! struct MyIpam;
//! impl wasmcni_sdk::ipam::Handler for MyIpam { /* add, del, check, status, gc */ }
//! wasmcni_sdk::export_ipam!(MyIpam);
//! ```

pub mod error;
mod host;
pub mod invocation;
pub mod ip;
pub mod ipam_config;
pub mod range_ipam;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use error::{Error, codes};

/// Generated bindings for every interface of the package. A module imports
/// only what it calls, and the host infers (and enforces) its world from
/// those imports: use [`cni`] for a network plugin, [`ipam`] for an IPAM one.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "wasmcni-host",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_handler",
        default_bindings_module: "wasmcni_sdk::bindings",
    });
}

/// The `cni-plugin` world: netlink, IPAM delegation, log.
pub mod cni {
    pub use crate::bindings::exports::wasmcni::plugin::handler::Guest as Handler;
    pub use crate::bindings::wasmcni::plugin::types;
    pub use crate::host::{delegate, log, netlink};
}

/// The `ipam` world: the host's lease store and log.
pub mod ipam {
    pub use crate::bindings::exports::wasmcni::plugin::handler::Guest as Handler;
    pub use crate::bindings::wasmcni::plugin::types;
    pub use crate::host::{ipam_store, log};
}

/// Exports a type implementing [`cni::Handler`] as a `cni-plugin` module.
#[macro_export]
macro_rules! export_cni_plugin {
    ($t:ident) => {
        $crate::bindings::export_handler!($t);
    };
}

/// Exports a type implementing [`ipam::Handler`] as an `ipam` module.
#[macro_export]
macro_rules! export_ipam {
    ($t:ident) => {
        $crate::bindings::export_handler!($t);
    };
}
