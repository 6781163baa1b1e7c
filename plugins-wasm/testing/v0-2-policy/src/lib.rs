//! A policy built against the frozen WIT 0.2.0 (wit/compat/0.2.0) with
//! wit-bindgen directly: it asks for the address its config names, written
//! as 0.2 allowed (a string, with a prefix length), and adds a route.

wit_bindgen::generate!({ world: "policy", path: "../../../wit/compat/0.2.0" });

use exports::wasmcni::plugin::admission::{Changes, Decision, Guest};
use wasmcni::plugin::types::{Invocation, Route};

struct V02Policy;

impl Guest for V02Policy {
    fn admit(inv: Invocation) -> Decision {
        let config: serde_json::Value = serde_json::from_str(&inv.config).unwrap_or_default();
        let Some(ip) = config["ip"].as_str() else {
            return Decision::Deny("v0-2-policy needs an \"ip\"".into());
        };
        let route = Route {
            dst: "192.0.2.0/24".into(),
            gw: None,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        };
        Decision::AllowWith(Changes { ips: vec![ip.into()], ranges: vec![], routes: vec![route] })
    }
}

export!(V02Policy);
