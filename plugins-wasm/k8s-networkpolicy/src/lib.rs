//! Kubernetes NetworkPolicy (networking.k8s.io/v1) as typed rules per local
//! pod: a pod a policy selects is isolated in that policy's directions, and
//! what it may receive or send is the union of the rules of every policy
//! selecting it. Peers are pods (by podSelector in the policy's namespace,
//! by namespaceSelector, or both at once) and ipBlocks with their excepts;
//! ports are a protocol with a port or an endPort range. A named port needs
//! the pod's container ports, which this module is not given: it matches
//! nothing, so it never opens more than the policy says.

mod api;

use api::{LabelSelector, NetworkPolicy, Peer, Port};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;
use wasmcni_sdk::Error;
use wasmcni_sdk::netpol::types::CniError;
use wasmcni_sdk::netpol::{Allow, Label, Namespace, NetworkPolicy as Guest, Pod, PodRules, Ports, Protocol, log};

/// What the rules are computed over, labels as maps.
struct World<'a> {
    namespaces: BTreeMap<&'a str, BTreeMap<String, String>>,
    pods: Vec<(&'a Pod, BTreeMap<String, String>)>,
}

/// One policy's allows per direction; `None` for a direction it does not isolate.
#[derive(Clone)]
struct Compiled {
    ingress: Option<Vec<Allow>>,
    egress: Option<Vec<Allow>>,
}

fn map(labels: &[Label]) -> BTreeMap<String, String> {
    labels.iter().map(|l| (l.key.clone(), l.value.clone())).collect()
}

fn invalid(policy: &str, e: impl std::fmt::Display) -> Error {
    Error::config(format!("NetworkPolicy {policy}: {e}"))
}

impl World<'_> {
    /// The addresses (as host prefixes) of the pods `peer` names, or its ipBlock.
    fn peer(&self, policy: &NetworkPolicy, peer: &Peer) -> Result<Vec<IpNet>, Error> {
        let name = &policy.metadata.name;
        if let Some(block) = &peer.ip_block {
            return Ok(subtract(block.cidr.trunc(), &block.except));
        }
        let everything = LabelSelector::default();
        let pods = peer.pod_selector.as_ref().unwrap_or(&everything);
        let mut out = Vec::new();
        for (pod, labels) in &self.pods {
            let in_namespace = match &peer.namespace_selector {
                // Without one, the policy's own namespace.
                None => pod.namespace == policy.metadata.namespace,
                Some(sel) => {
                    let ns = self.namespaces.get(pod.namespace.as_str()).cloned().unwrap_or_default();
                    sel.matches(&ns).map_err(|e| invalid(name, e))?
                }
            };
            if in_namespace && pods.matches(labels).map_err(|e| invalid(name, e))? {
                out.extend(pod.ips.iter().map(|ip| IpNet::from(IpAddr::from(*ip))));
            }
        }
        Ok(out)
    }

    /// What `policy` allows in each direction it isolates.
    fn compile(&self, policy: &NetworkPolicy) -> Result<Compiled, Error> {
        let (ingress, egress) = policy.spec.types();
        let mut c = Compiled { ingress: None, egress: None };
        if ingress {
            let rules = policy.spec.ingress.iter().flatten().map(|r| self.allow(policy, &r.from, &r.ports));
            c.ingress = Some(rules.collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect());
        }
        if egress {
            let rules = policy.spec.egress.iter().flatten().map(|r| self.allow(policy, &r.to, &r.ports));
            c.egress = Some(rules.collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect());
        }
        Ok(c)
    }

    /// One rule as an allow: none when it can match nothing (no peer
    /// resolved, or only named ports).
    fn allow(
        &self,
        policy: &NetworkPolicy,
        peers: &Option<Vec<Peer>>,
        ports: &Option<Vec<Port>>,
    ) -> Result<Option<Allow>, Error> {
        let peers = match peers.as_deref() {
            None | Some([]) => None,
            Some(list) => {
                let mut all = Vec::new();
                for p in list {
                    all.extend(self.peer(policy, p)?);
                }
                if all.is_empty() {
                    return Ok(None);
                }
                Some(all.into_iter().map(Into::into).collect())
            }
        };
        let ports = match ports.as_deref() {
            None | Some([]) => Vec::new(),
            Some(list) => {
                let resolved: Vec<Ports> = list
                    .iter()
                    .map(|p| port(&policy.metadata.name, p))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .flatten()
                    .collect();
                if resolved.is_empty() {
                    return Ok(None);
                }
                resolved
            }
        };
        Ok(Some(Allow { peers, ports }))
    }
}

