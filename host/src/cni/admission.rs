//! Policies: the modules a plugin's `policies` lists run, in order, before
//! its ADD. A deny ends the call before anything is created; the changes of
//! an allow rewrite the config the plugin (and through it, its IPAM, Wasm or
//! exec'd) then runs with.

use super::error::{CniError, Code};
use crate::config::Limits;
use crate::runner::{Runner, Target};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use wasmcni_cni::call::Call;
pub use wasmcni_cni::decision::{Changes, Decision};
use wasmcni_engine::{Role, module_name};

/// Runs `call`'s policies; returns the call the plugin should run.
pub async fn admit(runner: &Arc<Runner>, call: Arc<Call>) -> Result<Arc<Call>, CniError> {
    if call.conf.policies.is_empty() {
        return Ok(call);
    }
    let mut config: Value = serde_json::from_str(&call.conf.raw)
        .map_err(|e| CniError::new(Code::DecodeFailure, format!("network config is not valid JSON: {e}")))?;
    for entry in &call.conf.policies {
        let (path, sha256) = runner.module_dir().resolve_policy(entry)?;
        let name = module_name(&path);
        let limits = Limits::from_value(entry.get("limits"), call.conf.limits)?;
        let target = Target { path, sha256, limits, role: Some(Role::Policy) };
        match runner.admit(&target, &call, entry.to_string()).await? {
            Decision::Allow => tracing::debug!(policy = %name, "allowed"),
            Decision::Deny(reason) => {
                tracing::info!(policy = %name, container = %call.env.container_id, "denied: {reason}");
                return Err(CniError::new(Code::PolicyDenied, format!("policy {name} denied the ADD: {reason}")));
            }
            Decision::AllowWith(changes) => {
                tracing::debug!(policy = %name, "allowed with changes");
                apply(&mut config, &name, changes)?;
            }
        }
    }
    let conf = crate::config::parse(config.to_string().as_bytes())?;
    Ok(Arc::new(Call { env: call.env.clone(), conf }))
}

/// Rewrites a plugin's config with a policy's changes: requested addresses
/// go to `runtimeConfig.ips`, ranges replace the IPAM section's, routes are
/// appended to its `routes`.
fn apply(config: &mut Value, policy: &str, changes: Changes) -> Result<(), CniError> {
    let root = config.as_object_mut().expect("checked by config::parse");
    if !changes.ips.is_empty() {
        let ips: Vec<String> = changes.ips.iter().map(ToString::to_string).collect();
        object(root, "runtimeConfig")?.insert("ips".into(), json!(ips));
    }
    if changes.ranges.is_empty() && changes.routes.is_empty() {
        return Ok(());
    }
    let ipam = root.get_mut("ipam").and_then(Value::as_object_mut).ok_or_else(|| {
        CniError::config(format!("policy {policy} changes the IPAM ranges or routes, but the config has no ipam"))
    })?;
    if !changes.ranges.is_empty() {
        for single in ["subnet", "rangeStart", "rangeEnd", "gateway"] {
            ipam.remove(single);
        }
        let sets: Vec<Value> = changes
            .ranges
            .into_iter()
            .map(|r| {
                let mut range = json!({ "subnet": r.subnet.trunc() });
                for (key, v) in [("rangeStart", r.range_start), ("rangeEnd", r.range_end), ("gateway", r.gateway)] {
                    if let Some(v) = v {
                        range[key] = json!(v);
                    }
                }
                json!([range])
            })
            .collect();
        ipam.insert("ranges".into(), Value::Array(sets));
    }
    if !changes.routes.is_empty() {
        let routes = ipam.entry("routes").or_insert_with(|| json!([]));
        let list = routes.as_array_mut().ok_or_else(|| CniError::config("ipam \"routes\" must be a list"))?;
        list.extend(changes.routes.into_iter().map(|r| {
            let mut route = json!({ "dst": r.dst });
            if let Some(gw) = r.gw {
                route["gw"] = json!(gw);
            }
            route
        }));
    }
    Ok(())
}

/// The object under `key`, created when absent.
fn object<'a>(parent: &'a mut Map<String, Value>, key: &str) -> Result<&'a mut Map<String, Value>, CniError> {
    parent
        .entry(key)
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| CniError::config(format!("\"{key}\" must be an object")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::result::Route;
    use ipnet::IpNet;
    use wasmcni_cni::decision::{Range, WantedIp};

    fn changes(ips: &[&str], ranges: &[&str], routes: &[&str]) -> Changes {
        Changes {
            ips: ips
                .iter()
                .map(|s| match s.parse::<IpNet>() {
                    Ok(n) => WantedIp { addr: n.addr(), prefix_len: Some(n.prefix_len()) },
                    Err(_) => WantedIp { addr: s.parse().unwrap(), prefix_len: None },
                })
                .collect(),
            ranges: ranges
                .iter()
                .map(|s| Range { subnet: s.parse().unwrap(), range_start: None, range_end: None, gateway: None })
                .collect(),
            routes: routes.iter().map(|d| Route::to(d.parse().unwrap())).collect(),
        }
    }

    #[test]
    fn changes_rewrite_the_ipam_section_and_the_requested_ips() {
        let mut c = json!({"name": "n", "ipam": {"type": "host-local", "subnet": "10.0.0.0/24",
            "gateway": "10.0.0.1", "routes": [{"dst": "0.0.0.0/0"}]}});
        apply(&mut c, "p", changes(&["10.9.0.7", "10.9.0.8/24"], &["10.9.0.0/24", "fd09::/64"], &["192.168.0.0/16"]))
            .unwrap();
        assert_eq!(c["runtimeConfig"]["ips"], json!(["10.9.0.7", "10.9.0.8/24"]));
        assert_eq!(c["ipam"]["ranges"], json!([[{"subnet": "10.9.0.0/24"}], [{"subnet": "fd09::/64"}]]));
        assert!(c["ipam"].get("subnet").is_none() && c["ipam"].get("gateway").is_none());
        assert_eq!(c["ipam"]["routes"], json!([{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16"}]));
    }

    #[test]
    fn changes_the_config_cannot_take_are_refused() {
        let mut c = json!({"name": "n"});
        let err = apply(&mut c, "p", changes(&[], &["10.0.0.0/24"], &[])).unwrap_err();
        assert!(err.code == 7 && err.msg.contains("no ipam"), "{err}");
        let mut c = json!({"name": "n", "runtimeConfig": "x"});
        assert_eq!(apply(&mut c, "p", changes(&["10.0.0.1"], &[], &[])).unwrap_err().code, 7);
    }
}
