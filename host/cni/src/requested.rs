//! The addresses and MAC a runtime asks for: CNI_ARGS `IP`/`MAC`, the
//! config's `args.cni.ips`/`mac` and `runtimeConfig.ips`/`mac`, read once
//! and typed. Addresses are gathered in that order without duplicates; of
//! the MACs the last wins (runtimeConfig over args over CNI_ARGS, as the
//! reference bridge reads them).

use crate::error::CniError;
use crate::mac::Mac;
use ipnet::IpNet;
use serde_json::Value;
use std::net::IpAddr;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
    pub ips: Vec<IpAddr>,
    pub mac: Option<Mac>,
}

/// An address as runtimes write it: bare, or with a prefix length (`ips`
/// entries are often CIDRs); the address is what is asked for.
fn address(s: &str, from: &str) -> Result<IpAddr, CniError> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .or_else(|_| s.parse::<IpNet>().map(|n| n.addr()))
        .map_err(|_| CniError::config(format!("{from}: {s:?} is not an IP address")))
}

fn mac(s: &str, from: &str) -> Result<Mac, CniError> {
    s.trim().parse().map_err(|e| CniError::config(format!("{from}: {e}")))
}

impl Requested {
    /// Gathers what `args` (CNI_ARGS) and `config` ask for; a malformed
    /// entry is code 7.
    pub fn gather(args: &[(String, String)], config: &Value) -> Result<Requested, CniError> {
        let mut out = Requested::default();
        let mut add = |ip: IpAddr| {
            if !out.ips.contains(&ip) {
                out.ips.push(ip);
            }
        };
        for (k, v) in args {
            match k.as_str() {
                "IP" => v
                    .split(',')
                    .filter(|ip| !ip.trim().is_empty())
                    .try_for_each(|ip| address(ip, "CNI_ARGS IP").map(&mut add))?,
                // Empty is unset, as the reference plugins read it.
                "MAC" if !v.trim().is_empty() => out.mac = Some(mac(v, "CNI_ARGS MAC")?),
                _ => {}
            }
        }
        for (section, at) in [("args.cni", &config["args"]["cni"]), ("runtimeConfig", &config["runtimeConfig"])] {
            match &at["ips"] {
                Value::Null => {}
                Value::Array(list) => {
                    for ip in list {
                        let s =
                            ip.as_str().ok_or_else(|| CniError::config(format!("{section}.ips must hold strings")))?;
                        add(address(s, &format!("{section}.ips"))?);
                    }
                }
                _ => return Err(CniError::config(format!("{section}.ips must be a list"))),
            }
            match &at["mac"] {
                Value::Null => {}
                Value::String(s) if s.trim().is_empty() => {}
                Value::String(s) => out.mac = Some(mac(s, &format!("{section}.mac"))?),
                _ => return Err(CniError::config(format!("{section}.mac must be a string"))),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn gathers_in_order_without_duplicates_and_runtime_config_s_mac_wins() {
        let config = json!({
            "args": {"cni": {"ips": ["10.0.0.3", "10.0.0.2/24"], "mac": "02:00:00:00:00:02"}},
            "runtimeConfig": {"ips": ["fd00::5/64"], "mac": "02:00:00:00:00:03"}
        });
        let r = Requested::gather(&args(&[("K8S_POD_NAME", "p"), ("IP", "10.0.0.2,10.0.0.4")]), &config).unwrap();
        let ips: Vec<String> = r.ips.iter().map(ToString::to_string).collect();
        assert_eq!(ips, ["10.0.0.2", "10.0.0.4", "10.0.0.3", "fd00::5"]);
        assert_eq!(r.mac.unwrap().to_string(), "02:00:00:00:00:03");
        let from_args = Requested::gather(&args(&[("MAC", "02:00:00:00:00:01")]), &json!({})).unwrap();
        assert_eq!(from_args.mac.unwrap().to_string(), "02:00:00:00:00:01");
        assert_eq!(Requested::gather(&[], &json!({})).unwrap(), Requested::default());
        let empty = Requested::gather(&args(&[("IP", ""), ("MAC", "")]), &json!({"args": {"cni": {"mac": ""}}}));
        assert_eq!(empty.unwrap(), Requested::default(), "empty entries are unset, not malformed");
        let trailing = Requested::gather(&args(&[("IP", "10.0.0.5,")]), &json!({})).unwrap();
        assert_eq!(trailing.ips, ["10.0.0.5".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn a_malformed_entry_is_code_7_naming_where_it_came_from() {
        for (a, c, want) in [
            (vec![("IP", "10.0.0.300")], json!({}), "CNI_ARGS IP"),
            (vec![("MAC", "zz")], json!({}), "CNI_ARGS MAC"),
            (vec![], json!({"runtimeConfig": {"ips": ["nope"]}}), "runtimeConfig.ips"),
            (vec![], json!({"args": {"cni": {"ips": "10.0.0.2"}}}), "args.cni.ips"),
            (vec![], json!({"runtimeConfig": {"mac": 5}}), "runtimeConfig.mac"),
        ] {
            let err = Requested::gather(&args(&a), &c).unwrap_err();
            assert!(err.code == 7 && err.msg.contains(want), "{err}");
        }
    }
}
