//! The host traits of wasmcni:plugin@1.x, one module per kernel interface
//! (`links`, `addresses`, `routes`, `sysctl`, `nat`), `overlay` and
//! `netpol` for the node-overlay and network-policy exports, and this one
//! for the rest (types, log, ipam-store,
//! delegate). The WIT's typed addresses,
//! prefixes and MACs convert to the model's (`convert`) and go to the same
//! capability functions as the 0.x adapter's.

mod addresses;
pub mod convert;
mod links;
mod nat;
pub mod netpol;
pub mod overlay;
mod routes;
mod sysctl;

use super::State;
use super::bindings::wasmcni::plugin::{self as current, ipam_store, types};
use super::netlink::{NetlinkCap, Side};
pub use links::LinkHandle;
use types::CniError as WitError;
use wasmcni_cni::call::Call;
use wasmcni_cni::env::Command;
use wasmcni_cni::error::{CniError, Code};
use wasmcni_cni::requested::Requested;
use wasmcni_kernel::ipam_store::Leases;
use wasmtime::component::Resource;

type Res<T> = Result<T, WitError>;

/// The most link handles one call may hold at once (the WIT says so too).
const MAX_LINK_HANDLES: usize = 4096;

super::wit_error_conversions!();

impl State {
    pub(super) fn netlink(&mut self) -> Result<&mut NetlinkCap, CniError> {
        let plugin = &self.plugin;
        self.netlink.as_mut().ok_or_else(|| CniError::denied(format!("plugin {plugin} was not granted netlink")))
    }

    pub(super) fn ipam(&self) -> Result<&super::IpamStore, CniError> {
        self.store
            .as_ref()
            .ok_or_else(|| CniError::denied(format!("plugin {} was not granted the IPAM store", self.plugin)))
    }

    pub(super) async fn delegate(
        &mut self,
        command: Command,
        valid: Option<Vec<(String, String)>>,
    ) -> Result<Option<wasmcni_cni::result::CniResult>, CniError> {
        let plugin = self.plugin.clone();
        let d = self
            .delegate
            .as_mut()
            .ok_or_else(|| CniError::denied(format!("plugin {plugin} was not granted IPAM delegation")))?;
        d.run(command, valid).await
    }

    /// The link a handle names (a copy: the table stays borrowable).
    fn link(&self, handle: &Resource<LinkHandle>) -> Result<LinkHandle, CniError> {
        self.table.get(handle).cloned().map_err(|e| CniError::new(Code::PluginFailure, format!("link handle: {e}")))
    }

    /// Hands the plugin a handle to `link`.
    fn hand_out(&mut self, link: LinkHandle) -> Result<Resource<LinkHandle>, CniError> {
        if self.links_held >= MAX_LINK_HANDLES {
            return Err(CniError::new(
                Code::PluginFailure,
                format!("plugin {} holds {MAX_LINK_HANDLES} link handles: drop some", self.plugin),
            ));
        }
        let handle =
            self.table.push(link).map_err(|e| CniError::new(Code::PluginFailure, format!("link handle: {e}")))?;
        self.links_held += 1;
        Ok(handle)
    }

    /// Takes a handle back from the plugin (dropped or consumed by `delete`).
    fn take_back(&mut self, handle: Resource<LinkHandle>) -> Result<LinkHandle, CniError> {
        let link =
            self.table.delete(handle).map_err(|e| CniError::new(Code::PluginFailure, format!("link handle: {e}")))?;
        self.links_held -= 1;
        Ok(link)
    }
}

impl From<types::Side> for Side {
    fn from(s: types::Side) -> Side {
        match s {
            types::Side::Host => Side::Host,
            types::Side::Container => Side::Container,
        }
    }
}

impl From<Side> for types::Side {
    fn from(s: Side) -> types::Side {
        match s {
            Side::Host => types::Side::Host,
            Side::Container => types::Side::Container,
        }
    }
}

impl types::Host for State {}

/// The invocation as a 1.x module gets it.
pub fn invocation(call: &Call, netns_open: bool, config: String, requested: Requested) -> types::Invocation {
    types::Invocation {
        container_id: call.env.container_id.clone(),
        ifname: call.env.ifname.clone(),
        netns: call.env.netns.clone().filter(|_| netns_open),
        args: call.env.args.iter().map(|(k, v)| types::Arg { key: k.clone(), value: v.clone() }).collect(),
        network_name: call.conf.name.clone(),
        config,
        requested: types::Requested {
            ips: requested.ips.into_iter().map(Into::into).collect(),
            mac: requested.mac.map(convert::to_mac),
        },
        prev_result: call.conf.prev_result.clone().map(Into::into),
    }
}

impl ipam_store::Host for State {
    async fn reserve(
        &mut self,
        ip: types::IpAddress,
        container_id: String,
        ifname: String,
        range_set: u32,
    ) -> Res<bool> {
        Ok(self.ipam()?.reserve(ip.into(), &container_id, &ifname, range_set)?)
    }

    async fn last_reserved(&mut self, range_set: u32) -> Res<Option<types::IpAddress>> {
        Ok(self.ipam()?.last_reserved(range_set)?.map(Into::into))
    }

    async fn leases(&mut self) -> Res<Vec<ipam_store::Lease>> {
        Ok(self
            .ipam()?
            .list()?
            .into_iter()
            .map(|l| ipam_store::Lease { ip: l.ip.into(), container_id: l.container_id, ifname: l.ifname })
            .collect())
    }

    async fn release_owner(&mut self, container_id: String, ifname: String) -> Res<Vec<types::IpAddress>> {
        Ok(self.ipam()?.release_owner(&container_id, &ifname)?.into_iter().map(Into::into).collect())
    }
}

super::log_and_delegate!(current);
