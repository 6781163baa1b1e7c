//! The VXLAN overlay's side of the node: the VTEP the daemon owns (as
//! flannel's vxlan backend makes it) and its neighbour and FDB entries, kept
//! like the routes: each pass compares what the plugin wants with what the
//! kernel has. Everything permanent on the VTEP is the daemon's, so an entry
//! no lease explains goes.

use super::routes::{Applied, Refused, Scope, Underlay, UnderlayInfo};
use anyhow::Result;
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use wasmcni_cni::Mac;
use wasmcni_kernel::addr::Addresses;
use wasmcni_kernel::link::{Link, Links};
use wasmcni_kernel::overlay::{Fdb, Neighbor, Overlay, VtepParams};
use wasmcni_kernel::route::Routes;

/// The kernel's and flannel's VXLAN port.
pub const DEFAULT_PORT: u16 = 8472;
/// VXLAN over IPv4 costs 50 bytes of every packet (outer IP, UDP, VXLAN, inner Ethernet).
const OVERHEAD_V4: u32 = 50;
/// Over IPv6, 70 (the outer header is 20 bytes longer).
const OVERHEAD_V6: u32 = 70;

/// The VTEP this node has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    pub mac: Mac,
    /// What its encapsulation costs each packet: its MTU is the underlay's less this.
    pub overhead: u32,
}

impl Spec {
    /// `wasmcni.<VNI>` (over IPv6, `wasmcni-v6.<VNI>`, as flannel names its
    /// two), with the MAC of `node` on that VNI.
    pub fn new(node: IpAddr, vni: u32, port: u16) -> Spec {
        let (name, overhead) = match node {
            IpAddr::V4(_) => (format!("wasmcni.{vni}"), OVERHEAD_V4),
            IpAddr::V6(_) => (format!("wasmcni-v6.{vni}"), OVERHEAD_V6),
        };
        Spec { name, vni, port, mac: vtep_mac(node, vni), overhead }
    }
}

/// A VTEP's MAC, from the node's underlay address and the VNI: the same
/// after every restart (peers' neighbour entries for this node stay right)
/// and, for a peer known only from a static file, computable by every node.
/// Locally administered, unicast.
pub fn vtep_mac(node: IpAddr, vni: u32) -> Mac {
    let ip = match node {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let digest =
        Sha256::new().chain_update(b"wasmcni vtep").chain_update(ip).chain_update(vni.to_be_bytes()).finalize();
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&digest[..6]);
    mac[0] = (mac[0] & 0xfe) | 0x02;
    Mac(mac)
}

/// Splits the plugin's neighbour and FDB entries into those the host installs
/// and those it refuses: a neighbour must be an address in another node's
/// subnet, an FDB entry must send to another node's underlay address.
pub fn admit(
    scope: &Scope,
    peers: &[IpAddr],
    neighbors: Vec<Neighbor>,
    fdb: Vec<Fdb>,
) -> (Vec<Neighbor>, Vec<Fdb>, Vec<Refused>) {
    let mut refused = Vec::new();
    let mut admitted_neighbors = Vec::new();
    for n in neighbors {
        match scope.refuses(&IpNet::from(n.ip)) {
            Some(reason) => {
                refused.push(Refused { what: format!("the neighbour entry {} at {}", n.ip, n.mac), reason })
            }
            None => admitted_neighbors.push(n),
        }
    }
    let (known, unknown): (Vec<Fdb>, Vec<Fdb>) = fdb.into_iter().partition(|e| peers.contains(&e.dst));
    refused.extend(unknown.into_iter().map(|e| Refused {
        what: format!("the FDB entry {} to {}", e.mac, e.dst),
        reason: "not another node's underlay address".into(),
    }));
    (admitted_neighbors, known, refused)
}

/// Neighbour and FDB changes of one pass: added before the routes that need
/// them, removed after the routes that used them.
#[derive(Debug, Default, PartialEq)]
pub struct EntryPlan {
    pub put_neighbors: Vec<Neighbor>,
    pub put_fdb: Vec<Fdb>,
    pub remove_neighbors: Vec<Neighbor>,
    pub remove_fdb: Vec<Fdb>,
}

