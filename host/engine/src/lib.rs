//! The WebAssembly engine under every call: one wasmtime configuration (the
//! precompile cache depends on it), an epoch ticker, the precompile cache,
//! worlds by privilege, the slice of WASI a plugin gets, and the limits a
//! call runs under. Nothing here knows CNI: the host above maps its errors
//! and faults to CNI codes.

pub mod cache;
mod error;
pub mod limits;
pub mod metadata;
pub mod module;
pub mod wasi;
pub mod world;

pub use error::Error;
pub use limits::{Fault, Limited, MemoryLimiter};
pub use module::{Module, module_name};
pub use world::Role;

use std::time::Duration;
use wasmtime::{Config, Engine, OptLevel};

/// One epoch tick; deadlines are counted in ticks.
pub const TICK: Duration = Duration::from_millis(10);

/// The engine every module is compiled for. Changing this changes the
/// cache key, so stale artifacts are never loaded.
pub fn new_engine() -> Result<Engine, Error> {
    let mut cfg = Config::new();
    // No native unwind tables or address maps: they only serve native
    // debuggers and wasm backtraces, and registering them is a measurable
    // share of loading a module on every call.
    cfg.epoch_interruption(true)
        .wasm_component_model(true)
        .cranelift_opt_level(OptLevel::Speed)
        .native_unwind_info(false)
        .generate_address_map(false);
    Engine::new(&cfg).map_err(|e| Error::Host(format!("cannot create the wasm engine: {e}")))
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
