//! CNI errors with the spec's codes, convertible into each world's `cni-error`.

/// The CNI spec's error codes and wasmcni's own (from 100), as the host uses them.
pub use wasmcni_cni::Code;

/// A CNI error as a plugin builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl Error {
    pub fn new(code: Code, msg: impl Into<String>) -> Self {
        Self { code: code.into(), msg: msg.into(), details: String::new() }
    }

    /// Code 7: the network configuration is invalid.
    pub fn config(msg: impl Into<String>) -> Self {
        Self::new(Code::InvalidConfig, msg)
    }

    /// Code 100: a plugin-specific failure.
    pub fn plugin(msg: impl Into<String>) -> Self {
        Self::new(Code::PluginFailure, msg)
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.msg, self.code)
    }
}

impl std::error::Error for Error {}

use crate::bindings::wasmcni::plugin::types::CniError;

impl From<Error> for CniError {
    fn from(e: Error) -> Self {
        CniError { code: e.code, msg: e.msg, details: e.details }
    }
}

impl From<CniError> for Error {
    fn from(e: CniError) -> Self {
        Error { code: e.code, msg: e.msg, details: e.details }
    }
}
