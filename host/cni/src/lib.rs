//! The CNI vocabulary: what the runtime and a plugin say to each other.
//! Commands and the CNI_* environment, spec versions, error codes, the typed
//! result model and its form in every spec version, and one plugin's network
//! config. No kernel, no Wasm: the SDK builds on this too.

pub mod call;
pub mod decision;
pub mod env;
pub mod error;
pub mod mac;
pub mod netconf;
pub mod requested;
pub mod result;
pub mod version;

pub use error::{CniError, Code};
pub use mac::Mac;
