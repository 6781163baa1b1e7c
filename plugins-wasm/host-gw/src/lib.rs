//! host-gw, as flannel's backend of that name: every other node's pod subnet
//! is routed via that node's underlay address, so pod traffic crosses the
//! underlay unencapsulated and keeps the pods' own addresses. That needs L2
//! adjacency, so a peer whose address is not on a network of the underlay
//! interface is refused. The daemon applies the routes; this only computes
//! them.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;
use wasmcni_sdk::Error;
use wasmcni_sdk::invocation::parse_config;
use wasmcni_sdk::ip::route_via;
use wasmcni_sdk::routing::types::{CniError, Route};
use wasmcni_sdk::routing::{NodeLease, Routing, Underlay};

#[derive(Deserialize, Default)]
struct Config {
    /// Metric of the routes (the kernel's default when absent).
    metric: Option<u32>,
}

fn compute(config: &str, local: &NodeLease, peers: &[NodeLease], underlay: &Underlay) -> Result<Vec<Route>, Error> {
    let config: Config = if config.trim().is_empty() { Config::default() } else { parse_config(config)? };
    let connected: Vec<IpNet> = underlay.addresses.iter().map(|a| IpNet::try_from(*a)).collect::<Result<_, _>>()?;
    let local_ip = IpAddr::from(local.ip);
    let local_subnet = IpNet::try_from(local.subnet)?;
    let mut routes = Vec::new();
    for peer in peers.iter().filter(|p| IpAddr::from(p.ip) != local_ip) {
        let ip = IpAddr::from(peer.ip);
        let subnet = IpNet::try_from(peer.subnet)?;
        if subnet.contains(&local_subnet.network()) || local_subnet.contains(&subnet.network()) {
            return Err(Error::plugin(format!("node {ip} claims {subnet}, which overlaps this node's {local_subnet}")));
        }
        if !connected.iter().any(|net| net.contains(&ip)) {
            let connected: Vec<String> = connected.iter().map(ToString::to_string).collect();
            return Err(Error::plugin(format!(
                "node {ip} (subnet {subnet}) is not on a network directly connected to {} ({}): host-gw needs the nodes on one L2 network",
                underlay.name,
                connected.join(", ")
            )));
        }
        routes.push((subnet.trunc(), Route { priority: config.metric, ..route_via(subnet.trunc(), ip) }));
    }
    routes.sort_by_key(|(dst, _)| *dst);
    Ok(routes.into_iter().map(|(_, r)| r).collect())
}

struct HostGw;

impl Routing for HostGw {
    fn routes(
        config: String,
        local: NodeLease,
        peers: Vec<NodeLease>,
        underlay: Underlay,
    ) -> Result<Vec<Route>, CniError> {
        compute(&config, &local, &peers, &underlay).map_err(Into::into)
    }
}

wasmcni_sdk::export_routing!(HostGw);

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ip: &str, subnet: &str) -> NodeLease {
        let (ip, subnet): (IpAddr, IpNet) = (ip.parse().unwrap(), subnet.parse().unwrap());
        NodeLease { ip: ip.into(), subnet: subnet.into() }
    }

    fn underlay() -> Underlay {
        let net: IpNet = "192.168.50.1/24".parse().unwrap();
        Underlay { name: "eth0".into(), addresses: vec![net.into()] }
    }

    #[test]
    fn every_other_node_subnet_goes_via_its_address() {
        let local = node("192.168.50.1", "10.244.1.0/24");
        let peers = [node("192.168.50.3", "10.244.3.0/24"), local.clone(), node("192.168.50.2", "10.244.2.0/24")];
        let routes = HostGw::routes(r#"{"metric": 10}"#.into(), local, peers.to_vec(), underlay()).unwrap();
        let got: Vec<(String, Option<IpAddr>, Option<u32>)> = routes
            .iter()
            .map(|r| (IpNet::try_from(r.dst).unwrap().to_string(), r.gw.map(IpAddr::from), r.priority))
            .collect();
        let gw = |s: &str| Some(s.parse().unwrap());
        assert_eq!(
            got,
            [
                ("10.244.2.0/24".into(), gw("192.168.50.2"), Some(10)),
                ("10.244.3.0/24".into(), gw("192.168.50.3"), Some(10))
            ]
        );
    }

    #[test]
    fn a_node_off_the_underlay_network_is_refused_with_the_reason() {
        let local = node("192.168.50.1", "10.244.1.0/24");
        let err =
            HostGw::routes(String::new(), local, vec![node("172.16.0.9", "10.244.9.0/24")], underlay()).unwrap_err();
        assert_eq!(err.code, 100);
        assert!(
            err.msg.contains("172.16.0.9") && err.msg.contains("not on a network directly connected to eth0"),
            "{}",
            err.msg
        );
    }

    #[test]
    fn overlapping_subnets_and_bad_input_are_refused() {
        let local = node("192.168.50.1", "10.244.1.0/24");
        let overlap =
            HostGw::routes(String::new(), local.clone(), vec![node("192.168.50.2", "10.244.0.0/16")], underlay());
        assert!(overlap.unwrap_err().msg.contains("overlaps"));
        let mut bad = node("192.168.50.2", "10.244.2.0/24");
        bad.subnet.prefix_len = 40;
        assert_eq!(HostGw::routes(String::new(), local, vec![bad], underlay()).unwrap_err().code, 7);
    }
}
