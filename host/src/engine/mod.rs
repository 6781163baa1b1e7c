//! The wasmtime engine: one configuration (the precompile cache depends on
//! it), an epoch ticker for deadlines, a memory limiter, and the runner that
//! instantiates a plugin for one call.

pub mod cache;
mod limiter;
pub mod metadata;
pub mod module;
mod run;
mod wasi;
pub mod world;

pub use limiter::MemoryLimiter;
pub use module::module_name;
pub use run::{CALL_THREAD, Host, Runner, Target, Underlay};
pub use world::Role;

use crate::cni::error::CniError;
use std::time::Duration;
use wasmtime::{Config, Engine, OptLevel};

/// One epoch tick; deadlines are counted in ticks.
pub const TICK: Duration = Duration::from_millis(10);

/// The engine every module is compiled for. Changing this changes the
/// cache key, so stale artifacts are never loaded.
pub fn new_engine() -> Result<Engine, CniError> {
    let mut cfg = Config::new();
    // No native unwind tables or address maps: they only serve native
    // debuggers and wasm backtraces, and registering them is a measurable
    // share of loading a module on every call.
    cfg.epoch_interruption(true)
        .wasm_component_model(true)
        .cranelift_opt_level(OptLevel::Speed)
        .native_unwind_info(false)
        .generate_address_map(false);
    Engine::new(&cfg).map_err(|e| CniError::io(format!("cannot create the wasm engine: {e}")))
}

/// Advances the engine's epoch every tick, for as long as the process lives.
pub fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(TICK);
            match weak.upgrade() {
                Some(e) => e.increment_epoch(),
                None => break,
            }
        }
    });
}