/// What makes the VTEP's entries exactly the wanted ones; entries of the
/// peers in `spared` (their subnets and underlay addresses) stay as they are.
pub fn plan(wanted: (&[Neighbor], &[Fdb]), kernel: (&[Neighbor], &[Fdb]), spared: (&[IpNet], &[IpAddr])) -> EntryPlan {
    let (neighbors, fdb) = wanted;
    let spared_neighbor = |n: &Neighbor| spared.0.iter().any(|s| s.contains(&n.ip));
    EntryPlan {
        put_neighbors: neighbors.iter().filter(|n| !kernel.0.contains(n)).copied().collect(),
        put_fdb: fdb.iter().filter(|e| !kernel.1.contains(e)).copied().collect(),
        remove_neighbors: kernel
            .0
            .iter()
            .filter(|k| !spared_neighbor(k) && !neighbors.iter().any(|n| n.ip == k.ip))
            .copied()
            .collect(),
        remove_fdb: kernel.1.iter().filter(|k| !spared.1.contains(&k.dst) && !fdb.contains(k)).copied().collect(),
    }
}

impl<K: Links + Addresses + Routes + Overlay> Underlay<K> {
    /// The VTEP of `spec` over this underlay, with this node's subnet address
    /// (`address`, a /32) as flannel gives it, so traffic from the node itself
    /// into the overlay has a source the peers route back.
    pub async fn ensure_vtep(&self, spec: &Spec, info: &UnderlayInfo, local: IpAddr, address: IpNet) -> Result<Link> {
        let params = VtepParams {
            name: &spec.name,
            vni: spec.vni,
            port: spec.port,
            local,
            underlay: info.index,
            mtu: info.mtu.saturating_sub(spec.overhead),
            mac: spec.mac,
        };
        let vtep = self.host.ensure_vtep(&params).await?;
        if !self.host.addresses(&vtep).await?.contains(&address) {
            self.host.add_address(&vtep, address).await?;
        }
        Ok(vtep)
    }

    /// The VTEP's entries now, and the plan that makes them the wanted ones.
    pub async fn plan_entries(
        &self,
        vtep: &Link,
        wanted: (&[Neighbor], &[Fdb]),
        spared: (&[IpNet], &[IpAddr]),
    ) -> Result<EntryPlan> {
        let (neighbors, fdb) = (self.host.neighbors(vtep).await?, self.host.fdb(vtep).await?);
        Ok(plan(wanted, (&neighbors, &fdb), spared))
    }

    /// Adds the missing entries: neighbours, then FDB entries.
    pub async fn put_entries(&self, vtep: &Link, p: &EntryPlan) -> Applied {
        let mut done = Applied::default();
        for n in &p.put_neighbors {
            match self.host.set_neighbor(vtep, n).await {
                Ok(()) => done.put += 1,
                Err(e) => done.failed.push(format!("adding the neighbour entry {}: {e}", n.ip)),
            }
        }
        for e in &p.put_fdb {
            match self.host.set_fdb(vtep, e).await {
                Ok(()) => done.put += 1,
                Err(err) => done.failed.push(format!("adding the FDB entry {} to {}: {err}", e.mac, e.dst)),
            }
        }
        done
    }

