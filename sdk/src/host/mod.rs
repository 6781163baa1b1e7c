//! The host's interfaces as a plugin calls them. In a Wasm build these are
//! the real imports; in a native build (`cargo test`) they are served by the
//! in-memory [`crate::testing`] host, so plugin logic is tested without root
//! and without Wasm.

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

/// Kernel networking scoped to the call.
pub mod netlink {
    pub use crate::bindings::wasmcni::plugin::netlink::{BridgeSpec, LinkInfo, RouteInfo, Side, VethPair, VethSpec};
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::wasmcni::plugin::netlink::{
        add_address, add_route, create_veth, del_address, del_route, delete_link, ensure_bridge, get_link,
        list_addresses, list_routes, masquerade_add, masquerade_del, masquerade_gc, replace_route, set_hairpin,
        set_link_up, set_master, set_mtu, set_port_vlan, sysctl_get, sysctl_set, veth_peer,
    };
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::testing::netlink::{
        add_address, add_route, create_veth, del_address, del_route, delete_link, ensure_bridge, get_link,
        list_addresses, list_routes, masquerade_add, masquerade_del, masquerade_gc, replace_route, set_hairpin,
        set_link_up, set_master, set_mtu, set_port_vlan, sysctl_get, sysctl_set, veth_peer,
    };
}

/// IPAM delegation.
pub mod delegate {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::wasmcni::plugin::delegate::{ipam_add, ipam_check, ipam_del, ipam_gc, ipam_status};
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::testing::delegate::{ipam_add, ipam_check, ipam_del, ipam_gc, ipam_status};
}
