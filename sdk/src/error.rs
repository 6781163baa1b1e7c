//! CNI errors with the spec's codes, convertible into each world's `cni-error`.

/// Error codes from the CNI spec; plugin-specific codes start at 100.
pub mod codes {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODE_FAILURE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
    pub const LIMITED_CONNECTIVITY: u32 = 51;
    /// First plugin-specific code.
    pub const PLUGIN: u32 = 100;
}

/// A CNI error as a plugin builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl Error {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        Self { code, msg: msg.into(), details: String::new() }
    }

    /// Code 7: the network configuration is invalid.
    pub fn config(msg: impl Into<String>) -> Self {
        Self::new(codes::INVALID_CONFIG, msg)
    }

    /// Code 100: a plugin-specific failure.
    pub fn plugin(msg: impl Into<String>) -> Self {
        Self::new(codes::PLUGIN, msg)
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
