//! The CNI error every failure becomes before it reaches the runtime.

use serde::Serialize;

/// Codes from the CNI spec; plugin-specific codes start at 100.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const INVALID_ENV: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const DECODE_FAILURE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    /// A plugin trapped, timed out, ran out of memory or broke the contract.
    pub const PLUGIN_FAILURE: u32 = 100;
    /// A plugin asked for something outside its capabilities.
    pub const CAPABILITY_DENIED: u32 = 101;
    /// The kernel refused a netlink or sysctl request.
    pub const KERNEL: u32 = 102;
    /// A policy denied the ADD.
    pub const POLICY_DENIED: u32 = 103;
}

/// How a plugin call failed, when the sandbox stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Trap,
    Timeout,
    OutOfMemory,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{msg} (code {code})")]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// Set when the sandbox stopped the plugin (for metrics; not printed).
    #[serde(skip)]
    pub failure: Option<Failure>,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        Self { code, msg: msg.into(), details: String::new(), failure: None }
    }

    pub fn from_parts(code: u32, msg: String, details: String) -> Self {
        Self { code, msg, details, failure: None }
    }

    pub fn with_failure(mut self, failure: Failure) -> Self {
        self.failure = Some(failure);
        self
    }

    pub fn with_details(mut self, details: impl std::fmt::Display) -> Self {
        self.details = details.to_string();
        self
    }

    pub fn config(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_CONFIG, msg)
    }

    pub fn env(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_ENV, msg)
    }

    pub fn io(msg: impl Into<String>) -> Self {
        Self::new(code::IO_FAILURE, msg)
    }

    pub fn denied(msg: impl Into<String>) -> Self {
        Self::new(code::CAPABILITY_DENIED, msg)
    }

    /// An I/O failure of `what`. Running out of file descriptors, memory or
    /// buffers is "try again later" (11): the call was fine, the node was busy.
    pub fn from_io(what: impl std::fmt::Display, e: &std::io::Error) -> Self {
        use nix::errno::Errno;
        let exhausted = [Errno::EMFILE, Errno::ENFILE, Errno::ENOMEM, Errno::ENOBUFS, Errno::EAGAIN];
        match e.raw_os_error() {
            Some(n) if exhausted.contains(&Errno::from_raw(n)) => Self::new(
                code::TRY_AGAIN_LATER,
                format!("{what}: {e} (the node is short of resources; try again later)"),
            ),
            _ => Self::io(format!("{what}: {e}")),
        }
    }

    pub fn kernel(what: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        Self::new(code::KERNEL, format!("{what}: {err}"))
    }

    /// The error as the spec prints it on stdout.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("plain struct");
        v["cniVersion"] = cni_version.into();
        v
    }
}
