//! The JSON the shim and the daemon exchange on `POST /v1/cni`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A whole CNI call: what the runtime gave the exec'd binary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CniRequest {
    pub command: String,
    /// The name the binary was exec'd as (`wasm-<module>` selects a module).
    #[serde(default)]
    pub argv0: String,
    /// The CNI_* variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The network config, as read from stdin.
    #[serde(default)]
    pub stdin: String,
}

/// What the shim prints and the status it exits with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CniReply {
    pub exit_code: i32,
    pub stdout: String,
}

/// The CNI_* variables a shim forwards.
pub const CNI_VARS: &[&str] = &["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"];
