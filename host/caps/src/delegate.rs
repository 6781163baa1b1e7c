//! IPAM delegation as a plugin sees it: the host above decides how a
//! plugin's `ipam` section runs (a Wasm module or an exec'd binary) and
//! what a failed ADD undoes.

use futures::future::BoxFuture;
use wasmcni_cni::CniError;
use wasmcni_cni::env::Command;
use wasmcni_cni::result::CniResult;

pub trait Delegate: Send {
    /// Runs `command` of the call's IPAM; `valid` is GC's attachment list
    /// (container ID, ifname).
    fn run(
        &mut self,
        command: Command,
        valid: Option<Vec<(String, String)>>,
    ) -> BoxFuture<'_, Result<Option<CniResult>, CniError>>;

    /// Rolls back what a failed ADD's IPAM took.
    fn undo(&mut self) -> BoxFuture<'_, ()>;
}
