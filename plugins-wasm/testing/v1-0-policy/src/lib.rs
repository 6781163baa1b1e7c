//! A policy built against the frozen WIT 1.0.0 (wit/compat/1.0.0) with
//! wit-bindgen directly, so that a 1.1 host is seen to serve a 1.0 module:
//! it asks for the address its config names, typed as 1.0 has it, and adds
//! a route.

wit_bindgen::generate!({ world: "policy", path: "../../../wit/compat/1.0.0" });

use exports::wasmcni::plugin::admission::{Changes, Decision, Guest};
use std::net::{IpAddr, Ipv4Addr};
use wasmcni::plugin::types::{Invocation, IpAddress, IpPrefix, Route};

struct V10Policy;

fn v4(a: Ipv4Addr) -> IpAddress {
    let [a, b, c, d] = a.octets();
    IpAddress::V4((a, b, c, d))
}

impl Guest for V10Policy {
    fn admit(inv: Invocation) -> Decision {
        let config: serde_json::Value = serde_json::from_str(&inv.config).unwrap_or_default();
        let Some(Ok(IpAddr::V4(ip))) = config["ip"].as_str().map(str::parse::<IpAddr>) else {
            return Decision::Deny("v1-0-policy needs an IPv4 \"ip\"".into());
        };
        let route = Route {
            dst: IpPrefix { address: IpAddress::V4((192, 0, 2, 0)), prefix_len: 24 },
            gw: None,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        };
        Decision::AllowWith(Changes { ips: vec![v4(ip)], ranges: vec![], routes: vec![route] })
    }
}

export!(V10Policy);
