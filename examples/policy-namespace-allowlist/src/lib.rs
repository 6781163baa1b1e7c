//! Admits a pod onto a network only when its namespace (K8S_POD_NAMESPACE in
//! CNI_ARGS) is on the network's allow-list:
//!
//! ```json
//! "policies": [{"plugin": "namespace-allowlist", "namespaces": ["prod", "kube-system"]}]
//! ```
//!
//! A call without a namespace is denied unless `allowWithoutNamespace` is set
//! (for runtimes that are not Kubernetes, such as podman).

use serde::Deserialize;
use wasmcni_sdk::invocation::{parse_config, pod_namespace};
use wasmcni_sdk::policy::{Decision, Policy, log, types::Invocation};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    namespaces: Vec<String>,
    #[serde(default)]
    allow_without_namespace: bool,
}

struct NamespaceAllowlist;

impl Policy for NamespaceAllowlist {
    fn admit(inv: Invocation) -> Decision {
        let config: Config = match parse_config(&inv.config) {
            Ok(c) => c,
            Err(e) => return Decision::Deny(e.msg),
        };
        let namespace = pod_namespace(&inv);
        match namespace {
            None if config.allow_without_namespace => Decision::Allow,
            None => Decision::Deny("no K8S_POD_NAMESPACE in CNI_ARGS".into()),
            Some(ns) if config.namespaces.iter().any(|n| n == ns) => Decision::Allow,
            Some(ns) => {
                log::emit(log::Level::Info, &format!("namespace {ns} is not allowed on {}", inv.network_name));
                Decision::Deny(format!("namespace {ns} may not attach to network {}", inv.network_name))
            }
        }
    }
}

wasmcni_sdk::export_policy!(NamespaceAllowlist);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmcni_sdk::testing::{self, invocation_in};

    const CONF: &str = r#"{"plugin": "namespace-allowlist", "namespaces": ["prod"]}"#;

    #[test]
    fn admits_listed_namespaces_and_denies_the_rest_with_a_reason() {
        testing::reset();
        assert!(matches!(NamespaceAllowlist::admit(invocation_in("prod", "a", CONF)), Decision::Allow));
        let Decision::Deny(reason) = NamespaceAllowlist::admit(invocation_in("dev", "b", CONF)) else {
            panic!("dev was admitted");
        };
        assert_eq!(reason, "namespace dev may not attach to network test");
        assert!(testing::with(|h| h.logs.iter().any(|(_, m)| m.contains("dev is not allowed"))));
    }

    #[test]
    fn a_call_without_a_namespace_needs_the_opt_in() {
        let bare = testing::invocation("a", CONF);
        assert!(
            matches!(NamespaceAllowlist::admit(bare.clone()), Decision::Deny(r) if r.contains("no K8S_POD_NAMESPACE"))
        );
        let open = testing::invocation("a", r#"{"namespaces": [], "allowWithoutNamespace": true}"#);
        assert!(matches!(NamespaceAllowlist::admit(open), Decision::Allow));
    }

    #[test]
    fn a_bad_config_denies() {
        let inv = invocation_in("prod", "a", r#"{"namespaces": "prod"}"#);
        assert!(matches!(NamespaceAllowlist::admit(inv), Decision::Deny(r) if r.contains("invalid plugin config")));
    }
}
