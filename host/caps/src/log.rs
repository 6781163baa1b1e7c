//! The log capability: plugin messages go to the host's log, tagged with the plugin.

use crate::bindings::wasmcni::plugin::log::Level;

pub fn emit(plugin: &str, level: Level, msg: &str) {
    match level {
        Level::Error => tracing::error!(plugin, "{msg}"),
        Level::Warn => tracing::warn!(plugin, "{msg}"),
        Level::Info => tracing::info!(plugin, "{msg}"),
        Level::Debug => tracing::debug!(plugin, "{msg}"),
    }
}
