//! `wasmcni`: a CNI plugin whose networking logic runs as sandboxed
//! WebAssembly components. Exec'd with CNI_COMMAND set, or through a
//! `wasm-<module>` link, it is a CNI plugin (and without CNI_COMMAND answers
//! with a CNI error); otherwise it is a command-line tool (`wasmcni --help`).

mod attachments;
mod cli;
mod cluster;
mod cni;
mod config;
mod conformance;
mod daemon;
mod delegation;
mod logging;
mod netpol;
mod runner;
mod scaffold;

use std::process::ExitCode;

fn main() -> ExitCode {
    logging::init();
    tracing::debug!("start");
    if std::env::var_os("CNI_COMMAND").is_some() || exec_as_plugin() {
        return cni::plugin_main();
    }
    cli::main()
}

/// Whether this binary was exec'd through a `wasm-<module>` link.
fn exec_as_plugin() -> bool {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    std::path::Path::new(&argv0).file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b"wasm-"))
}
