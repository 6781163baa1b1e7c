//! Reading what the runtime passed: the plugin's config JSON and CNI_ARGS.

use crate::Error;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::net::IpAddr;

/// Parses the plugin's config; a malformed field is the runtime's error 7.
pub fn parse_config<T: DeserializeOwned>(json: &str) -> Result<T, Error> {
    serde_json::from_str(json).map_err(|e| Error::config(format!("invalid plugin config: {e}")))
}

/// The value of `key` in CNI_ARGS (`K1=V1;K2=V2`, already split by the host).
pub fn arg<'a, I>(args: I, key: &str) -> Option<&'a str>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    args.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// The pod's Kubernetes namespace (CNI_ARGS `K8S_POD_NAMESPACE`), if the
/// runtime passed one.
pub fn pod_namespace(inv: &crate::bindings::wasmcni::plugin::types::Invocation) -> Option<&str> {
    arg(inv.args.iter().map(|a| (a.key.as_str(), a.value.as_str())), "K8S_POD_NAMESPACE")
}

/// Addresses the runtime asked for, from every place the spec's conventions
/// allow: CNI_ARGS `IP=a,b`, `args.cni.ips` and `runtimeConfig.ips`.
/// Each may be a bare address or CIDR notation.
pub fn requested_ips(config: &Value, cni_args_ip: Option<&str>) -> Result<Vec<IpAddr>, Error> {
    let mut raw: Vec<String> = Vec::new();
    if let Some(list) = cni_args_ip {
        raw.extend(list.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
    }
    for pointer in ["/args/cni/ips", "/runtimeConfig/ips"] {
        match config.pointer(pointer) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let s = item.as_str().ok_or_else(|| Error::config(format!("{pointer} must hold strings")))?;
                    raw.push(s.to_owned());
                }
            }
            Some(_) => return Err(Error::config(format!("{pointer} must be a list"))),
        }
    }
    let mut ips = Vec::new();
    for s in raw {
        let addr = s.split('/').next().unwrap_or_default().trim();
        let ip: IpAddr = addr.parse().map_err(|_| Error::config(format!("requested IP {s:?} is not an IP address")))?;
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requested_ips_come_from_all_three_places_without_duplicates() {
        let cfg = json!({
            "args": {"cni": {"ips": ["10.0.0.7"]}},
            "runtimeConfig": {"ips": ["10.0.0.8/24", "10.0.0.7"]}
        });
        let ips = requested_ips(&cfg, Some("10.0.0.9,fd00::5")).unwrap();
        let want: Vec<IpAddr> =
            ["10.0.0.9", "fd00::5", "10.0.0.7", "10.0.0.8"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(ips, want);
    }

    #[test]
    fn a_bad_requested_ip_is_a_config_error() {
        let err = requested_ips(&json!({}), Some("10.0.0.300")).unwrap_err();
        assert_eq!(err.code, crate::Code::InvalidConfig);
        let err = requested_ips(&json!({"runtimeConfig": {"ips": "x"}}), None).unwrap_err();
        assert_eq!(err.code, crate::Code::InvalidConfig);
    }

    #[test]
    fn arg_finds_a_key() {
        let args = [("IgnoreUnknown", "1"), ("IP", "10.1.1.1")];
        assert_eq!(arg(args.iter().map(|(k, v)| (*k, *v)), "IP"), Some("10.1.1.1"));
        assert_eq!(arg(args.iter().map(|(k, v)| (*k, *v)), "MAC"), None);
    }
}
