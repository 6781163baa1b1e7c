//! Cluster mode of the daemon: this node's pod subnet, claimed from etcd (or
//! read from a static peers file), written to a flannel-compatible
//! `subnet.env` that the node's network config takes its IPAM subnet from;
//! and what reaches every other node's pods, computed by a routing plugin
//! from the node leases and kept in the kernel: routes (host-gw), or with an
//! overlay plugin (vxlan) a VTEP, its neighbour and FDB entries and routes
//! through it (`keep`, `routes`, `vtep`).

mod etcd;
mod keep;
pub mod network;
mod peers;
mod routes;
mod vtep;

use crate::config::Limits;
use crate::runner::{Runner, Target};
use anyhow::{Context, Result};
use ipnet::{Ipv4Net, Ipv6Net};
use network::{BackendConfig, SubnetEnv};
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use wasmcni_cni::Mac;
use wasmcni_engine::Role;

pub use keep::Health;

/// A node's claim on the cluster network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLease {
    pub ip: IpAddr,
    pub subnet: Ipv4Net,
    /// Its VTEP's MAC, when its lease is a VXLAN backend's.
    pub vtep_mac: Option<Mac>,
    /// Dual stack: its IPv6 claim.
    pub v6: Option<NodeLease6>,
}

/// A node's IPv6 claim, beside its IPv4 one (flannel's `EnableIPv6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLease6 {
    pub ip: Ipv6Addr,
    pub subnet: Ipv6Net,
    /// Its IPv6 VTEP's MAC.
    pub vtep_mac: Option<Mac>,
}

pub struct Options {
    pub etcd_endpoints: Vec<String>,
    pub peers_file: Option<PathBuf>,
    pub node_ip: IpAddr,
    /// This node's IPv6 underlay address, for a dual-stack network.
    pub node_ipv6: Option<Ipv6Addr>,
    pub underlay: String,
    pub etcd_prefix: String,
    pub subnet_file: PathBuf,
    pub lease_ttl: Duration,
    /// The routing module (name or path) and its config.
    pub routing_plugin: String,
    pub routing_config: String,
    pub ip_masq: bool,
}

/// What the route loop works from.
struct Cluster {
    network: Ipv4Net,
    /// The IPv6 cluster network, with dual stack.
    network6: Option<Ipv6Net>,
    local: NodeLease,
    nodes: watch::Receiver<Vec<NodeLease>>,
}

/// How this node reaches other nodes' pods: by routes on the underlay alone
/// (a routing plugin), or through a VTEP (an overlay plugin).
#[derive(Debug, Clone)]
enum Mode {
    Routes,
    /// A VTEP per family (the IPv6 one with dual stack).
    Overlay {
        v4: vtep::Spec,
        v6: Option<vtep::Spec>,
    },
}

impl Mode {
    /// The mode `role` asks for, with the VTEPs flannel's `Backend`
    /// describes (one for IPv6 when the node has an IPv6 address `node6`).
    fn new(role: Role, backend: &BackendConfig, node: IpAddr, node6: Option<Ipv6Addr>) -> Mode {
        let overlay = role == Role::Overlay;
        if let Some(kind) = &backend.kind
            && (kind == "vxlan") != overlay
        {
            tracing::warn!("the network config's Backend is {kind}, but the routing plugin is a {} one", role.world());
        }
        let (vni, port) = (backend.vni.unwrap_or(1), backend.port.unwrap_or(vtep::DEFAULT_PORT));
        match overlay {
            false => Mode::Routes,
            true => Mode::Overlay {
                v4: vtep::Spec::new(node, vni, port),
                v6: node6.map(|ip| vtep::Spec::new(ip.into(), vni, port)),
            },
        }
    }

    /// What this node's lease says of it, per family.
    fn attrs(&self, node: IpAddr, node6: Option<Ipv6Addr>) -> etcd::Attrs {
        let vxlan = |spec: &vtep::Spec| etcd::Backend::Vxlan { vni: spec.vni, mac: spec.mac };
        match self {
            Mode::Routes => etcd::Attrs {
                ip: node,
                backend: etcd::Backend::HostGw,
                v6: node6.map(|ip| (ip, etcd::Backend::HostGw)),
            },
            Mode::Overlay { v4, v6 } => etcd::Attrs {
                ip: node,
                backend: vxlan(v4),
                v6: node6.zip(v6.as_ref()).map(|(ip, spec)| (ip, vxlan(spec))),
            },
        }
    }

