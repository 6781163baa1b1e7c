//! Calls into a module's export, in the records of its package version: a
//! handler's command, a policy's admission, a routing plugin's node routes,
//! an overlay plugin's entries, a network policy module's rules.

use super::faults::guarded;
use super::{Runner, Target};
use crate::cni::admission::Decision;
use crate::cni::call::Call;
use crate::cni::env::Command;
use crate::cni::error::{CniError, Code};
use crate::cni::requested::Requested;
use crate::cni::result::{CniResult, Route};
use ipnet::IpNet;
use std::net::IpAddr;
use std::time::Instant;
use wasmcni_caps::v1::{convert, netpol, overlay};
use wasmcni_caps::{Entry, Module, State, v0, v1};
use wasmcni_cni::Mac;
use wasmcni_engine::Role;
use wasmtime::Store;

impl Runner {
    /// Asks the policy `target` whether `call`'s ADD may go ahead; `config`
    /// is the policy's own entry of the plugin's `policies`.
    pub async fn admit(&self, target: &Target, call: &Call, config: String) -> Result<Decision, CniError> {
        let deadline = Instant::now() + target.limits.timeout;
        let (module, mut store) = self.capless(target, Role::Policy, deadline)?;
        let inv = Invocation { call, netns_open: call.env.netns.is_some(), config: &config };
        let name = module.name.clone();
        guarded(&module.name, &mut store, target.limits, deadline, async |store| {
            let instance = module.pre.instantiate_async(&mut *store).await?;
            Ok(match &module.entry {
                Entry::Admission(ix) => match inv.v1(Command::Add) {
                    Ok(inv) => {
                        let d = ix.load(&mut *store, &instance)?.call_admit(&mut *store, &inv).await?;
                        convert::decision(d, &name)
                    }
                    Err(e) => Err(e),
                },
                Entry::AdmissionV0_2(ix) => {
                    let d = ix.load(&mut *store, &instance)?.call_admit(&mut *store, &inv.v0()).await?;
                    v0::decision(d, &name)
                }
                _ => Err(CniError::config(format!("module {name} is not a policy"))),
            })
        })
        .await?
    }

    /// Asks the routing plugin `target` for the routes from `local` to its
    /// peers' pods through `underlay`.
    pub async fn node_routes(
        &self,
        target: &Target,
        config: String,
        local: NodeClaim,
        peers: &[NodeClaim],
        underlay: Underlay<'_>,
    ) -> Result<Vec<Route>, CniError> {
        let deadline = Instant::now() + target.limits.timeout;
        let (module, mut store) = self.capless(target, Role::Routing, deadline)?;
        let name = module.name.clone();
        let invalid = |e: CniError| CniError::new(Code::PluginFailure, format!("plugin {name} returned {}", e.msg));
        guarded(&module.name, &mut store, target.limits, deadline, async |store| {
            let instance = module.pre.instantiate_async(&mut *store).await?;
            Ok(match &module.entry {
                Entry::NodeRoutes(ix) => {
                    use wasmcni_caps::bindings::exports::wasmcni::plugin::node_routes as w;
                    let lease = |(ip, subnet): &NodeClaim| convert::node_lease(*ip, *subnet);
                    let peers: Vec<w::NodeLease> = peers.iter().map(lease).collect();
                    let link = w::Underlay {
                        name: underlay.name.to_owned(),
                        addresses: underlay.addresses.iter().map(|a| (*a).into()).collect(),
                    };
                    let guest = ix.load(&mut *store, &instance)?;
                    match guest.call_routes(&mut *store, &config, lease(&local), &peers, &link).await? {
                        Ok(routes) => routes.into_iter().map(convert::route).collect::<Result<_, _>>().map_err(invalid),
                        Err(e) => Err(e.into()),
                    }
                }
                Entry::NodeRoutesV0_2(ix) => {
                    use wasmcni_caps::v0_2::exports::wasmcni::plugin::node_routes as w;
                    let lease =
                        |(ip, subnet): &NodeClaim| w::NodeLease { ip: ip.to_string(), subnet: subnet.to_string() };
                    let peers: Vec<w::NodeLease> = peers.iter().map(lease).collect();
                    let link = w::Underlay {
                        name: underlay.name.to_owned(),
                        addresses: underlay.addresses.iter().map(ToString::to_string).collect(),
                    };
                    let guest = ix.load(&mut *store, &instance)?;
                    match guest.call_routes(&mut *store, &config, &lease(&local), &peers, &link).await? {
                        Ok(routes) => {
                            routes.into_iter().map(Route::try_from).collect::<Result<_, _>>().map_err(invalid)
                        }
                        Err(e) => Err(e.into()),
                    }
                }
                _ => Err(CniError::config(format!("module {name} is not a routing plugin"))),
            })
        })
        .await?
    }

