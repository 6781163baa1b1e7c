//! What plugins may call: one file per capability the WIT exposes, the store
//! state that carries them, and the glue from the generated host traits.

mod delegate;
mod host;
mod ipam_store;
mod log;
pub mod masquerade;
mod netlink;
pub mod netns;
mod sysctl;

pub use delegate::DelegateCap;
pub use ipam_store::{DEFAULT_DATA_DIR, IpamStore, read_leases};
pub use netlink::{NetlinkCap, Owner};

use crate::engine::MemoryLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Host bindings for every interface any world may import.
pub mod bindings {
    wasmtime::component::bindgen!({
        world: "wasmcni-host",
        path: "../wit",
        imports: { default: async },
        exports: { default: async },
    });
}

/// Per-call store data: WASI with nothing granted (no files, no network, no
/// environment), the memory limiter, and the capabilities of the plugin's role.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub plugin: String,
    pub netlink: Option<NetlinkCap>,
    pub store: Option<IpamStore>,
    pub delegate: Option<DelegateCap>,
}

impl State {
    pub fn new(plugin: String, memory_bytes: usize) -> State {
        // Plugin stderr is the host's stderr (never stdout: that is the CNI result).
        let wasi = WasiCtx::builder().inherit_stderr().build();
        State {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_bytes),
            plugin,
            netlink: None,
            store: None,
            delegate: None,
        }
    }

    /// Undoes what a failed ADD did on the host: links, masquerade, IPAM.
    pub async fn undo(&mut self) {
        if let Some(n) = &mut self.netlink {
            n.undo().await;
        }
        if let Some(d) = &mut self.delegate {
            d.undo().await;
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
