//! The `wasmcni-metadata` custom section the SDK embeds in a module (name,
//! version, world, WIT version), read from the module's bytes.

use serde_json::Value;
use wasmparser::{Parser, Payload};

pub const SECTION: &str = "wasmcni-metadata";

/// The metadata of a component, found in any of its core modules.
pub fn read(wasm: &[u8]) -> Option<Value> {
    Parser::new(0).parse_all(wasm).find_map(|payload| match payload {
        Ok(Payload::CustomSection(c)) if c.name() == SECTION => serde_json::from_slice(c.data()).ok(),
        _ => None,
    })
}
