//! A policy's answer to an ADD, whichever WIT version it was built for: a
//! deny, or an allow that may change what the plugin runs with.

use crate::result::Route;
use ipnet::IpNet;
use std::net::IpAddr;

/// A range to allocate from, as in host-local's `ranges`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub subnet: IpNet,
    pub range_start: Option<IpAddr>,
    pub range_end: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
}

/// An address to request. A 0.x policy could give it a prefix length
/// (`10.9.0.7/24`), which IPAMs such as the reference `static` need, so it
/// is kept and written back as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WantedIp {
    pub addr: IpAddr,
    pub prefix_len: Option<u8>,
}

impl std::fmt::Display for WantedIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.prefix_len {
            Some(len) => write!(f, "{}/{len}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// What an admitted ADD does differently.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    /// Addresses to request from IPAM (`runtimeConfig.ips`).
    pub ips: Vec<WantedIp>,
    /// When not empty, replaces the IPAM section's ranges: one range set each.
    pub ranges: Vec<Range>,
    /// Appended to the IPAM section's `routes`.
    pub routes: Vec<Route>,
}

/// A policy's answer, whichever WIT version it was built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
    AllowWith(Changes),
}
