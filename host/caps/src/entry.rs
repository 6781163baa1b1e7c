//! The export a call enters a module through, found once at link time: one
//! case per role and served package version (1.x, 0.2, and 0.1, which had
//! handlers only; overlays came with 1.1, network policy with 1.2).

use crate::State;
use crate::bindings::exports::wasmcni::plugin::{admission, handler, network_policy, node_overlay, node_routes};
use crate::compat::exports::wasmcni::plugin0_1_0::handler as handler_v0_1;
use crate::v0_2::exports::wasmcni::plugin as v0_2;
use wasmcni_engine::Role;
use wasmtime::component::InstancePre;

pub enum Entry {
    Handler(handler::GuestIndices),
    HandlerV0_2(v0_2::handler::GuestIndices),
    HandlerV0_1(handler_v0_1::GuestIndices),
    Admission(admission::GuestIndices),
    AdmissionV0_2(v0_2::admission::GuestIndices),
    NodeRoutes(node_routes::GuestIndices),
    NodeRoutesV0_2(v0_2::node_routes::GuestIndices),
    NodeOverlay(node_overlay::GuestIndices),
    NetworkPolicy(network_policy::GuestIndices),
}

/// A linked module with its entry.
pub type Module = wasmcni_engine::Module<State, Entry>;

impl Entry {
    /// The entry of a module of `role` built for package `version`.
    pub fn find(pre: &InstancePre<State>, role: Role, version: &str) -> wasmtime::Result<Entry> {
        let (v0_1, v0_2) = (version.starts_with("0.1."), version.starts_with("0.2."));
        Ok(match role {
            Role::Policy if v0_2 => Entry::AdmissionV0_2(v0_2::admission::GuestIndices::new(pre)?),
            Role::Policy => Entry::Admission(admission::GuestIndices::new(pre)?),
            Role::Routing if v0_2 => Entry::NodeRoutesV0_2(v0_2::node_routes::GuestIndices::new(pre)?),
            Role::Routing => Entry::NodeRoutes(node_routes::GuestIndices::new(pre)?),
            Role::Overlay => Entry::NodeOverlay(node_overlay::GuestIndices::new(pre)?),
            Role::Netpol => Entry::NetworkPolicy(network_policy::GuestIndices::new(pre)?),
            _ if v0_1 => Entry::HandlerV0_1(handler_v0_1::GuestIndices::new(pre)?),
            _ if v0_2 => Entry::HandlerV0_2(v0_2::handler::GuestIndices::new(pre)?),
            _ => Entry::Handler(handler::GuestIndices::new(pre)?),
        })
    }
}