    /// The pods' MTU on an underlay of `mtu`: what fits every tunnel.
    fn pod_mtu(&self, mtu: u32) -> u32 {
        match self {
            Mode::Routes => mtu,
            Mode::Overlay { v4, v6 } => {
                mtu.saturating_sub(v6.as_ref().map_or(v4.overhead, |v6| v6.overhead.max(v4.overhead)))
            }
        }
    }
}

/// The routing plugin's config, with flannel's `DirectRouting` from the
/// network config unless the config given says otherwise.
fn plugin_config(config: &str, backend: &BackendConfig) -> Result<String> {
    let Some(direct) = backend.direct_routing else { return Ok(config.to_owned()) };
    let mut value: serde_json::Value = match config.trim() {
        "" => serde_json::json!({}),
        text => serde_json::from_str(text).context("--routing-config is not JSON")?,
    };
    if let Some(object) = value.as_object_mut() {
        object.entry("directRouting").or_insert(direct.into());
    }
    Ok(value.to_string())
}

/// Claims this node's subnet, writes subnet.env, and starts keeping the
/// claim and the routes up to date. Returns once subnet.env is written.
pub async fn start(runner: Arc<Runner>, opts: Options, health: Health) -> Result<()> {
    let underlay = routes::Underlay::new(&opts.underlay);
    let mtu = underlay.info().await.with_context(|| format!("underlay interface {}", opts.underlay))?.mtu;
    let target = routing_target(&runner, &opts.routing_plugin)?;
    let role = target.role.expect("routing_target sets it");
    let (cluster, mode, backend) = match &opts.peers_file {
        Some(path) => {
            let mode = Mode::new(role, &BackendConfig::default(), opts.node_ip, None);
            (from_peers(path.clone(), opts.node_ip, &mode)?, mode, BackendConfig::default())
        }
        None => from_etcd(&opts, role).await?,
    };
    let mtu = mode.pod_mtu(mtu);
    let ipv6 = cluster.network6.zip(cluster.local.v6.map(|v6| v6.subnet));
    SubnetEnv { network: cluster.network, subnet: cluster.local.subnet, mtu, ip_masq: opts.ip_masq, ipv6 }
        .write(&opts.subnet_file)?;
    tracing::info!("node {} holds {} of {}", cluster.local.ip, cluster.local.subnet, cluster.network);
    if let (Some((network, subnet)), Some(ip)) = (ipv6, opts.node_ipv6) {
        tracing::info!("node {ip} holds {subnet} of {network}");
    }
    let config = plugin_config(&opts.routing_config, &backend)?;
    tokio::spawn(keep::run(runner, target, config, cluster, underlay, mode, health));
    Ok(())
}

/// The routing plugin, as an overlay plugin if that is its world, else as
/// a routing one (a module of another world is refused as that, with the reason).
fn routing_target(runner: &Runner, plugin: &str) -> Result<Target> {
    let path = runner.module_dir().locate(plugin)?;
    let mut target = Target { path, sha256: None, limits: Limits::default(), role: None };
    let overlay = matches!(runner.role_of(&target), Ok(Role::Overlay));
    target.role = Some(if overlay { Role::Overlay } else { Role::Routing });
    runner.role_of(&target)?;
    Ok(target)
}

/// The nodes of a static peers file. In overlay mode every node is taken
/// to be a wasmcni node, whose VTEP MAC follows from its address.
fn from_peers(path: PathBuf, node: IpAddr, mode: &Mode) -> Result<Cluster> {
    let vni = match mode {
        Mode::Overlay { v4, .. } => Some(v4.vni),
        Mode::Routes => None,
    };
    let read = move |path: &std::path::Path| {
        peers::read(path).map(|mut p| {
            p.nodes.iter_mut().for_each(|n| n.vtep_mac = vni.map(|vni| vtep::vtep_mac(n.ip, vni)));
            p
        })
    };
    let first = read(&path)?;
    let local = first.nodes.iter().find(|n| n.ip == node).cloned();
    let local = local.with_context(|| format!("{} has no subnet for this node ({node})", path.display()))?;
    let (tx, nodes) = watch::channel(first.nodes);
    tokio::spawn(async move {
        let mut seen = peers::stamp(&path);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = peers::stamp(&path);
            if now != seen {
                seen = now;
                match read(&path) {
                    Ok(p) => drop(tx.send(p.nodes)),
                    Err(e) => tracing::error!("{e:#}"),
                }
            }
        }
    });
    Ok(Cluster { network: first.network, network6: None, local, nodes })
}

