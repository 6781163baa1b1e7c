//! What plugins may call: one module per interface the WIT exposes, the store
//! state that carries them for one call, the glue from the generated host
//! traits of each served package version (`v1`, and `v0` for 0.1.0 and
//! 0.2.0), and the export a call enters a module through (`entry`).

/// The host traits every package version has in the same shape, `log` and
/// `delegate`, for the version whose generated module is `$v`; `types`,
/// `Res` and `Command` are the invoking module's (its version's).
macro_rules! log_and_delegate {
    ($v:ident) => {
        impl $v::log::Host for State {
            async fn emit(&mut self, level: $v::log::Level, msg: String) {
                super::log::emit(&self.plugin, level.into(), &msg);
            }
        }

        impl $v::delegate::Host for State {
            async fn ipam_add(&mut self) -> Res<types::CniResult> {
                let r = self.delegate(Command::Add, None).await?;
                Ok(r.unwrap_or_default().into())
            }

            async fn ipam_del(&mut self) -> Res<()> {
                Ok(self.delegate(Command::Del, None).await.map(|_| ())?)
            }

            async fn ipam_check(&mut self) -> Res<()> {
                Ok(self.delegate(Command::Check, None).await.map(|_| ())?)
            }

            async fn ipam_status(&mut self) -> Res<()> {
                Ok(self.delegate(Command::Status, None).await.map(|_| ())?)
            }

            async fn ipam_gc(&mut self, valid: Vec<types::Attachment>) -> Res<()> {
                let valid = valid.into_iter().map(|a| (a.container_id, a.ifname)).collect();
                Ok(self.delegate(Command::Gc, Some(valid)).await.map(|_| ())?)
            }
        }
    };
}
use log_and_delegate;

/// The conversions between the CNI error and the `cni-error` record every
/// package version declares in the same shape, for the invoking module's
/// `WitError`; the kernel's errors reach a plugin as the CNI error they map to.
macro_rules! wit_error_conversions {
    () => {
        impl From<CniError> for WitError {
            fn from(e: CniError) -> Self {
                WitError { code: e.code, msg: e.msg, details: e.details }
            }
        }

        impl From<wasmcni_kernel::Error> for WitError {
            fn from(e: wasmcni_kernel::Error) -> Self {
                CniError::from(e).into()
            }
        }

        impl From<WitError> for CniError {
            fn from(e: WitError) -> Self {
                CniError::from_parts(e.code, e.msg, e.details)
            }
        }
    };
}
use wit_error_conversions;

mod delegate;
pub mod entry;
mod log;
pub mod netlink;
pub mod v0;
pub mod v1;

pub use delegate::Delegate;
pub use entry::{Entry, Module};
pub use netlink::{NetlinkCap, Owner};
pub use wasmcni_kernel::ipam_store::{DEFAULT_DATA_DIR, IpamStore, read_leases};

use wasmcni_engine::{Limited, MemoryLimiter};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Host bindings for the current package, wasmcni:plugin@1.0.0 (wit/).
pub mod bindings {
    wasmtime::component::bindgen!({
        world: "wasmcni-host",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: { "wasmcni:plugin/links.link": super::v1::LinkHandle },
    });
}

/// Host bindings for 0.2.0 (frozen in wit/compat/0.2.0).
pub mod v0_2 {
    wasmtime::component::bindgen!({
        world: "wasmcni-host",
        path: "../../wit/compat/0.2.0",
        imports: { default: async },
        exports: { default: async },
    });
}

/// Host bindings for the 0.1.0 interfaces, over the 0.2.0 types.
pub mod compat {
    wasmtime::component::bindgen!({
        world: "wasmcni:plugin/compat@0.1.0",
        path: ["../../wit/compat/0.2.0", "wit/compat-0.1.0.wit"],
        imports: { default: async },
        exports: { default: async },
        with: {
            "wasmcni:plugin/types@0.2.0": super::v0_2::wasmcni::plugin::types,
            "wasmcni:plugin/log@0.2.0": super::v0_2::wasmcni::plugin::log,
            "wasmcni:plugin/ipam-store@0.2.0": super::v0_2::wasmcni::plugin::ipam_store,
            "wasmcni:plugin/netlink@0.2.0": super::v0_2::wasmcni::plugin::netlink,
        },
    });
}

/// Links the WASI a plugin is granted and every interface of every package
/// version this host serves.
pub fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    wasmcni_engine::wasi::add_to_linker(linker)?;
    bindings::WasmcniHost::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    v0_2::WasmcniHost::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    use compat::wasmcni::plugin0_1_0::{delegate, ipam_store, log, netlink};
    log::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    ipam_store::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    netlink::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    delegate::add_to_linker::<State, HasSelf<State>>(linker, |s| s)
}

/// Per-call store data: WASI with nothing granted (no files, no network, no
/// environment), the memory limiter, and the capabilities of the plugin's role.
pub struct State {
    wasi: WasiCtx,
    /// WASI's resources and this call's link handles.
    table: ResourceTable,
    /// Link handles the guest holds now (bounded: the table is host memory).
    links_held: usize,
    pub limiter: MemoryLimiter,
    pub plugin: String,
    pub netlink: Option<NetlinkCap>,
    pub store: Option<IpamStore>,
    pub delegate: Option<Box<dyn Delegate>>,
}

impl State {
    pub fn new(plugin: String, memory_bytes: usize) -> State {
        // Plugin stderr is the host's stderr (never stdout: that is the CNI result).
        let wasi = WasiCtx::builder().inherit_stderr().build();
        State {
            wasi,
            table: ResourceTable::new(),
            links_held: 0,
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

impl Limited for State {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    /// The packages the host serves for modules built before 1.0 are frozen:
    /// a module built against them must keep linking, byte for byte.
    #[test]
    fn the_frozen_packages_never_change() {
        let frozen = [
            (
                "wit/compat/0.1.0/wasmcni.wit",
                include_str!("../../../wit/compat/0.1.0/wasmcni.wit"),
                "ea0dc653510dc9c19bb34ad6435dfc8c49320f9ebcc2ee4dfa4ef3e29b4a4cf7",
            ),
            (
                "wit/compat/0.2.0/wasmcni.wit",
                include_str!("../../../wit/compat/0.2.0/wasmcni.wit"),
                "681c52e86ea971c0e9674fbb141371f2dac613738ae9ce8642cc0a7ad93a8800",
            ),
        ];
        for (path, text, want) in frozen {
            let have = hex::encode(sha2::Sha256::digest(text));
            assert_eq!(have, want, "{path} is frozen: serve a new package version instead of editing it");
        }
    }
}
