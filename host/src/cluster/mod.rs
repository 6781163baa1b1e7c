//! Cluster mode of the daemon: this node's pod subnet, claimed from etcd (or
//! read from a static peers file), written to a flannel-compatible
//! `subnet.env` that the node's network config takes its IPAM subnet from;
//! and the routes to every other node's pods, computed by a routing plugin
//! (host-gw) from the node leases and kept in the kernel (`keep`, `routes`).

mod etcd;
mod keep;
pub mod network;
mod peers;
mod routes;

use crate::config::Limits;
use crate::runner::{Runner, Target};
use anyhow::{Context, Result};
use ipnet::Ipv4Net;
use network::SubnetEnv;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use wasmcni_engine::Role;

pub use keep::Health;

/// A node's claim on the cluster network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLease {
    pub ip: IpAddr,
    pub subnet: Ipv4Net,
}

pub struct Options {
    pub etcd_endpoints: Vec<String>,
    pub peers_file: Option<PathBuf>,
    pub node_ip: IpAddr,
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
    local: NodeLease,
    nodes: watch::Receiver<Vec<NodeLease>>,
}

/// Claims this node's subnet, writes subnet.env, and starts keeping the
/// claim and the routes up to date. Returns once subnet.env is written.
pub async fn start(runner: Arc<Runner>, opts: Options, health: Health) -> Result<()> {
    let underlay = routes::Underlay::new(&opts.underlay);
    let mtu = underlay.info().await.with_context(|| format!("underlay interface {}", opts.underlay))?.mtu;
    let cluster = match &opts.peers_file {
        Some(path) => from_peers(path.clone(), opts.node_ip)?,
        None => from_etcd(&opts).await?,
    };
    SubnetEnv { network: cluster.network, subnet: cluster.local.subnet, mtu, ip_masq: opts.ip_masq }
        .write(&opts.subnet_file)?;
    tracing::info!("node {} holds {} of {}", cluster.local.ip, cluster.local.subnet, cluster.network);
    let target = routing_target(&runner, &opts.routing_plugin)?;
    tokio::spawn(keep::run(runner, target, opts.routing_config, cluster, underlay, health));
    Ok(())
}

fn routing_target(runner: &Runner, plugin: &str) -> Result<Target> {
    let path = runner.module_dir().locate(plugin)?;
    Ok(Target { path, sha256: None, limits: Limits::default(), role: Some(Role::Routing) })
}

fn from_peers(path: PathBuf, node: IpAddr) -> Result<Cluster> {
    let first = peers::read(&path)?;
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
                match peers::read(&path) {
                    Ok(p) => drop(tx.send(p.nodes)),
                    Err(e) => tracing::error!("{e:#}"),
                }
            }
        }
    });
    Ok(Cluster { network: first.network, local, nodes })
}

async fn from_etcd(opts: &Options) -> Result<Cluster> {
    let mut etcd = etcd::Etcd::connect(&opts.etcd_endpoints, &opts.etcd_prefix).await?;
    let config = etcd.network_config().await?;
    let previous = SubnetEnv::read(&opts.subnet_file).ok().map(|e| e.subnet);
    let (subnet, lease) = etcd.claim(&config, opts.node_ip, previous, opts.lease_ttl).await?;
    let local = NodeLease { ip: opts.node_ip, subnet };
    let (leases, _) = etcd.leases().await?;
    let (tx, nodes) = watch::channel(leases);

    // Keep the claim alive; if it is lost (etcd was away past the TTL),
    // claim again, preferring the same subnet.
    let mut keeper = etcd.clone();
    let (node, ttl, network) = (opts.node_ip, opts.lease_ttl, config.network);
    tokio::spawn(async move {
        let mut lease = lease;
        loop {
            if let Err(e) = keeper.keep_alive(lease, ttl).await {
                tracing::warn!("keeping the subnet lease: {e:#}");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            match keeper.claim(&config, node, Some(subnet), ttl).await {
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
    Ok(Cluster { network, local, nodes })
}
