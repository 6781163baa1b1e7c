//! custom-route: steers chosen destinations through a chosen interface of
//! the container, for pods on two networks (management on one, low-latency
//! traffic on the other). Chained after the main plugin of a network; rules
//! come inline (`rules`) or from a YAML/JSON `rulesFile` the host reads and,
//! with the daemon, re-applies to running containers when it changes.
//!
//! ```json
//! {"type": "wasm-custom-route", "rulesFile": "/etc/wasmcni/routes.yaml",
//!  "services": {"default/api": "10.96.0.10"}}
//! ```
//! with rules (a list, or `{"rules": [...], "services": {...}}`) such as
//! `{"dst": "172.20.0.0/16", "dev": "net1", "via": "10.62.0.1"}`,
//! `{"svc": "default/api", "dev": "net1"}` (the service's ClusterIP as a
//! host route) and `{"dst": "default", "dev": "net1"}` (the default route).
//! Without `via`, a route uses the gateway the previous result gives that
//! interface. A rule naming an interface the container lacks is skipped.

use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use wasmcni_sdk::Error;
use wasmcni_sdk::cni::links::{self, Link};
use wasmcni_sdk::cni::routes::{self, RouteDev};
use wasmcni_sdk::cni::types::{Attachment, CniError, CniResult, Invocation, Route};
use wasmcni_sdk::cni::{Handler, log};
use wasmcni_sdk::invocation::parse_config;
use wasmcni_sdk::ip::route_to;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    rules: Rules,
    /// Service ClusterIPs by `namespace/name`.
    #[serde(default)]
    services: BTreeMap<String, IpAddr>,
    /// The route table the rules go to (the main table when absent).
    table: Option<u32>,
}

/// The rules: a list, or a document with the list and its own services map.
#[derive(Deserialize)]
#[serde(untagged)]
enum Rules {
    List(Vec<Rule>),
    Document {
        rules: Vec<Rule>,
        #[serde(default)]
        services: BTreeMap<String, IpAddr>,
    },
}

impl Default for Rules {
    fn default() -> Self {
        Rules::List(Vec::new())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    dst: Option<String>,
    svc: Option<String>,
    dev: String,
    via: Option<IpAddr>,
}

impl Config {
    fn parse(inv: &Invocation) -> Result<Config, Error> {
        let mut conf: Config = parse_config(&inv.config)?;
        if let Rules::Document { services, .. } = &mut conf.rules {
            conf.services.append(services);
        }
        Ok(conf)
    }

    fn rules(&self) -> &[Rule] {
        match &self.rules {
            Rules::List(rules) | Rules::Document { rules, .. } => rules,
        }
    }

    fn route(&self, rule: &Rule, prev: Option<&CniResult>) -> Result<(IpNet, Route), Error> {
        let dst: IpNet = match (&rule.dst, &rule.svc) {
            (Some(d), None) if d == "default" => {
                if rule.via.is_some_and(|v| v.is_ipv6()) { "::/0" } else { "0.0.0.0/0" }.parse().expect("literal")
            }
            (Some(d), None) => {
                d.parse::<IpNet>().map_err(|_| Error::config(format!("rule dst {d:?} is not a CIDR")))?
            }
            (None, Some(svc)) => {
                let ip =
                    self.services.get(svc).ok_or_else(|| Error::config(format!("service {svc} is not in services")))?;
                IpNet::from(*ip)
            }
            _ => return Err(Error::config("a rule needs one of \"dst\" and \"svc\"")),
        };
        let gw = rule.via.or_else(|| gateway_on(prev, &rule.dev, dst.addr().is_ipv4()));
        let dst = dst.trunc();
        Ok((dst, Route { gw: gw.map(Into::into), table: self.table, ..route_to(dst) }))
    }

    /// The rules whose interface the container has: the interface, the
    /// route's destination and the route.
    fn applicable(&self, prev: Option<&CniResult>) -> Result<Vec<(Link, IpNet, Route)>, Error> {
        let mut out = Vec::new();
        for rule in self.rules() {
            let (dst, route) = self.route(rule, prev)?;
            let Some(dev) = links::open_container_link(&rule.dev)? else {
                log::emit(log::Level::Info, &format!("no {} in this container: skipping the route to {dst}", rule.dev));
                continue;
            };
            out.push((dev, dst, route));
        }
        Ok(out)
    }
}

/// The gateway the previous result gives the container interface `dev`.
fn gateway_on(prev: Option<&CniResult>, dev: &str, v4: bool) -> Option<IpAddr> {
    let prev = prev?;
    let index = prev.interfaces.iter().position(|i| i.name == dev && i.sandbox.is_some())? as u32;
    prev.ips
        .iter()
        .filter(|ip| ip.iface == Some(index))
        .filter_map(|ip| ip.gateway.map(IpAddr::from))
        .find(|g| g.is_ipv4() == v4)
}

struct CustomRoute;

impl Handler for CustomRoute {
    fn add(inv: Invocation) -> Result<CniResult, CniError> {
        let conf = Config::parse(&inv)?;
        let mut result = inv.prev_result.clone().ok_or_else(|| {
            Error::config("custom-route is chained after a network's main plugin: it needs a prevResult")
        })?;
        for (dev, _, route) in conf.applicable(inv.prev_result.as_ref())? {
            routes::replace_route(&RouteDev::Link(&dev), route)?;
            result.routes.push(route);
        }
        Ok(result)
    }

    fn del(inv: Invocation) -> Result<(), CniError> {
        // Gone with its netns, or never made: nothing to undo.
        if inv.netns.is_none() {
            return Ok(());
        }
        let conf = Config::parse(&inv)?;
        for (dev, dst, route) in conf.applicable(inv.prev_result.as_ref())? {
            if let Err(e) = routes::del_route(&RouteDev::Link(&dev), route) {
                log::emit(log::Level::Debug, &format!("route to {dst} already gone: {}", e.msg));
            }
        }
        Ok(())
    }

    fn check(inv: Invocation) -> Result<(), CniError> {
        let conf = Config::parse(&inv)?;
        for (dev, dst, route) in conf.applicable(inv.prev_result.as_ref())? {
            let gw = route.gw.map(IpAddr::from);
            let present = routes::list_routes(&dev, None)?
                .iter()
                .any(|r| IpNet::try_from(r.route.dst).is_ok_and(|d| d == dst) && r.route.gw.map(IpAddr::from) == gw);
            if !present {
                return Err(Error::plugin(format!("the route to {dst} via {} is missing", dev.name())).into());
            }
        }
        Ok(())
    }

    fn status(_inv: Invocation) -> Result<(), CniError> {
        Ok(())
    }

    fn gc(_inv: Invocation, _valid: Vec<Attachment>) -> Result<(), CniError> {
        Ok(())
    }
}

wasmcni_sdk::export_cni_plugin!(CustomRoute);

#[cfg(test)]
mod tests;
