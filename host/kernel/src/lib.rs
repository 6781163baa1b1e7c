//! What wasmcni asks of the kernel, below every plugin and every WIT
//! version: network namespaces, links, addresses and routes over rtnetlink,
//! sysctls under /proc/sys/net, masquerade in wasmcni's own nftables table,
//! and the lease store in the reference host-local layout. Nothing here
//! knows about plugins or their scope: the capabilities above check that.
//!
//! Each area is a trait ([`link::Links`], [`addr::Addresses`],
//! [`route::Routes`], [`sysctl::Sysctl`], bundled per namespace as
//! [`netns::Namespace`]; [`overlay::Overlay`]; [`masquerade::Nat`];
//! [`ipam_store::Leases`]) with the
//! kernel's implementation here and an in-memory one in `fake` (feature
//! `fake`) that refuses what the kernel refuses, with the same errors. Every
//! failure is an [`Error`], which becomes a CNI error (its code and message)
//! in one place.

pub mod addr;
pub mod error;
pub mod events;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod flock;
pub mod ipam_store;
pub mod link;
pub mod masquerade;
pub mod netns;
pub mod netpol;
mod nft;
pub mod overlay;
pub mod route;
pub mod sysctl;

pub use error::{Error, Result};

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod kernel_tests;
