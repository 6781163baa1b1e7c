//! `wasmcni`: a CNI plugin whose networking logic runs as sandboxed
//! WebAssembly components. Exec'd with CNI_COMMAND set it is a CNI plugin;
//! otherwise it is a command-line tool (see `wasmcni --help`).

mod attachments;
mod caps;
mod cli;
mod cluster;
mod cni;
mod config;
mod daemon;
mod engine;
mod logging;
mod scaffold;

use std::process::ExitCode;

fn main() -> ExitCode {
    logging::init();
    tracing::debug!("start");
    if std::env::var_os("CNI_COMMAND").is_some() {
        return cni::plugin_main();
    }
    cli::main()
}
