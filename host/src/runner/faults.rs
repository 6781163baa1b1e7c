//! What went wrong below a call, in CNI terms: the one place the engine's
//! errors and a module's faults become CNI codes.

use crate::cni::error::{CniError, Code, Failure};
use crate::config::Limits;
use std::time::Instant;
use wasmcni_caps::State;
use wasmcni_engine::{Fault, limits};
use wasmtime::Store;

/// A module that cannot be run as asked is a config error (7), and so is
/// one that cannot be read, unless the node ran out of descriptors or
/// memory (then it is the I/O error it is); a failure of the host's own is 5.
pub fn engine_error(e: wasmcni_engine::Error) -> CniError {
    match e {
        wasmcni_engine::Error::Refused(msg) => CniError::config(msg),
        wasmcni_engine::Error::Unreadable { path, source } => {
            let e = CniError::from_io(format!("cannot read module {}", path.display()), &source);
            if e.code == Code::IoFailure { CniError::config(e.msg) } else { e }
        }
        wasmcni_engine::Error::Host(msg) => CniError::io(msg),
    }
}

/// Runs a call into a module until `deadline`, turning a trap, a timeout or
/// running out of memory into the CNI error that names the plugin and the
/// reason.
pub async fn guarded<R>(
    name: &str,
    store: &mut Store<State>,
    limits: Limits,
    deadline: Instant,
    f: impl AsyncFnOnce(&mut Store<State>) -> wasmtime::Result<R>,
) -> Result<R, CniError> {
    let outcome = limits::guarded(store, deadline, f).await;
    tracing::debug!(plugin = %name, "returned");
    outcome.map_err(|fault| match fault {
        Fault::TimedOut => timed_out(name, limits),
        Fault::OutOfMemory { max_mib } => {
            CniError::new(Code::PluginFailure, format!("plugin {name} exceeded its memory limit of {max_mib} MiB"))
                .with_failure(Failure::OutOfMemory)
        }
        Fault::Trap(err) => CniError::new(Code::PluginFailure, format!("plugin {name} trapped: {err}"))
            .with_details(format!("{err:?}"))
            .with_failure(Failure::Trap),
    })
}

fn timed_out(plugin: &str, limits: Limits) -> CniError {
    CniError::new(Code::PluginFailure, format!("plugin {plugin} timed out after {} ms", limits.timeout.as_millis()))
        .with_failure(Failure::Timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_their_cni_codes() {
        assert_eq!(engine_error(wasmcni_engine::Error::Refused("no world".into())).code, 7);
        assert_eq!(engine_error(wasmcni_engine::Error::Host("no engine".into())).code, 5);
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = engine_error(wasmcni_engine::Error::Unreadable { path: "/m.wasm".into(), source: missing });
        assert_eq!(e.code, 7);
        assert!(e.msg.contains("cannot read module /m.wasm"), "{}", e.msg);
        let no_fds = std::io::Error::from_raw_os_error(nix::libc::EMFILE);
        let e = engine_error(wasmcni_engine::Error::Unreadable { path: "/m.wasm".into(), source: no_fds });
        assert_eq!(e.code, Code::TryAgainLater);
    }
}
