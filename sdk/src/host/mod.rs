//! The host's interfaces as a plugin calls them. In a Wasm build these are
//! the real imports; in a native build (`cargo test`) they are served by the
//! in-memory [`crate::testing`] host, so plugin logic is tested without root
//! and without Wasm. The types that hold a `link` handle (the handle itself,
//! `VethPair`, `RouteDev`) are the testing host's own in a native build.

/// Logging into the host's log.
pub mod log {
    pub use crate::bindings::wasmcni::plugin::log::Level;
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::wasmcni::plugin::log::emit;
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::testing::log::emit;
}

/// The host's lease store.
pub mod ipam_store {
    pub use crate::bindings::wasmcni::plugin::ipam_store::Lease;
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::wasmcni::plugin::ipam_store::{last_reserved, leases, release_owner, reserve};
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::testing::ipam_store::{last_reserved, leases, release_owner, reserve};
}

/// Link handles: creating, opening, changing and deleting links.
pub mod links {
    pub use crate::bindings::wasmcni::plugin::links::{BridgeSpec, LinkInfo, VethSpec};
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::wasmcni::plugin::links::{
        Link, VethPair, create_veth, ensure_bridge, open_container_link, open_host_link, veth_peer,
    };
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::testing::links::{
        Link, VethPair, create_veth, ensure_bridge, open_container_link, open_host_link, veth_peer,
    };
}

/// Addresses on links.
pub mod addresses {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::wasmcni::plugin::addresses::{add_address, del_address, list_addresses};
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::testing::addresses::{add_address, del_address, list_addresses};
}

/// Routes through links, or in the container without a device.
pub mod routes {
    pub use crate::bindings::wasmcni::plugin::routes::RouteInfo;
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::wasmcni::plugin::routes::{
        RouteDev, add_route, del_route, list_container_routes, list_routes, replace_route,
    };
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::testing::routes::{
        RouteDev, add_route, del_route, list_container_routes, list_routes, replace_route,
    };
}

/// Sysctls from the host's allow-list.
pub mod sysctl {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::wasmcni::plugin::sysctl::{get, get_conf, set, set_conf};
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::testing::sysctl::{get, get_conf, set, set_conf};
}

/// Masquerade for this container's addresses.
pub mod nat {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::wasmcni::plugin::nat::{masquerade_add, masquerade_del, masquerade_gc};
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::testing::nat::{masquerade_add, masquerade_del, masquerade_gc};
}

/// IPAM delegation.
pub mod delegate {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::wasmcni::plugin::delegate::{ipam_add, ipam_check, ipam_del, ipam_gc, ipam_status};
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::testing::delegate::{ipam_add, ipam_check, ipam_del, ipam_gc, ipam_status};
}