    /// Asks the overlay plugin `target` for what reaches `peers`' pods from
    /// `local` through `vtep` (or directly, through `underlay`).
    pub async fn node_overlay(
        &self,
        target: &Target,
        config: String,
        local: &OverlayPeer,
        peers: &[OverlayPeer],
        underlay: Underlay<'_>,
        vtep: &Vtep,
    ) -> Result<overlay::Entries, CniError> {
        let deadline = Instant::now() + target.limits.timeout;
        let (module, mut store) = self.capless(target, Role::Overlay, deadline)?;
        let name = module.name.clone();
        let invalid = |e: CniError| CniError::new(Code::PluginFailure, format!("plugin {name} returned {}", e.msg));
        guarded(&module.name, &mut store, target.limits, deadline, async |store| {
            let instance = module.pre.instantiate_async(&mut *store).await?;
            let Entry::NodeOverlay(ix) = &module.entry else {
                return Ok(Err(CniError::config(format!("module {name} is not an overlay routing plugin"))));
            };
            let lease = |p: &OverlayPeer| overlay::lease(p.ip, p.subnet, p.vtep_mac);
            let peers: Vec<_> = peers.iter().map(lease).collect();
            let link = overlay::underlay(underlay.name, underlay.addresses);
            let vtep = overlay::vtep(&vtep.name, vtep.vni, vtep.mac, vtep.mtu);
            let guest = ix.load(&mut *store, &instance)?;
            Ok(match guest.call_entries(&mut *store, &config, lease(local), &peers, &link, &vtep).await? {
                Ok(e) => overlay::entries(e).map_err(invalid),
                Err(e) => Err(e.into()),
            })
        })
        .await?
    }

    /// Asks the network policy module `target` for the rules of the `local`
    /// pods under `policies` (NetworkPolicy objects as JSON).
    pub async fn network_policy(
        &self,
        target: &Target,
        policies: &[String],
        namespaces: &[netpol::Namespace],
        local: &[netpol::Pod],
        remote: &[netpol::Pod],
        within: Option<Instant>,
    ) -> Result<Vec<netpol::PodRules>, CniError> {
        let deadline = super::deadline_within(target.limits.timeout, within);
        let (module, mut store) = self.capless(target, Role::Netpol, deadline)?;
        let name = module.name.clone();
        let invalid = |e: CniError| CniError::new(Code::PluginFailure, format!("plugin {name} returned {}", e.msg));
        guarded(&module.name, &mut store, target.limits, deadline, async |store| {
            let instance = module.pre.instantiate_async(&mut *store).await?;
            let Entry::NetworkPolicy(ix) = &module.entry else {
                return Ok(Err(CniError::config(format!("module {name} is not a network policy module"))));
            };
            let namespaces: Vec<_> = namespaces.iter().map(netpol::namespace).collect();
            let (local, remote): (Vec<_>, Vec<_>) =
                (local.iter().map(netpol::pod).collect(), remote.iter().map(netpol::pod).collect());
            let guest = ix.load(&mut *store, &instance)?;
            Ok(match guest.call_rules(&mut *store, policies, &namespaces, &local, &remote).await? {
                Ok(r) => netpol::rules(r).map_err(invalid),
                Err(e) => Err(e.into()),
            })
        })
        .await?
    }

    /// What `call` asks for: malformed requests fail an ADD or CHECK with
    /// code 7 before the module runs; the other commands go on without them.
    fn requested(call: &Call, command: Command) -> Result<Requested, CniError> {
        let config = serde_json::from_str(&call.conf.raw).unwrap_or_default();
        match Requested::gather(&call.env.args, &config) {
            Err(e) if matches!(command, Command::Add | Command::Check) => Err(e),
            other => Ok(other.unwrap_or_default()),
        }
    }
}

