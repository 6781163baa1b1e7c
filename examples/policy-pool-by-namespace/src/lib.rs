//! Picks the IP pool a pod is addressed from by its namespace
//! (K8S_POD_NAMESPACE in CNI_ARGS). The host rewrites the plugin's IPAM
//! ranges before it runs, so this works with any IPAM that reads host-local's
//! config, Wasm or exec'd:
//!
//! ```json
//! "policies": [{"plugin": "pool-by-namespace",
//!               "pools": {"prod": {"subnet": "10.10.0.0/24"},
//!                         "dev": {"subnet": "10.20.0.0/24", "rangeStart": "10.20.0.100"}},
//!               "default": "deny"}]
//! ```
//!
//! `default` is what a namespace without a pool gets: `"deny"`, or `"keep"`
//! (the network's own ranges, the default).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use wasmcni_sdk::invocation::{parse_config, pod_namespace};
use wasmcni_sdk::policy::{Changes, Decision, IpRange, Policy, log, types::Invocation};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pool {
    subnet: ipnet::IpNet,
    range_start: Option<IpAddr>,
    range_end: Option<IpAddr>,
    gateway: Option<IpAddr>,
}

#[derive(Deserialize, Default, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Fallback {
    Deny,
    #[default]
    Keep,
}

#[derive(Deserialize)]
struct Config {
    pools: BTreeMap<String, Pool>,
    #[serde(default)]
    default: Fallback,
}

struct PoolByNamespace;

impl Policy for PoolByNamespace {
    fn admit(inv: Invocation) -> Decision {
        let config: Config = match parse_config(&inv.config) {
            Ok(c) => c,
            Err(e) => return Decision::Deny(e.msg),
        };
        let namespace = pod_namespace(&inv);
        let Some(pool) = namespace.and_then(|ns| config.pools.get(ns)) else {
            return match config.default {
                Fallback::Keep => Decision::Allow,
                Fallback::Deny => Decision::Deny(format!("no IP pool for namespace {}", namespace.unwrap_or("(none)"))),
            };
        };
        log::emit(log::Level::Debug, &format!("{} gets pool {}", inv.container_id, pool.subnet));
        Decision::AllowWith(Changes {
            ips: Vec::new(),
            ranges: vec![IpRange {
                subnet: pool.subnet.trunc().into(),
                range_start: pool.range_start.map(Into::into),
                range_end: pool.range_end.map(Into::into),
                gateway: pool.gateway.map(Into::into),
            }],
            routes: Vec::new(),
        })
    }
}

wasmcni_sdk::export_policy!(PoolByNamespace);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmcni_sdk::testing::{invocation, invocation_in};

    const CONF: &str = r#"{"pools": {"prod": {"subnet": "10.10.0.0/24"},
        "dev": {"subnet": "10.20.0.0/24", "rangeStart": "10.20.0.100"}}}"#;

    fn ranges(d: Decision) -> Vec<(String, Option<String>)> {
        match d {
            Decision::AllowWith(c) => c
                .ranges
                .into_iter()
                .map(|r| {
                    let subnet = ipnet::IpNet::try_from(r.subnet).unwrap().to_string();
                    (subnet, r.range_start.map(|a| IpAddr::from(a).to_string()))
                })
                .collect(),
            _ => panic!("no changes"),
        }
    }

    #[test]
    fn each_namespace_gets_its_own_pool() {
        assert_eq!(ranges(PoolByNamespace::admit(invocation_in("prod", "a", CONF))), [("10.10.0.0/24".into(), None)]);
        assert_eq!(
            ranges(PoolByNamespace::admit(invocation_in("dev", "b", CONF))),
            [("10.20.0.0/24".into(), Some("10.20.0.100".into()))]
        );
    }

    #[test]
    fn a_namespace_without_a_pool_keeps_the_network_ranges_or_is_denied() {
        assert!(matches!(PoolByNamespace::admit(invocation_in("qa", "a", CONF)), Decision::Allow));
        assert!(matches!(PoolByNamespace::admit(invocation("a", CONF)), Decision::Allow));
        let strict = CONF.replacen('{', r#"{"default": "deny", "#, 1);
        let denied = PoolByNamespace::admit(invocation_in("qa", "a", &strict));
        assert!(matches!(denied, Decision::Deny(r) if r == "no IP pool for namespace qa"));
    }

    #[test]
    fn a_bad_pool_denies() {
        let bad = r#"{"pools": {"prod": {"subnet": "10.10.0.0/99"}}}"#;
        assert!(matches!(PoolByNamespace::admit(invocation_in("prod", "a", bad)), Decision::Deny(_)));
    }
}
