//! Applies the routing plugin's routes in the daemon's own netns, on the
//! underlay interface. It remembers what it installed, so a withdrawn node's
//! route is removed and no other route is touched, and it refuses a route
//! outside the cluster network: the plugin computes, the host decides.

use crate::cni::result::Route;
use anyhow::{Result, bail};
use ipnet::{IpNet, Ipv4Net};
use std::collections::BTreeMap;
use wasmcni_kernel::addr::Addresses;
use wasmcni_kernel::link::Links;
use wasmcni_kernel::netns::Kernel;
use wasmcni_kernel::route::Routes;

pub struct Underlay {
    host: Kernel,
    pub name: String,
    installed: BTreeMap<IpNet, Route>,
}

/// The underlay link's index, addresses and MTU.
pub struct UnderlayInfo {
    pub index: u32,
    pub addresses: Vec<IpNet>,
    pub mtu: u32,
}

impl Underlay {
    pub fn new(name: &str) -> Result<Underlay> {
        Ok(Underlay { host: Kernel::host(), name: name.to_owned(), installed: BTreeMap::new() })
    }

    pub async fn info(&self) -> Result<UnderlayInfo> {
        let l = self.host.require_link(&self.name).await?;
        let addresses = self.host.addresses(&l).await?;
        Ok(UnderlayInfo { index: l.index, addresses, mtu: l.mtu })
    }

    /// Makes the routes on the underlay (link `index`) exactly `wanted` (of
    /// those this daemon manages): adds or replaces what changed, removes
    /// what went.
    pub async fn apply(&mut self, network: Ipv4Net, index: u32, wanted: Vec<Route>) -> Result<()> {
        for r in &wanted {
            let inside = matches!(r.dst, IpNet::V4(d) if network.contains(&d) && d.prefix_len() > network.prefix_len());
            if !inside || r.table.is_some() {
                bail!("refusing the route to {} from the routing plugin: not a node subnet of {network}", r.dst);
            }
        }
        let wanted: BTreeMap<IpNet, Route> = wanted.into_iter().map(|r| (r.dst, r)).collect();
        for (dst, r) in &wanted {
            if self.installed.get(dst) != Some(r) {
                self.host.replace_route(r, Some(index)).await?;
                tracing::info!("route {dst} via {} dev {}", r.gw.map_or("-".into(), |g| g.to_string()), self.name);
            }
        }
        for (dst, r) in &self.installed {
            if !wanted.contains_key(dst) {
                // Already gone (the link went down, say) is as good as removed.
                if let Err(e) = self.host.del_route(r, Some(index)).await {
                    tracing::warn!("removing the route to {dst}: {e}");
                }
                tracing::info!("withdrew the route to {dst}");
            }
        }
        self.installed = wanted;
        Ok(())
    }
}