/// A node's claim on the cluster network, as a routing plugin gets it: its
/// address on the underlay and the pod subnet it holds.
pub type NodeClaim = (IpAddr, IpNet);

/// A node's claim as an overlay plugin gets it: with its VTEP's MAC, if its
/// lease names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlayPeer {
    pub ip: IpAddr,
    pub subnet: IpNet,
    pub vtep_mac: Option<Mac>,
}

/// This node's VTEP, as an overlay plugin is told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vtep {
    pub name: String,
    pub vni: u32,
    pub mac: Mac,
    pub mtu: u32,
}

/// The interface routes to other nodes leave through, and its addresses.
#[derive(Debug, Clone, Copy)]
pub struct Underlay<'a> {
    pub name: &'a str,
    pub addresses: &'a [IpNet],
}

/// The arguments of a handler call, built into the record of the module's
/// package version.
pub(super) struct Invocation<'a> {
    pub call: &'a Call,
    pub netns_open: bool,
    pub config: &'a str,
}

impl Invocation<'_> {
    /// The 1.x record, with the addresses and MAC the call asks for. Only
    /// 1.x modules get those, so only their calls can fail on them.
    fn v1(&self, command: Command) -> Result<wasmcni_caps::bindings::wasmcni::plugin::types::Invocation, CniError> {
        let requested = Runner::requested(self.call, command)?;
        Ok(v1::invocation(self.call, self.netns_open, self.config.to_owned(), requested))
    }

    fn v0(&self) -> wasmcni_caps::v0_2::wasmcni::plugin::types::Invocation {
        v0::invocation(self.call, self.netns_open, self.config.to_owned())
    }
}

type Returned = Result<Option<CniResult>, CniError>;

/// Calls `command` on a handler of any served WIT version; `$result`
/// converts what its ADD returns into the model.
macro_rules! call_handler {
    ($guest:expr, $store:expr, $command:expr, $inv:expr, $valid:expr, $result:expr) => {{
        let (h, store, inv) = ($guest, $store, $inv);
        Ok(match $command {
            Command::Add => match h.call_add(&mut *store, inv).await? {
                Ok(r) => $result(r).map(Some),
                Err(e) => Err(e.into()),
            },
            Command::Del => h.call_del(&mut *store, inv).await?.map(|()| None).map_err(Into::into),
            Command::Check => h.call_check(&mut *store, inv).await?.map(|()| None).map_err(Into::into),
            Command::Status => h.call_status(&mut *store, inv).await?.map(|()| None).map_err(Into::into),
            Command::Gc => h.call_gc(&mut *store, inv, &$valid).await?.map(|()| None).map_err(Into::into),
            Command::Version => unreachable!("VERSION is answered by the host"),
        })
    }};
}

pub(super) async fn call_export(
    module: &Module,
    store: &mut Store<State>,
    command: Command,
    inv: Invocation<'_>,
    valid: Option<Vec<(String, String)>>,
) -> wasmtime::Result<Returned> {
    let instance = module.pre.instantiate_async(&mut *store).await?;
    tracing::debug!("instantiated");
    let valid = valid.unwrap_or_default();
    match &module.entry {
        Entry::Handler(ix) => {
            use wasmcni_caps::bindings::wasmcni::plugin::types::Attachment;
            let valid: Vec<Attachment> =
                valid.into_iter().map(|(container_id, ifname)| Attachment { container_id, ifname }).collect();
            let inv = match inv.v1(command) {
                Ok(inv) => inv,
                Err(e) => return Ok(Err(e)),
            };
            call_handler!(ix.load(&mut *store, &instance)?, store, command, &inv, valid, convert::result)
        }
        Entry::HandlerV0_2(ix) => {
            let (inv, valid) = (inv.v0(), v0::attachments(valid));
            call_handler!(ix.load(&mut *store, &instance)?, store, command, &inv, valid, v0::result)
        }
        Entry::HandlerV0_1(ix) => {
            let (inv, valid) = (inv.v0(), v0::attachments(valid));
            call_handler!(ix.load(&mut *store, &instance)?, store, command, &inv, valid, v0::result)
        }
        _ => unreachable!("run() refuses policies and routing plugins"),
    }
}
