//! Parsing and validating one plugin's network config.

use crate::env::validate_network_name;
use crate::error::{CniError, Code};
use crate::result::CniResult;
use crate::version::Version;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Per-plugin limits: `"limits": {"timeoutMs": 10000, "memoryMiB": 64}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { timeout: Duration::from_secs(10), memory_bytes: 64 << 20 }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLimits {
    timeout_ms: Option<u64>,
    #[serde(rename = "memoryMiB")]
    memory_mib: Option<u64>,
}

impl Limits {
    pub fn from_value(v: Option<&Value>, base: Limits) -> Result<Limits, CniError> {
        let Some(v) = v else { return Ok(base) };
        let raw: RawLimits =
            serde_json::from_value(v.clone()).map_err(|e| CniError::config(format!("invalid \"limits\": {e}")))?;
        let timeout = match raw.timeout_ms {
            // The daemon answers within two minutes; a plugin gets at most one.
            Some(ms) if ms > 60_000 => {
                return Err(CniError::config(format!("limits.timeoutMs {ms} is over the 60000 ms maximum")));
            }
            Some(ms) => Duration::from_millis(ms),
            None => base.timeout,
        };
        let memory_bytes = match raw.memory_mib {
            Some(m) if (1..=4096).contains(&m) => (m as usize) << 20,
            Some(m) => {
                return Err(CniError::config(format!("limits.memoryMiB {m} out of range 1-4096")));
            }
            None => base.memory_bytes,
        };
        if timeout.is_zero() {
            return Err(CniError::config("limits.timeoutMs must be positive"));
        }
        Ok(Limits { timeout, memory_bytes })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    cni_version: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "type", default)]
    kind: String,
    plugin: Option<String>,
    plugin_sha256: Option<String>,
    ipam: Option<Value>,
    prev_result: Option<Value>,
    bridge: Option<String>,
    master: Option<String>,
    #[serde(default)]
    host_links: Vec<String>,
    rules_file: Option<String>,
    network_policy: Option<NetworkPolicy>,
}

/// `networkPolicy`: the `netpol` module that computes the node's rules, and
/// where its inputs (NetworkPolicy, Namespace and Pod objects) come from.
/// Read from a config and from an attachment's record alike, so the rule
/// of one source lives in the type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "RawNetworkPolicy")]
pub struct NetworkPolicy {
    pub module: String,
    pub source: PolicySource,
}

/// Where the objects come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PolicySource {
    /// A directory of manifests.
    Manifests(PathBuf),
    /// Objects under an etcd prefix, one or more manifests per key.
    Etcd(EtcdObjects),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawNetworkPolicy {
    #[serde(default = "default_netpol_module")]
    module: String,
    manifests: Option<PathBuf>,
    etcd: Option<EtcdObjects>,
}

impl TryFrom<RawNetworkPolicy> for NetworkPolicy {
    type Error = &'static str;
    fn try_from(raw: RawNetworkPolicy) -> Result<Self, Self::Error> {
        let source = match (raw.manifests, raw.etcd) {
            (Some(dir), None) => PolicySource::Manifests(dir),
            (None, Some(etcd)) => PolicySource::Etcd(etcd),
            _ => return Err("networkPolicy needs one source: \"manifests\" (a directory) or \"etcd\""),
        };
        Ok(NetworkPolicy { module: raw.module, source })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdObjects {
    pub endpoints: Vec<String>,
    pub prefix: String,
}

fn default_netpol_module() -> String {
    "k8s-networkpolicy".into()
}

/// One plugin's config, as the runtime sent it.
#[derive(Debug, Clone)]
pub struct NetConf {
    pub cni_version: String,
    pub version: Version,
    pub name: String,
    pub kind: String,
    pub plugin: Option<String>,
    pub plugin_sha256: Option<String>,
    pub limits: Limits,
    pub ipam: Option<Value>,
    pub ipam_limits: Limits,
    pub prev_result: Option<CniResult>,
    /// The host links a plugin may touch without having created them: those
    /// `hostLinks` lists, the `bridge` (the reference default `cni0` when
    /// absent) and a macvlan/ipvlan/vlan `master`.
    pub host_links: Vec<String>,
    /// `rulesFile`: where the plugin's rules come from.
    pub rules_file: Option<String>,
    /// `policies`: the entries of the policy modules to run before ADD, each
    /// with at least a `plugin`.
    pub policies: Vec<Value>,
    /// `networkPolicy`: enforced for this attachment's pod when set.
    pub network_policy: Option<NetworkPolicy>,
    /// GC's `cni.dev/valid-attachments` (or the older `cni.dev/attachments`).
    pub valid_attachments: Vec<(String, String)>,
    /// The config as received (with files it names resolved), handed to
    /// plugins and delegates.
    pub raw: String,
}

/// Reads stdin as a JSON object: not JSON, or not an object, is code 6.
pub fn decode(stdin: &[u8]) -> Result<Value, CniError> {
    let value: Value = serde_json::from_slice(stdin)
        .map_err(|e| CniError::new(Code::DecodeFailure, format!("network config is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(CniError::new(Code::DecodeFailure, "network config must be a JSON object"));
    }
    Ok(value)
}

impl NetConf {
    /// Validates a decoded config: a field of the wrong type or a bad name →
    /// 7; an unsupported cniVersion → 1. `as_given` is the config as plugins
    /// and delegates get it.
    pub fn from_value(value: &Value, as_given: String) -> Result<NetConf, CniError> {
        let raw: Raw = serde_json::from_value(value.clone())
            .map_err(|e| CniError::config(format!("invalid network config: {e}")))?;
        let version = Version::supported(&raw.cni_version)?;
        validate_network_name(&raw.name)?;
        if raw.kind.is_empty() {
            return Err(CniError::config("network config has no \"type\""));
        }
        if let Some(pin) = &raw.plugin_sha256
            && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(CniError::config(format!("pluginSha256 {pin:?} is not a hex sha256")));
        }
        if let Some(ipam) = &raw.ipam
            && !ipam.is_object()
        {
            return Err(CniError::config("\"ipam\" must be an object"));
        }
        let limits = Limits::from_value(value.get("limits"), Limits::default())?;
        let ipam_limits = Limits::from_value(raw.ipam.as_ref().and_then(|i| i.get("limits")), limits)?;
        let prev_result = raw.prev_result.as_ref().map(CniResult::from_any).transpose()?;
        Ok(NetConf {
            cni_version: raw.cni_version,
            version,
            name: raw.name,
            kind: raw.kind,
            plugin: raw.plugin,
            plugin_sha256: raw.plugin_sha256.map(|s| s.to_ascii_lowercase()),
            limits,
            ipam: raw.ipam,
            ipam_limits,
            prev_result,
            host_links: [raw.bridge.unwrap_or_else(|| "cni0".into())]
                .into_iter()
                .chain(raw.master)
                .chain(raw.host_links)
                .collect(),
            rules_file: raw.rules_file,
            policies: policies(value)?,
            network_policy: raw.network_policy,
            valid_attachments: valid_attachments(value)?,
            raw: as_given,
        })
    }
}

fn policies(v: &Value) -> Result<Vec<Value>, CniError> {
    let Some(list) = v.get("policies") else { return Ok(Vec::new()) };
    let entries = list.as_array().ok_or_else(|| CniError::config("\"policies\" must be a list"))?;
    for entry in entries {
        if entry.get("plugin").and_then(Value::as_str).is_none() {
            return Err(CniError::config(format!(
                "policy entry {entry} needs a \"plugin\" (module name or absolute path)"
            )));
        }
    }
    Ok(entries.clone())
}

fn valid_attachments(v: &Value) -> Result<Vec<(String, String)>, CniError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Attachment {
        #[serde(rename = "containerID")]
        container_id: String,
        ifname: String,
    }
    let list = v.get("cni.dev/valid-attachments").or_else(|| v.get("cni.dev/attachments"));
    // libcni sends null for an empty list.
    let Some(list) = list.filter(|l| !l.is_null()) else {
        return Ok(Vec::new());
    };
    let items: Vec<Attachment> = serde_json::from_value(list.clone())
        .map_err(|e| CniError::config(format!("invalid cni.dev/valid-attachments: {e}")))?;
    Ok(items.into_iter().map(|a| (a.container_id, a.ifname)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<NetConf, CniError> {
        NetConf::from_value(&decode(s.as_bytes())?, s.to_owned())
    }

    #[test]
    fn error_codes_for_bad_input() {
        assert_eq!(parse("{not json").unwrap_err().code, 6);
        assert_eq!(parse("[1]").unwrap_err().code, 6);
        assert_eq!(parse(r#"{"cniVersion":"1.0.0","name":"a b","type":"x"}"#).unwrap_err().code, 7);
        assert_eq!(parse(r#"{"cniVersion":"1.0.0","name":"n","type":5}"#).unwrap_err().code, 7);
        assert_eq!(parse(r#"{"cniVersion":"9.9.9","name":"n","type":"x"}"#).unwrap_err().code, 1);
        assert_eq!(parse(r#"{"cniVersion":"1.0.0","name":"n","type":"x","pluginSha256":"zz"}"#).unwrap_err().code, 7);
        assert_eq!(
            parse(r#"{"cniVersion":"1.0.0","name":"n","type":"x","limits":{"memoryMiB":0}}"#).unwrap_err().code,
            7
        );
    }

    #[test]
    fn reads_limits_attachments_and_prev_result() {
        let c = parse(
            r#"{"cniVersion":"1.1.0","name":"n","type":"wasm-bridge","limits":{"timeoutMs":250},
                "ipam":{"type":"host-local","limits":{"memoryMiB":8}},
                "cni.dev/attachments":[{"containerID":"c1","ifname":"eth0"}],
                "prevResult":{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/24"}}}"#,
        )
        .unwrap();
        assert_eq!(c.limits.timeout, Duration::from_millis(250));
        assert_eq!(c.ipam_limits.timeout, Duration::from_millis(250));
        assert_eq!(c.ipam_limits.memory_bytes, 8 << 20);
        assert_eq!(c.valid_attachments, vec![("c1".to_string(), "eth0".to_string())]);
        assert_eq!(c.prev_result.unwrap().ips[0].address, "10.0.0.2/24".parse().unwrap());
        assert_eq!(c.host_links, ["cni0"]);
        let c = parse(r#"{"cniVersion":"1.0.0","name":"n","type":"macvlan","master":"eth1","hostLinks":["bond0"]}"#);
        assert_eq!(c.unwrap().host_links, ["cni0", "eth1", "bond0"]);
        let bad = parse(r#"{"cniVersion":"1.0.0","name":"n","type":"x","hostLinks":"eth1"}"#);
        assert_eq!(bad.unwrap_err().code, 7);
    }

    #[test]
    fn network_policy_names_a_module_and_a_source() {
        let c = parse(r#"{"cniVersion":"1.0.0","name":"n","type":"x","networkPolicy":{"manifests":"/etc/netpol"}}"#);
        let p = c.unwrap().network_policy.unwrap();
        assert_eq!((p.module.as_str(), p.source), ("k8s-networkpolicy", PolicySource::Manifests("/etc/netpol".into())));
        for bad in [
            r#"{}"#,
            r#"{"manifests":"/m","extra":1}"#,
            r#"{"etcd":{"endpoints":"x","prefix":"/p"}}"#,
            r#"{"manifests":"/m","etcd":{"endpoints":["http://127.0.0.1:2379"],"prefix":"/p"}}"#,
        ] {
            let c = format!(r#"{{"cniVersion":"1.0.0","name":"n","type":"x","networkPolicy":{bad}}}"#);
            assert_eq!(parse(&c).unwrap_err().code, 7, "{bad}");
        }
    }
}
