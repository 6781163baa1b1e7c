//! What wasmcni asks of the kernel, below every plugin and every WIT
//! version: network namespaces, links, addresses and routes over rtnetlink,
//! sysctls under /proc/sys/net, masquerade in wasmcni's own nftables table,
//! and the lease store in the reference host-local layout. Nothing here
//! knows about plugins or their scope: the capabilities above check that.

pub mod addr;
pub mod ipam_store;
pub mod link;
pub mod masquerade;
pub mod netns;
pub mod route;
pub mod sysctl;

#[cfg(test)]
mod kernel_tests;
