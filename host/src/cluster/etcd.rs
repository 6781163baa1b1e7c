//! Node subnet leases in etcd, flannel's layout: the network config at
//! `<prefix>/config`, one key per claimed subnet at `<prefix>/subnets/<net>-<len>`
//! holding the node's address and backend (with a VXLAN backend, its VNI
//! and VTEP MAC), bound to an etcd lease the node keeps alive.
//! A claim is a transaction that creates the key only if it does not exist,
//! so two nodes never hold one subnet.

use super::network::{NetworkConfig, parse_subnet_key, subnet_key};
use super::{NodeLease, NodeLease6};
use anyhow::{Context, Result, bail};
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, WatchOptions};
use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;
use wasmcni_cni::Mac;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LeaseValue {
    #[serde(rename = "PublicIP")]
    public_ip: IpAddr,
    backend_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backend_data: Option<BackendData>,
    /// Dual stack: the node's IPv6 underlay address and its IPv6 VTEP.
    #[serde(rename = "PublicIPv6", default, skip_serializing_if = "Option::is_none")]
    public_ipv6: Option<Ipv6Addr>,
    #[serde(rename = "BackendV6Data", default, skip_serializing_if = "Option::is_none")]
    backend_v6_data: Option<BackendData>,
}

/// A vxlan lease's `BackendData`, as flannel writes it; other backends'
/// (host-gw's is null) have no VTEP MAC.
#[derive(Serialize, Deserialize)]
struct BackendData {
    #[serde(rename = "VNI", default, skip_serializing_if = "Option::is_none")]
    vni: Option<u32>,
    #[serde(rename = "VtepMAC", default, skip_serializing_if = "Option::is_none")]
    vtep_mac: Option<Mac>,
}

/// What this node's lease says of its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    HostGw,
    Vxlan { vni: u32, mac: Mac },
}

impl Backend {
    /// The VTEP MAC this backend's lease names.
    pub fn vtep_mac(self) -> Option<Mac> {
        match self {
            Backend::HostGw => None,
            Backend::Vxlan { mac, .. } => Some(mac),
        }
    }

    fn data(self) -> Option<BackendData> {
        match self {
            Backend::HostGw => None,
            Backend::Vxlan { vni, mac } => Some(BackendData { vni: Some(vni), vtep_mac: Some(mac) }),
        }
    }
}

/// What this node's lease says: its addresses and backend, per family.
#[derive(Debug, Clone, Copy)]
pub struct Attrs {
    pub ip: IpAddr,
    pub backend: Backend,
    /// Dual stack: the node's IPv6 address and that family's backend.
    pub v6: Option<(Ipv6Addr, Backend)>,
}

impl Attrs {
    fn value(&self) -> LeaseValue {
        let kind = match self.backend {
            Backend::HostGw => "host-gw",
            Backend::Vxlan { .. } => "vxlan",
        };
        LeaseValue {
            public_ip: self.ip,
            backend_type: kind.into(),
            backend_data: self.backend.data(),
            public_ipv6: self.v6.map(|(ip, _)| ip),
            backend_v6_data: self.v6.and_then(|(_, b)| b.data()),
        }
    }
}

/// What a node subnet's key and value say.
fn node_lease(key: &str, value: LeaseValue) -> Option<NodeLease> {
    let (subnet, subnet6) = parse_subnet_key(key)?;
    let vxlan = value.backend_type == "vxlan";
    let mac = |d: Option<BackendData>| d.and_then(|d| d.vtep_mac).filter(|_| vxlan);
    let v6 = match (subnet6, value.public_ipv6) {
        (Some(subnet), Some(ip)) => Some(NodeLease6 { ip, subnet, vtep_mac: mac(value.backend_v6_data) }),
        _ => None,
    };
    Some(NodeLease { ip: value.public_ip, subnet, vtep_mac: mac(value.backend_data), v6 })
}

/// One connection; clones share it.
#[derive(Clone)]
pub struct Etcd {
    client: Client,
    prefix: String,
}

impl Etcd {
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<Etcd> {
        let options =
            ConnectOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(Duration::from_secs(10));
        let client = Client::connect(endpoints, Some(options))
            .await
            .with_context(|| format!("connecting to etcd at {}", endpoints.join(",")))?;
        Ok(Etcd { client, prefix: prefix.trim_end_matches('/').to_owned() })
    }

    fn subnets_prefix(&self) -> String {
        format!("{}/subnets/", self.prefix)
    }

