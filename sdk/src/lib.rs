//! What a wasmcni plugin author depends on: the WIT bindings for each world,
//! an export macro per world, CNI error helpers, and IP range arithmetic.
//!
//! ```text
//! struct MyIpam;
//! impl wasmcni_sdk::ipam::Handler for MyIpam { /* add, del, check, status, gc */ }
//! wasmcni_sdk::export_ipam!(MyIpam);
//!
//! struct MyPolicy;
//! impl wasmcni_sdk::policy::Policy for MyPolicy { /* admit */ }
//! wasmcni_sdk::export_policy!(MyPolicy);
//! ```

pub mod error;
mod host;
pub mod invocation;
pub mod ip;
pub mod ipam_config;
pub mod range_ipam;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use error::{Code, Error};
pub use wasmcni_cni::Mac;

/// The version of the WIT package this SDK binds (wit/wasmcni.wit); the
/// module metadata `__embed_metadata!` writes carries the same.
pub const WIT_VERSION: &str = "1.2.0";

/// Generated bindings for every import of the package and the handler
/// export. A module imports only what it calls, and the host infers (and
/// enforces) its world from those imports: use [`cni`] for a network
/// plugin, [`ipam`] for an IPAM one.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "sdk",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_handler",
        default_bindings_module: "wasmcni_sdk::bindings",
    });
}

/// The admission export of the `policy` world, over the same types.
#[doc(hidden)]
pub mod policy_bindings {
    wit_bindgen::generate!({
        world: "policy",
        path: "../wit",
        with: {
            "wasmcni:plugin/types@1.2.0": crate::bindings::wasmcni::plugin::types,
            "wasmcni:plugin/log@1.2.0": crate::bindings::wasmcni::plugin::log,
        },
        pub_export_macro: true,
        export_macro_name: "export_admission",
        default_bindings_module: "wasmcni_sdk::policy_bindings",
    });
}

/// The `cni-plugin` world: links, addresses, routes, sysctls, NAT, IPAM
/// delegation, log. A module is granted exactly the interfaces it calls.
pub mod cni {
    pub use crate::bindings::exports::wasmcni::plugin::handler::Guest as Handler;
    pub use crate::bindings::wasmcni::plugin::types;
    pub use crate::host::{addresses, delegate, links, log, nat, routes, sysctl};
}

/// The `ipam` world: the host's lease store and log.
pub mod ipam {
    pub use crate::bindings::exports::wasmcni::plugin::handler::Guest as Handler;
    pub use crate::bindings::wasmcni::plugin::types;
    pub use crate::host::{ipam_store, log};
}

/// The node-routes export of the `routing` world, over the same types.
#[doc(hidden)]
pub mod routing_bindings {
    wit_bindgen::generate!({
        world: "routing",
        path: "../wit",
        with: {
            "wasmcni:plugin/types@1.2.0": crate::bindings::wasmcni::plugin::types,
            "wasmcni:plugin/log@1.2.0": crate::bindings::wasmcni::plugin::log,
        },
        pub_export_macro: true,
        export_macro_name: "export_node_routes",
        default_bindings_module: "wasmcni_sdk::routing_bindings",
    });
}

/// The `routing` world: routes to other nodes' pods from their leases; only the log.
pub mod routing {
    pub use crate::bindings::wasmcni::plugin::types;
    pub use crate::host::log;
    pub use crate::routing_bindings::exports::wasmcni::plugin::node_routes::{Guest as Routing, NodeLease, Underlay};
}

/// The node-overlay export of the `overlay-routing` world (1.1), over the same types.
#[doc(hidden)]
pub mod overlay_bindings {
    wit_bindgen::generate!({
        world: "overlay-routing",
        path: "../wit",
        with: {
            "wasmcni:plugin/types@1.2.0": crate::bindings::wasmcni::plugin::types,
            "wasmcni:plugin/log@1.2.0": crate::bindings::wasmcni::plugin::log,
        },
        pub_export_macro: true,
        export_macro_name: "export_node_overlay",
        default_bindings_module: "wasmcni_sdk::overlay_bindings",
    });
}

/// The `overlay-routing` world: the routes, neighbour and FDB entries that
/// reach other nodes' pods through this node's VTEP; only the log.
pub mod overlay {
    pub use crate::bindings::wasmcni::plugin::types;
    pub use crate::host::log;
    pub use crate::overlay_bindings::exports::wasmcni::plugin::node_overlay::{
        Forward, Guest as Overlay, Neighbor, OverlayEntries, OverlayLease, OverlayRoute, Underlay, Via, Vtep,
    };
}