    /// Removes the stale entries: FDB entries, then neighbours.
    pub async fn remove_entries(&self, vtep: &Link, p: &EntryPlan) -> Applied {
        let mut done = Applied::default();
        for e in &p.remove_fdb {
            match self.host.del_fdb(vtep, e).await {
                Ok(()) => done.removed += 1,
                Err(err) => done.failed.push(format!("removing the FDB entry {}: {err}", e.mac)),
            }
        }
        for n in &p.remove_neighbors {
            match self.host.del_neighbor(vtep, n).await {
                Ok(()) => done.removed += 1,
                Err(e) => done.failed.push(format!("removing the neighbour entry {}: {e}", n.ip)),
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmcni_kernel::fake::Net;

    fn scope() -> Scope {
        Scope { network: "10.244.0.0/16".parse().unwrap(), local: "10.244.1.0/24".parse().unwrap(), v6: None }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn mac(last: u8) -> Mac {
        Mac([0x0e, 0, 0, 0, 0, last])
    }

    #[test]
    fn the_vtep_mac_is_stable_local_and_unicast_and_differs_by_node_and_vni() {
        let a = vtep_mac(ip("192.168.1.2"), 1);
        assert_eq!(a, vtep_mac(ip("192.168.1.2"), 1));
        assert_eq!(a.0[0] & 0x03, 0x02, "{a}: not locally administered unicast");
        assert_ne!(a, vtep_mac(ip("192.168.1.3"), 1));
        assert_ne!(a, vtep_mac(ip("192.168.1.2"), 2));
        assert_eq!(Spec::new(ip("192.168.1.2"), 7, DEFAULT_PORT).name, "wasmcni.7");
        assert_eq!(Spec::new(ip("fd00:1::2"), 7, DEFAULT_PORT).name, "wasmcni-v6.7");
    }

    #[test]
    fn entries_outside_the_cluster_or_to_unknown_nodes_are_refused() {
        let neighbors = vec![
            Neighbor { ip: ip("10.244.2.0"), mac: mac(2) },
            Neighbor { ip: ip("10.244.1.0"), mac: mac(1) },
            Neighbor { ip: ip("192.168.1.1"), mac: mac(9) },
        ];
        let fdb = vec![Fdb { mac: mac(2), dst: ip("192.168.2.2") }, Fdb { mac: mac(8), dst: ip("203.0.113.8") }];
        let (n, f, refused) = admit(&scope(), &[ip("192.168.2.2")], neighbors, fdb);
        assert_eq!(n, [Neighbor { ip: ip("10.244.2.0"), mac: mac(2) }]);
        assert_eq!(f, [Fdb { mac: mac(2), dst: ip("192.168.2.2") }]);
        let what: Vec<&str> = refused.iter().map(|r| r.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "the neighbour entry 10.244.1.0 at 0e:00:00:00:00:01",
                "the neighbour entry 192.168.1.1 at 0e:00:00:00:00:09",
                "the FDB entry 0e:00:00:00:00:08 to 203.0.113.8"
            ]
        );
    }

    #[test]
    fn a_plan_adds_the_missing_replaces_the_changed_and_spares_skipped_peers() {
        let kernel_n = [Neighbor { ip: ip("10.244.2.0"), mac: mac(2) }, Neighbor { ip: ip("10.244.3.0"), mac: mac(3) }];
        let kernel_f = [Fdb { mac: mac(2), dst: ip("192.168.2.2") }, Fdb { mac: mac(3), dst: ip("192.168.2.3") }];
        // Node 2 changed its MAC; node 3 is gone; node 4 joined.
        let want_n = [Neighbor { ip: ip("10.244.2.0"), mac: mac(12) }, Neighbor { ip: ip("10.244.4.0"), mac: mac(4) }];
        let want_f = [Fdb { mac: mac(12), dst: ip("192.168.2.2") }, Fdb { mac: mac(4), dst: ip("192.168.2.4") }];
        let p = plan((&want_n, &want_f), (&kernel_n, &kernel_f), (&[], &[]));
        assert_eq!(p.put_neighbors, want_n);
        assert_eq!(p.put_fdb, want_f);
        assert_eq!(p.remove_neighbors, [kernel_n[1]], "a replaced neighbour is not also removed");
        assert_eq!(p.remove_fdb, kernel_f);
        let three: IpNet = "10.244.3.0/24".parse().unwrap();
        let p = plan((&want_n, &want_f), (&kernel_n, &kernel_f), (&[three], &[ip("192.168.2.3")]));
        assert!(p.remove_neighbors.is_empty() && p.remove_fdb == [kernel_f[0]], "{p:?}");
        assert_eq!(plan((&kernel_n, &kernel_f), (&kernel_n, &kernel_f), (&[], &[])), EntryPlan::default());
    }

    #[tokio::test]
    async fn the_vtep_is_made_once_with_its_address_and_entries_come_and_go() {
        let net = Net::new();
        let eth0 = net.add_link("eth0", "dummy").unwrap();
        net.set_up(&eth0, true).await.unwrap();
        let u = Underlay::with(net, "eth0");
        let info = UnderlayInfo { index: eth0.index, addresses: vec![], mtu: 1500 };
        let spec = Spec::new(ip("192.168.2.1"), 1, DEFAULT_PORT);
        let address: IpNet = "10.244.1.0/32".parse().unwrap();
        let vtep = u.ensure_vtep(&spec, &info, ip("192.168.2.1"), address).await.unwrap();
        assert_eq!((vtep.mtu, vtep.mac), (1450, Some(spec.mac)));
        let again = u.ensure_vtep(&spec, &info, ip("192.168.2.1"), address).await.unwrap();
        assert_eq!(again.index, vtep.index, "an unchanged VTEP was recreated");
        assert_eq!(u.host.addresses(&vtep).await.unwrap(), [address]);

        let n = [Neighbor { ip: ip("10.244.2.0"), mac: mac(2) }];
        let f = [Fdb { mac: mac(2), dst: ip("192.168.2.2") }];
        let p = u.plan_entries(&vtep, (&n, &f), (&[], &[])).await.unwrap();
        assert_eq!(u.put_entries(&vtep, &p).await.put, 2);
        assert_eq!(u.plan_entries(&vtep, (&n, &f), (&[], &[])).await.unwrap(), EntryPlan::default());
        let p = u.plan_entries(&vtep, (&[], &[]), (&[], &[])).await.unwrap();
        assert_eq!(u.remove_entries(&vtep, &p).await.removed, 2);
        assert!(u.host.neighbors(&vtep).await.unwrap().is_empty() && u.host.fdb(&vtep).await.unwrap().is_empty());
    }
}
