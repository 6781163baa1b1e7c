//! The CNI error every failure becomes before it reaches the runtime.

use serde::Serialize;

/// Codes from the CNI spec; codes from 100 up are wasmcni's own. A plugin
/// may return any code, so `CniError::code` stays a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Code {
    IncompatibleVersion = 1,
    UnsupportedField = 2,
    UnknownContainer = 3,
    InvalidEnv = 4,
    IoFailure = 5,
    DecodeFailure = 6,
    InvalidConfig = 7,
    TryAgainLater = 11,
    PluginNotAvailable = 50,
    LimitedConnectivity = 51,
    /// A plugin trapped, timed out, ran out of memory or broke the contract.
    PluginFailure = 100,
    /// A plugin asked for something outside its capabilities.
    CapabilityDenied = 101,
    /// The kernel refused a netlink or sysctl request.
    Kernel = 102,
    /// A policy denied the ADD.
    PolicyDenied = 103,
}

impl From<Code> for u32 {
    fn from(c: Code) -> u32 {
        c as u32
    }
}

impl PartialEq<Code> for u32 {
    fn eq(&self, c: &Code) -> bool {
        *self == *c as u32
    }
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
    pub fn new(code: Code, msg: impl Into<String>) -> Self {
        Self { code: code.into(), msg: msg.into(), details: String::new(), failure: None }
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
        Self::new(Code::InvalidConfig, msg)
    }

    pub fn env(msg: impl Into<String>) -> Self {
        Self::new(Code::InvalidEnv, msg)
    }

    pub fn io(msg: impl Into<String>) -> Self {
        Self::new(Code::IoFailure, msg)
    }

    pub fn denied(msg: impl Into<String>) -> Self {
        Self::new(Code::CapabilityDenied, msg)
    }

    /// An I/O failure of `what`. Running out of file descriptors, memory or
    /// buffers is "try again later" (11): the call was fine, the node was busy.
    #[cfg(target_os = "linux")]
    pub fn from_io(what: impl std::fmt::Display, e: &std::io::Error) -> Self {
        use nix::errno::Errno;
        let exhausted = [Errno::EMFILE, Errno::ENFILE, Errno::ENOMEM, Errno::ENOBUFS, Errno::EAGAIN];
        match e.raw_os_error() {
            Some(n) if exhausted.contains(&Errno::from_raw(n)) => {
                Self::new(Code::TryAgainLater, format!("{what}: {e} (the node is short of resources; try again later)"))
            }
            _ => Self::io(format!("{what}: {e}")),
        }
    }

    pub fn kernel(what: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        Self::new(Code::Kernel, format!("{what}: {err}"))
    }

    /// The error as the spec prints it on stdout.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("plain struct");
        v["cniVersion"] = cni_version.into();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_short_of_resources_is_try_again_later_and_other_io_failures_are_code_5() {
        for errno in [nix::libc::EMFILE, nix::libc::ENFILE, nix::libc::ENOMEM, nix::libc::EAGAIN] {
            let e = CniError::from_io("open", &std::io::Error::from_raw_os_error(errno));
            assert_eq!(e.code, Code::TryAgainLater, "{e}");
        }
        let e = CniError::from_io("open /x", &std::io::Error::from_raw_os_error(nix::libc::ENOENT));
        assert_eq!(e.code, Code::IoFailure);
        assert!(e.msg.starts_with("open /x: "), "{}", e.msg);
    }

    #[test]
    fn the_spec_s_json_carries_the_version_and_leaves_out_empty_details() {
        let v = CniError::new(Code::InvalidConfig, "bad").to_json("1.0.0");
        assert_eq!(v, serde_json::json!({"cniVersion": "1.0.0", "code": 7, "msg": "bad"}));
        let v = CniError::new(Code::Kernel, "no").with_details("EPERM").to_json("0.4.0");
        assert_eq!(v["details"], "EPERM");
        assert_eq!(u32::from(Code::PolicyDenied), 103);
    }
}