    pub async fn network_config(&mut self) -> Result<NetworkConfig> {
        let key = format!("{}/config", self.prefix);
        let resp = self.client.get(key.as_str(), None).await.context("reading the network config")?;
        let kv = resp.kvs().first().with_context(|| format!("no network config in etcd at {key}"))?;
        NetworkConfig::parse(kv.value_str()?)
    }

    /// Every node lease, and the revision they were read at.
    pub async fn leases(&mut self) -> Result<(Vec<NodeLease>, i64)> {
        let resp = self
            .client
            .get(self.subnets_prefix(), Some(GetOptions::new().with_prefix()))
            .await
            .context("listing node subnets")?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let mut leases = Vec::new();
        for kv in resp.kvs() {
            let lease =
                serde_json::from_slice::<LeaseValue>(kv.value()).ok().and_then(|v| node_lease(kv.key_str().ok()?, v));
            match lease {
                Some(l) => leases.push(l),
                None => tracing::warn!("ignoring a malformed subnet entry {:?}", kv.key_str()),
            }
        }
        Ok((leases, revision))
    }

    /// Claims a subnet (with dual stack, the IPv6 one that goes with it) for
    /// the node `attrs` describes under a fresh etcd lease of `ttl`: the one
    /// it already holds, else `previous` (from its subnet.env), else the
    /// first free one. Returns the subnet and the etcd lease to keep alive.
    pub async fn claim(
        &mut self,
        network: &NetworkConfig,
        attrs: &Attrs,
        previous: Option<Ipv4Net>,
        ttl: Duration,
    ) -> Result<(Ipv4Net, i64)> {
        let lease = self.client.lease_grant(ttl.as_secs().max(1) as i64, None).await.context("granting a lease")?.id();
        let value = serde_json::to_string(&attrs.value())?;
        let key_of = |subnet: &Ipv4Net| subnet_key(subnet, network.v6_subnet(subnet).as_ref());
        let (leases, _) = self.leases().await?;
        let held = leases.iter().find(|l| l.ip == attrs.ip).map(|l| l.subnet);
        if let Some(subnet) = held.filter(|s| network.contains(s)) {
            // Ours from before a restart: move it to the new lease, unless
            // another node took it meanwhile.
            let key = format!("{}{}", self.subnets_prefix(), key_of(&subnet));
            let current = self.client.get(key.as_str(), None).await?;
            if let Some(kv) = current.kvs().first() {
                let txn = Txn::new()
                    .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, kv.mod_revision())])
                    .and_then([TxnOp::put(key.as_str(), value.as_str(), Some(PutOptions::new().with_lease(lease)))]);
                if self.client.txn(txn).await?.succeeded() {
                    return Ok((subnet, lease));
                }
            }
        }
        let taken: Vec<Ipv4Net> = leases.iter().map(|l| l.subnet).collect();
        let taken6: Vec<Ipv6Net> = leases.iter().filter_map(|l| l.v6.map(|v| v.subnet)).collect();
        let free = |s: &Ipv4Net| !taken.contains(s) && network.v6_subnet(s).is_none_or(|v6| !taken6.contains(&v6));
        let candidates = previous.filter(|p| network.contains(p)).into_iter().chain(network.subnets());
        for subnet in candidates.filter(free) {
            let key = format!("{}{}", self.subnets_prefix(), key_of(&subnet));
            let txn = Txn::new()
                .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.as_str(), value.as_str(), Some(PutOptions::new().with_lease(lease)))]);
            if self.client.txn(txn).await.context("claiming a subnet")?.succeeded() {
                return Ok((subnet, lease));
            }
            // Another node won this one: try the next.
        }
        bail!("no free subnet left in {}", network.network)
    }

    /// Keeps `lease` alive until it is lost (the keepalive stream ends or
    /// etcd says it expired).
    pub async fn keep_alive(&mut self, lease: i64, ttl: Duration) -> Result<()> {
        let (mut keeper, mut responses) = self.client.lease_keep_alive(lease).await?;
        let every = (ttl / 3).max(Duration::from_millis(500));
        loop {
            keeper.keep_alive().await?;
            match responses.message().await? {
                Some(r) if r.ttl() > 0 => {}
                _ => bail!("etcd lease {lease:x} expired"),
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Waits for the next change to any node lease after `revision`.
    pub async fn changed_after(&mut self, revision: i64) -> Result<()> {
        let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
        let mut stream = self.client.watch(self.subnets_prefix(), Some(options)).await?;
        loop {
            match stream.message().await? {
                Some(r) if !r.events().is_empty() => return Ok(()),
                Some(_) => {}
                None => bail!("the etcd watch ended"),
            }
        }
    }
}
