//! What can go wrong below a call, in the engine's terms; the host maps each
//! case to a CNI code in one place.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A module that cannot be run as asked: not a component, not in any
    /// world, built for a package this host does not serve, a pin mismatch.
    #[error("{0}")]
    Refused(String),
    /// A module file that cannot be read.
    #[error("cannot read module {}: {source}", path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
    /// The host itself failed (engine, linker, cache writes).
    #[error("{0}")]
    Host(String),
}
