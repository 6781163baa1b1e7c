//! Daemon mode: `wasmcni daemon` keeps every module compiled and linked
//! behind an HTTP API on a unix socket, swaps modules live, and serves
//! metrics; the exec'd binary becomes a shim that forwards CNI calls to it.

mod api;
mod budget;
pub mod client;
mod listen;
mod metrics;
pub(crate) mod ordering;
pub mod protocol;
mod server;
mod watch;

pub use server::{Options, serve};

#[cfg(test)]
mod api_tests;