async fn from_etcd(opts: &Options, role: Role) -> Result<(Cluster, Mode, BackendConfig)> {
    let mut etcd = etcd::Etcd::connect(&opts.etcd_endpoints, &opts.etcd_prefix).await?;
    let config = etcd.network_config().await?;
    let node6 = match (config.v6(), opts.node_ipv6) {
        (Some(_), None) => {
            anyhow::bail!("the network config enables IPv6: give this node's IPv6 address (--node-ipv6)")
        }
        (Some(_), Some(ip)) => Some(ip),
        (None, _) => None,
    };
    let mode = Mode::new(role, &config.backend, opts.node_ip, node6);
    let attrs = mode.attrs(opts.node_ip, node6);
    let previous = SubnetEnv::read(&opts.subnet_file).ok().map(|e| e.subnet);
    let (subnet, lease) = etcd.claim(&config, &attrs, previous, opts.lease_ttl).await?;
    let v6 = attrs.v6.zip(config.v6_subnet(&subnet)).map(|((ip, b), subnet)| NodeLease6 {
        ip,
        subnet,
        vtep_mac: b.vtep_mac(),
    });
    let local = NodeLease { ip: opts.node_ip, subnet, vtep_mac: attrs.backend.vtep_mac(), v6 };
    let (leases, _) = etcd.leases().await?;
    let (tx, nodes) = watch::channel(leases);

    // Keep the claim alive; if it is lost (etcd was away past the TTL),
    // claim again, preferring the same subnet.
    let mut keeper = etcd.clone();
    let (ttl, network, network6, backend_config) =
        (opts.lease_ttl, config.network, config.v6(), config.backend.clone());
    tokio::spawn(async move {
        let mut lease = lease;
        loop {
            if let Err(e) = keeper.keep_alive(lease, ttl).await {
                tracing::warn!("keeping the subnet lease: {e:#}");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            match keeper.claim(&config, &attrs, Some(subnet), ttl).await {
                Ok((again, l)) if again == subnet => lease = l,
                Ok((other, _)) => tracing::error!("lost {subnet} to another node; claimed {other}, restart to use it"),
                Err(e) => tracing::warn!("claiming the subnet again: {e:#}"),
            }
        }
    });
    // Follow every node's lease.
    tokio::spawn(async move {
        loop {
            let step = async {
                let (leases, revision) = etcd.leases().await?;
                tx.send_replace(leases);
                etcd.changed_after(revision).await
            };
            if let Err(e) = step.await {
                tracing::warn!("watching node subnets: {e:#}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    Ok((Cluster { network, network6, local, nodes }, mode, backend_config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_routing_from_the_network_config_reaches_the_plugin_unless_its_config_says_otherwise() {
        let on = BackendConfig { direct_routing: Some(true), ..BackendConfig::default() };
        assert_eq!(plugin_config("", &on).unwrap(), r#"{"directRouting":true}"#);
        assert_eq!(plugin_config(r#"{"directRouting": false}"#, &on).unwrap(), r#"{"directRouting":false}"#);
        assert_eq!(plugin_config("{}", &BackendConfig::default()).unwrap(), "{}");
        assert!(plugin_config("not json", &on).is_err());
    }

    #[test]
    fn an_overlay_node_says_vxlan_per_family_and_its_pods_fit_the_narrower_tunnel() {
        let (node, node6): (IpAddr, Ipv6Addr) = ("192.168.1.1".parse().unwrap(), "fd00:1::1".parse().unwrap());
        let backend = BackendConfig { vni: Some(4), ..BackendConfig::default() };
        let single = Mode::new(Role::Overlay, &backend, node, None);
        let dual = Mode::new(Role::Overlay, &backend, node, Some(node6));
        assert_eq!((single.pod_mtu(1500), dual.pod_mtu(1500), Mode::Routes.pod_mtu(1500)), (1450, 1430, 1500));
        let attrs = dual.attrs(node, Some(node6));
        let mac = vtep::vtep_mac(node, 4);
        assert_eq!(attrs.backend, etcd::Backend::Vxlan { vni: 4, mac });
        assert_eq!(attrs.v6, Some((node6, etcd::Backend::Vxlan { vni: 4, mac: vtep::vtep_mac(node6.into(), 4) })));
        let Mode::Overlay { v6: Some(spec), .. } = dual else { panic!("no IPv6 VTEP") };
        assert_eq!(spec.name, "wasmcni-v6.4");
        assert_eq!(Mode::new(Role::Routing, &backend, node, None).attrs(node, None).backend, etcd::Backend::HostGw);
    }
}