/// A port entry; none for a named port.
fn port(policy: &str, p: &Port) -> Result<Option<Ports>, Error> {
    let protocol = match p.protocol.as_deref().unwrap_or("TCP") {
        "TCP" => Protocol::Tcp,
        "UDP" => Protocol::Udp,
        "SCTP" => Protocol::Sctp,
        other => return Err(invalid(policy, format!("unknown protocol {other:?}"))),
    };
    let first = match &p.port {
        None => return Ok(Some(Ports { protocol, range: None })),
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()).filter(|n| *n > 0),
        Some(serde_json::Value::String(name)) => {
            log::emit(log::Level::Warn, &format!("NetworkPolicy {policy}: named port {name:?} matches nothing here"));
            return Ok(None);
        }
        Some(other) => return Err(invalid(policy, format!("port {other} is not a number or a name"))),
    };
    let first = first.ok_or_else(|| invalid(policy, "a port is 1 to 65535"))?;
    let last = p.end_port.unwrap_or(first);
    if last < first {
        return Err(invalid(policy, format!("endPort {last} is below port {first}")));
    }
    Ok(Some(Ports { protocol, range: Some((first, last)) }))
}

/// `net` without `except`, as the fewest prefixes.
fn subtract(net: IpNet, except: &[IpNet]) -> Vec<IpNet> {
    if except.iter().any(|e| e.contains(&net)) {
        return Vec::new();
    }
    if !except.iter().any(|e| net.contains(e)) {
        return vec![net];
    }
    let halves = net.subnets(net.prefix_len() + 1).expect("an except inside it is longer");
    halves.flat_map(|half| subtract(half, except)).collect()
}

fn compute(
    policies: &[String],
    namespaces: &[Namespace],
    local: &[Pod],
    remote: &[Pod],
) -> Result<Vec<PodRules>, Error> {
    let policies: Vec<NetworkPolicy> = policies
        .iter()
        .map(|p| serde_json::from_str(p).map_err(|e| Error::config(format!("not a NetworkPolicy: {e}"))))
        .collect::<Result<_, _>>()?;
    let world = World {
        namespaces: namespaces.iter().map(|n| (n.name.as_str(), map(&n.labels))).collect(),
        pods: local.iter().chain(remote).map(|p| (p, map(&p.labels))).collect(),
    };
    // A policy's allows depend on the policy, not on the pod it selects:
    // each is computed once, when a pod first needs it.
    let mut compiled: Vec<Option<Compiled>> = vec![None; policies.len()];
    let mut out = Vec::new();
    for pod in local {
        let labels = map(&pod.labels);
        let mut rules = PodRules {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            ingress_isolated: false,
            egress_isolated: false,
            ingress: Vec::new(),
            egress: Vec::new(),
        };
        for (policy, compiled) in policies.iter().zip(&mut compiled) {
            let selects = policy.metadata.namespace == pod.namespace
                && policy.spec.pod_selector.matches(&labels).map_err(|e| invalid(&policy.metadata.name, e))?;
            if !selects {
                continue;
            }
            let c = match compiled {
                Some(c) => c,
                None => compiled.insert(world.compile(policy)?),
            };
            if let Some(ingress) = &c.ingress {
                rules.ingress_isolated = true;
                rules.ingress.extend(ingress.iter().cloned());
            }
            if let Some(egress) = &c.egress {
                rules.egress_isolated = true;
                rules.egress.extend(egress.iter().cloned());
            }
        }
        out.push(rules);
    }
    Ok(out)
}

struct K8sNetworkPolicy;

impl Guest for K8sNetworkPolicy {
    fn rules(
        policies: Vec<String>,
        namespaces: Vec<Namespace>,
        local: Vec<Pod>,
        remote: Vec<Pod>,
    ) -> Result<Vec<PodRules>, CniError> {
        compute(&policies, &namespaces, &local, &remote).map_err(Into::into)
    }
}

wasmcni_sdk::export_netpol!(K8sNetworkPolicy);

#[cfg(test)]
mod tests;