/// The network-policy export of the `netpol` world (1.2), over the same types.
#[doc(hidden)]
pub mod netpol_bindings {
    wit_bindgen::generate!({
        world: "netpol",
        path: "../wit",
        with: {
            "wasmcni:plugin/types@1.2.0": crate::bindings::wasmcni::plugin::types,
            "wasmcni:plugin/log@1.2.0": crate::bindings::wasmcni::plugin::log,
        },
        pub_export_macro: true,
        export_macro_name: "export_network_policy",
        default_bindings_module: "wasmcni_sdk::netpol_bindings",
    });
}

/// The `netpol` world: per-pod rules from NetworkPolicy objects; only the log.
pub mod netpol {
    pub use crate::bindings::wasmcni::plugin::types;
    pub use crate::host::log;
    pub use crate::netpol_bindings::exports::wasmcni::plugin::network_policy::{
        Allow, Guest as NetworkPolicy, Label, Namespace, Pod, PodRules, Ports, Protocol,
    };
}

/// The `policy` world: admit, deny or change an ADD; only the log.
pub mod policy {
    pub use crate::bindings::wasmcni::plugin::types;
    pub use crate::host::log;
    pub use crate::policy_bindings::exports::wasmcni::plugin::admission::{
        Changes, Decision, Guest as Policy, IpRange,
    };
}

/// Exports a type implementing [`cni::Handler`] as a `cni-plugin` module.
#[macro_export]
macro_rules! export_cni_plugin {
    ($t:ident) => {
        $crate::bindings::export_handler!($t);
        $crate::__embed_metadata!("cni-plugin");
    };
}

/// Exports a type implementing [`ipam::Handler`] as an `ipam` module.
#[macro_export]
macro_rules! export_ipam {
    ($t:ident) => {
        $crate::bindings::export_handler!($t);
        $crate::__embed_metadata!("ipam");
    };
}

/// Exports a type implementing [`policy::Policy`] as a `policy` module.
#[macro_export]
macro_rules! export_policy {
    ($t:ident) => {
        $crate::policy_bindings::export_admission!($t);
        $crate::__embed_metadata!("policy");
    };
}

/// Exports a type implementing [`routing::Routing`] as a `routing` module.
#[macro_export]
macro_rules! export_routing {
    ($t:ident) => {
        $crate::routing_bindings::export_node_routes!($t);
        $crate::__embed_metadata!("routing");
    };
}

/// Exports a type implementing [`overlay::Overlay`] as an `overlay-routing` module.
#[macro_export]
macro_rules! export_overlay {
    ($t:ident) => {
        $crate::overlay_bindings::export_node_overlay!($t);
        $crate::__embed_metadata!("overlay-routing");
    };
}

/// Exports a type implementing [`netpol::NetworkPolicy`] as a `netpol` module.
#[macro_export]
macro_rules! export_netpol {
    ($t:ident) => {
        $crate::netpol_bindings::export_network_policy!($t);
        $crate::__embed_metadata!("netpol");
    };
}

/// What a module says about itself, in its `wasmcni-metadata` custom
/// section: name, version, world and WIT version. `wasmcni inspect` shows
/// it; the host refuses a module whose imports do not match its declared
/// world, or whose WIT version it cannot serve.
#[doc(hidden)]
pub mod metadata {
    /// Copies a string into an array of its length, at compile time.
    pub const fn bytes<const N: usize>(s: &str) -> [u8; N] {
        let b = s.as_bytes();
        let mut out = [0u8; N];
        let mut i = 0;
        while i < N {
            out[i] = b[i];
            i += 1;
        }
        out
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __embed_metadata {
    ($world:literal) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            // The WIT version is the package's (wit/wasmcni.wit), `WIT_VERSION`.
            const META: &str = concat!(
                "{\"name\":\"",
                env!("CARGO_PKG_NAME"),
                "\",\"version\":\"",
                env!("CARGO_PKG_VERSION"),
                "\",\"world\":\"",
                $world,
                "\",\"wit\":\"1.2.0\"}"
            );
            #[unsafe(link_section = "wasmcni-metadata")]
            #[used]
            static METADATA: [u8; META.len()] = $crate::metadata::bytes(META);
        };
    };
}
