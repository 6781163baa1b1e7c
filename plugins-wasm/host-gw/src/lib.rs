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
use wasmcni_sdk::routing::types::{CniError, Route};
use wasmcni_sdk::routing::{NodeLease, Routing, Underlay};

#[derive(Deserialize, Default)]
struct Config {
    /// Metric of the routes (the kernel's default when absent).
    metric: Option<u32>,
}

fn parse<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, Error> {
    s.parse().map_err(|_| Error::config(format!("{what} {s:?} is not valid")))
}

fn compute(config: &str, local: &NodeLease, peers: &[NodeLease], underlay: &Underlay) -> Result<Vec<Route>, Error> {
    let config: Config = if config.trim().is_empty() { Config::default() } else { parse_config(config)? };
    let connected: Vec<IpNet> =
        underlay.addresses.iter().map(|a| parse("underlay address", a)).collect::<Result<_, _>>()?;
    let local_subnet: IpNet = parse("subnet", &local.subnet)?;
    let mut routes = Vec::new();
    for peer in peers.iter().filter(|p| p.ip != local.ip) {
        let ip: IpAddr = parse("node address", &peer.ip)?;
        let subnet: IpNet = parse("subnet", &peer.subnet)?;
        if subnet.contains(&local_subnet.network()) || local_subnet.contains(&subnet.network()) {
            return Err(Error::plugin(format!("node {ip} claims {subnet}, which overlaps this node's {local_subnet}")));
        }
        if !connected.iter().any(|net| net.contains(&ip)) {
            return Err(Error::plugin(format!(
                "node {ip} (subnet {subnet}) is not on a network directly connected to {} ({}): host-gw needs the nodes on one L2 network",
                underlay.name,
                underlay.addresses.join(", ")
            )));
        }
        routes.push(Route {
            dst: subnet.trunc().to_string(),
            gw: Some(ip.to_string()),
            mtu: None,
            advmss: None,
            priority: config.metric,
            table: None,
            scope: None,
        });
    }
    routes.sort_by(|a, b| a.dst.cmp(&b.dst));
    Ok(routes)
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
        NodeLease { ip: ip.into(), subnet: subnet.into() }
    }

    fn underlay() -> Underlay {
        Underlay { name: "eth0".into(), addresses: vec!["192.168.50.1/24".into()] }
    }

    #[test]
    fn every_other_node_subnet_goes_via_its_address() {
        let local = node("192.168.50.1", "10.244.1.0/24");
        let peers = [node("192.168.50.3", "10.244.3.0/24"), local.clone(), node("192.168.50.2", "10.244.2.0/24")];
        let routes = HostGw::routes(r#"{"metric": 10}"#.into(), local, peers.to_vec(), underlay()).unwrap();
        let got: Vec<(&str, Option<&str>, Option<u32>)> =
            routes.iter().map(|r| (r.dst.as_str(), r.gw.as_deref(), r.priority)).collect();
        assert_eq!(
            got,
            [("10.244.2.0/24", Some("192.168.50.2"), Some(10)), ("10.244.3.0/24", Some("192.168.50.3"), Some(10))]
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
        let bad = HostGw::routes(String::new(), local, vec![node("nope", "10.244.2.0/24")], underlay());
        assert_eq!(bad.unwrap_err().code, 7);
    }
}
