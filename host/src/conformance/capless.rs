//! Modules that compute and touch nothing (routing, overlay, netpol): each
//! is called on a sample node the way the daemon calls it, and must answer
//! within what its inputs allow, answer the same twice, and end cleanly
//! under a tight deadline and memory limit. A policy is checked through
//! the ADD it guards.

use super::MEMORY_STEPS_MIB;
use super::handler::kept;
use super::lab::{Call, Lab, Netns, merge, unique};
use super::report::Report;
use crate::config::Limits;
use crate::runner::{OverlayPeer, Runner, Target, Underlay, Vtep};
use anyhow::Result;
use ipnet::IpNet;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;
use wasmcni_caps::v1::netpol::{Namespace, Pod};
use wasmcni_cni::Mac;
use wasmcni_cni::error::CniError;
use wasmcni_cni::version::CURRENT;
use wasmcni_engine::Role;

fn net(s: &str) -> IpNet {
    s.parse().expect("a literal prefix")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("a literal address")
}

fn target(module: &Path, role: Role, limits: Limits) -> Target {
    Target { path: module.to_owned(), sha256: None, limits, role: Some(role) }
}

/// One call under the default limits, its repeat, and the call under a
/// 1 ms deadline and then the smallest memory limits.
async fn limited<T: PartialEq + std::fmt::Debug>(
    report: &mut Report,
    what: &str,
    call: impl AsyncFn(Limits) -> Result<T, CniError>,
    judge: impl Fn(&T) -> Result<String, String>,
) {
    let base = Limits::default();
    let first = call(base).await;
    report.check(what, first.as_ref().map_err(|e| e.msg.clone()).and_then(&judge));
    let again = call(base).await;
    report.check(
        "the same answer when asked again",
        match (&first, &again) {
            (Ok(a), Ok(b)) if a == b => Ok(String::new()),
            (Err(a), Err(b)) if a.code == b.code => Ok(String::new()),
            _ => Err(format!("{first:?} then {again:?}")),
        },
    );
    let quick = Limits { timeout: Duration::from_millis(1), ..base };
    let outcome = match call(quick).await {
        Ok(_) => "completed".to_string(),
        Err(e) => format!("code {}: {}", e.code, e.msg),
    };
    report.check("a 1 ms deadline ends it with an answer or a CNI error", Ok(outcome));
    let mut needs = None;
    for mib in MEMORY_STEPS_MIB {
        if call(Limits { memory_bytes: (mib as usize) << 20, ..base }).await.is_ok() {
            needs = Some(mib);
            break;
        }
    }
    report.check(
        "memory limits end it cleanly",
        match needs {
            Some(mib) => Ok(format!("fits in {mib} MiB; under less it fails with a CNI error")),
            None => Err("does not fit in the default 64 MiB".into()),
        },
    );
}

pub async fn routing(runner: &Runner, module: &Path, config: &Map<String, Value>, report: &mut Report) {
    let local = (ip("10.0.0.1"), net("10.244.0.0/24"));
    let peers = [(ip("10.0.0.2"), net("10.244.1.0/24")), (ip("10.0.0.3"), net("10.244.2.0/24"))];
    let addresses = [net("10.0.0.1/24")];
    let underlay = Underlay { name: "eth0", addresses: &addresses };
    let config = Value::Object(config.clone()).to_string();
    limited(
        report,
        "routes to two peers' pods, none elsewhere",
        async |limits| {
            runner.node_routes(&target(module, Role::Routing, limits), config.clone(), local, &peers, underlay).await
        },
        |routes| {
            let stray: Vec<String> = routes
                .iter()
                .filter(|r| !peers.iter().any(|(_, subnet)| subnet.contains(&r.dst)))
                .map(|r| r.dst.to_string())
                .collect();
            if routes.is_empty() {
                Err("no routes".into())
            } else if stray.is_empty() {
                Ok(format!("{} routes", routes.len()))
            } else {
                Err(format!("routes outside the peers' subnets: {}", stray.join(", ")))
            }
        },
    )
    .await;
    let none =
        runner.node_routes(&target(module, Role::Routing, Limits::default()), config, local, &[], underlay).await;
    report.check(
        "no peers, no routes",
        match none {
            Ok(r) if r.is_empty() => Ok(String::new()),
            Ok(r) => Err(format!("{} routes", r.len())),
            Err(e) => Err(e.msg),
        },
    );
}

pub async fn overlay(runner: &Runner, module: &Path, config: &Map<String, Value>, report: &mut Report) {
    let mac = |last: u8| Mac([0x02, 0, 0, 0, 0, last]);
    let peer = |n: u8| OverlayPeer {
        ip: ip(&format!("10.0.0.{n}")),
        subnet: net(&format!("10.244.{}.0/24", n - 1)),
        vtep_mac: Some(mac(n)),
    };
    let local = peer(1);
    let peers = [peer(2), peer(3)];
    let addresses = [net("10.0.0.1/24")];
    let underlay = Underlay { name: "eth0", addresses: &addresses };
    let vtep = Vtep { name: "flannel.1".into(), vni: 1, mac: mac(1), mtu: 1450 };
    let config = Value::Object(config.clone()).to_string();
    limited(
        report,
        "entries for two peers' pods, none elsewhere",
        async |limits| {
            runner
                .node_overlay(&target(module, Role::Overlay, limits), config.clone(), &local, &peers, underlay, &vtep)
                .await
        },
        |entries| {
            let stray: Vec<String> = entries
                .routes
                .iter()
                .filter(|r| !peers.iter().any(|p| p.subnet.contains(&r.route.dst)))
                .map(|r| r.route.dst.to_string())
                .collect();
            if entries.routes.is_empty() {
                Err("no routes".into())
            } else if stray.is_empty() {
                Ok(format!(
                    "{} routes, {} neighbours, {} fdb entries",
                    entries.routes.len(),
                    entries.neighbors.len(),
                    entries.fdb.len()
                ))
            } else {
                Err(format!("routes outside the peers' subnets: {}", stray.join(", ")))
            }
        },
    )
    .await;
}

