//! The parts of the NetworkPolicy API (networking.k8s.io/v1) the rules
//! depend on, as the API serves them.

use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
pub struct NetworkPolicy {
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: Spec,
}

#[derive(Deserialize)]
pub struct Metadata {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
}

fn default_namespace() -> String {
    "default".into()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    #[serde(default)]
    pub pod_selector: LabelSelector,
    pub policy_types: Option<Vec<String>>,
    pub ingress: Option<Vec<IngressRule>>,
    pub egress: Option<Vec<EgressRule>>,
}

impl Spec {
    /// Ingress always, unless policyTypes says otherwise; Egress when there
    /// are egress rules, unless policyTypes says otherwise (the API's defaults).
    pub fn types(&self) -> (bool, bool) {
        match &self.policy_types {
            Some(t) => (t.iter().any(|t| t == "Ingress"), t.iter().any(|t| t == "Egress")),
            None => (true, self.egress.is_some()),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct IngressRule {
    pub from: Option<Vec<Peer>>,
    pub ports: Option<Vec<Port>>,
}

#[derive(Deserialize, Default)]
pub struct EgressRule {
    pub to: Option<Vec<Peer>>,
    pub ports: Option<Vec<Port>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    pub pod_selector: Option<LabelSelector>,
    pub namespace_selector: Option<LabelSelector>,
    pub ip_block: Option<IpBlock>,
}

#[derive(Deserialize)]
pub struct IpBlock {
    pub cidr: IpNet,
    #[serde(default)]
    pub except: Vec<IpNet>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    pub protocol: Option<String>,
    /// A number or a named container port.
    pub port: Option<serde_json::Value>,
    pub end_port: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<Requirement>,
}

#[derive(Deserialize)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether `labels` satisfy every label and expression (an empty
    /// selector matches everything).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> Result<bool, String> {
        if !self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return Ok(false);
        }
        for r in &self.match_expressions {
            let value = labels.get(&r.key);
            let ok = match r.operator.as_str() {
                "In" => value.is_some_and(|v| r.values.contains(v)),
                "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                other => return Err(format!("unknown matchExpressions operator {other:?}")),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
