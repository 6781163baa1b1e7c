//! Network policy enforcement: the local pods' allow-lists as one nftables
//! table, `inet wasmcni-netpol`, replaced whole in one atomic transaction
//! per update, so traffic never meets half a policy.
//!
//! # Kernel layout
//!
//! - base chain `forward` (hook forward, priority filter = 0, policy accept):
//!   established and related traffic accepted; IPv6 neighbour discovery
//!   accepted (a pod must resolve its peers whatever its policy); then
//!   `saddr vmap @egress4/6` and `daddr vmap @ingress4/6`, verdict maps from
//!   an isolated pod's address to a jump into its chain;
//! - per isolated pod and direction, a chain `in-<ns>.<name>` /
//!   `out-<ns>.<name>`: one rule per (peer, port) an allow-list admits, each
//!   ending in `return` (on to the other direction's check), and a final
//!   reject (a TCP reset, else `icmpx admin-prohibited`), so a refused
//!   connection fails at once instead of timing out;
//! - per allow-list whose peers include single addresses, a set
//!   `<chain>-<k>-4` / `-6` of them; other prefixes are a rule each.
//!
//! Only the forward hook is filtered: traffic the node itself sends to its
//! pods (kubelet's probes) goes out through the output hook and is never
//! refused, as the NetworkPolicy API requires. Pods on one bridge reach
//! the forward hook only with `net.bridge.bridge-nf-call-iptables` (and
//! `-ip6tables`) set in the node's namespace, as Kubernetes requires too:
//! applying an isolating policy sets them, and fails where the kernel has
//! no br_netfilter (a policy that silently does not hold is worse).

mod compile;

use crate::netns::Kernel;
use crate::nft::{Failure, Lazy};
use crate::sysctl::Sysctl;
use ipnet::IpNet;
use serde::Serialize;
use std::net::IpAddr;

pub const TABLE: &str = "wasmcni-netpol";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The IP protocol number.
    fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }
}

/// Ports of one protocol: all, or an inclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ports {
    pub protocol: Protocol,
    pub range: Option<(u16, u16)>,
}

/// Traffic one direction allows: with `peers` (every address when none) on
/// `ports` (every port when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allow {
    pub peers: Option<Vec<IpNet>>,
    pub ports: Vec<Ports>,
}

/// One local pod's filter. A direction that is `None` is not isolated: all
/// of its traffic passes. `Some(allows)` admits what any of them allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFilter {
    /// `<namespace>.<name>`: unique per pod (namespaces have no dots), and what its chains are named after.
    pub name: String,
    pub addrs: Vec<IpAddr>,
    pub ingress: Option<Vec<Allow>>,
    pub egress: Option<Vec<Allow>>,
}

/// The policy in force on this node.
pub trait Filter: Send + Sync {
    /// Makes `pods` the whole of it, atomically; nothing isolated removes the table.
    fn apply(&self, pods: &[PodFilter]) -> crate::Result<()>;
}

/// [`Filter`] in the kernel, over nfnetlink, in the network namespace of
/// the thread that first calls it.
#[derive(Default)]
pub struct Nftables(Lazy);

impl Filter for Nftables {
    fn apply(&self, pods: &[PodFilter]) -> crate::Result<()> {
        if pods.iter().any(|p| p.ingress.is_some() || p.egress.is_some()) {
            filter_bridged()?;
        }
        self.0.call(compile::ruleset(pods), true).map_err(|f| match f {
            Failure::Refused { op, errno } => {
                crate::Error::Nftables { op, source: std::io::Error::from_raw_os_error(errno) }
            }
            Failure::Socket { op, source } => crate::Error::Io { what: format!("nfnetlink socket ({op})"), source },
        })
    }
}

/// Makes bridged traffic pass the forward hook (in this thread's netns).
fn filter_bridged() -> crate::Result<()> {
    let node = Kernel::host();
    for key in ["bridge/bridge-nf-call-iptables", "bridge/bridge-nf-call-ip6tables"] {
        if node.sysctl(key)? != "1" {
            node.set_sysctl(key, "1")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod kernel_tests;