pub async fn netpol(runner: &Runner, module: &Path, report: &mut Report) {
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let namespaces = [Namespace { name: "web".into(), labels: labels(&[("team", "web")]) }];
    let pod = |name: &str, n: u8| Pod {
        namespace: "web".into(),
        name: name.into(),
        labels: labels(&[("app", name), ("isolated", "true")]),
        ips: vec![ip(&format!("10.244.0.{n}"))],
    };
    let local = [pod("front", 2), pod("back", 3)];
    let remote = [pod("db", 4)];
    let deny_all = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all", "namespace": "web"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    .to_string();
    let policies = [deny_all];
    limited(
        report,
        "rules for each local pod, and no other",
        async |limits| {
            runner
                .network_policy(&target(module, Role::Netpol, limits), &policies, &namespaces, &local, &remote, None)
                .await
        },
        |rules| {
            let mut named: Vec<String> = rules.iter().map(|r| format!("{}/{}", r.namespace, r.name)).collect();
            named.sort();
            if named == ["web/back", "web/front"] {
                Ok(format!("{} pods", named.len()))
            } else {
                Err(format!("rules for {named:?}"))
            }
        },
    )
    .await;
    let empty = runner.network_policy(&target(module, Role::Netpol, Limits::default()), &[], &[], &[], &[], None).await;
    report.check(
        "no pods, no rules",
        match empty {
            Ok(r) if r.is_empty() => Ok(String::new()),
            Ok(r) => Err(format!("{} rules", r.len())),
            Err(e) => Err(e.msg),
        },
    );
}

/// A policy guards an ADD of the first-party bridge: admitted or denied,
/// the node must hold nothing of a denied ADD, nor of any after DEL.
pub fn policy(lab: &Lab, module: &Path, config: &Map<String, Value>, report: &mut Report) -> Result<()> {
    let mut entry = json!({"plugin": module.display().to_string()});
    merge(&mut entry, config);
    // A bridge per kind of ADD: a policy may give a pod another range, and so its bridge another gateway.
    let conf = |entry: &Value, bridge: &str| {
        let mut conf = lab.bridge_conf(CURRENT, bridge);
        conf["policies"] = json!([entry]);
        conf
    };
    let before = lab.snapshot()?;
    for (args, label) in
        [("", "without CNI_ARGS"), ("IgnoreUnknown=1;K8S_POD_NAMESPACE=conformance;K8S_POD_NAME=p", "of a pod")]
    {
        let bridge = unique("b");
        for limits in [None, Some(json!({"timeoutMs": 1}))] {
            let mut entry = entry.clone();
            if let Some(l) = &limits {
                entry["limits"] = l.clone();
            }
            let conf = conf(&entry, &bridge).to_string();
            let netns = Netns::new("c")?;
            let id = unique("p");
            let call =
                |command| Call { command, container_id: &id, netns: netns.path(), ifname: "eth0", args, config: &conf };
            let add = lab.exec(&call("ADD"))?;
            // A denial is code 103 and creates nothing; an admitted ADD is the bridge's.
            let outcome = if add.ok {
                Ok("admitted".to_string())
            } else if add.code() == Some(103) {
                match netns.links_besides_lo() {
                    Ok(links) if links.is_empty() && lab.leases().is_empty() => {
                        Ok(format!("denied, {}", add.failure()))
                    }
                    Ok(links) => Err(format!("denied, yet the ADD left {links:?} and leases {:?}", lab.leases())),
                    Err(e) => Err(e.to_string()),
                }
            } else {
                Err(format!("neither admitted nor denied (103): {}", add.failure()))
            };
            let del = lab.exec(&call("DEL"))?;
            let again = lab.exec(&call("DEL"))?;
            let what = if limits.is_some() {
                format!("an ADD {label} under a 1 ms policy deadline")
            } else {
                format!("an ADD {label}, DEL, DEL again")
            };
            let emptied = netns.links_besides_lo().map(|links| links.is_empty());
            report.check(
                what,
                outcome.and_then(|d| {
                    if !del.ok {
                        return Err(format!("DEL: {}", del.failure()));
                    }
                    if !matches!(emptied, Ok(true)) {
                        return Err("DEL left links in the container".into());
                    }
                    if !again.ok {
                        return Err(format!("DEL again: {}", again.failure()));
                    }
                    if lab.leases().is_empty() { Ok(d) } else { Err(format!("leases kept: {:?}", lab.leases())) }
                }),
            );
        }
    }
    let after = lab.snapshot()?;
    report.info("kept for the network after its last DEL", kept(&before, &after));
    Ok(())
}
