//! Where network policy inputs come from: NetworkPolicy, Namespace and Pod
//! objects in Kubernetes' own form. One trait, so that a directory of
//! manifests (what `kubectl get -o yaml` prints), an etcd prefix and, later,
//! the Kubernetes API serve the same compiler.

use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use wasmcni_caps::v1::netpol::{Namespace, Pod};
use wasmcni_cni::netconf::{NetworkPolicy, PolicySource};

/// Everything the rules are computed from, at one moment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Objects {
    /// NetworkPolicy objects, as JSON.
    pub policies: Vec<String>,
    pub namespaces: Vec<Namespace>,
    pub pods: Vec<Pod>,
}

pub trait Source {
    /// The objects as they are now.
    fn snapshot(&self) -> impl Future<Output = Result<Objects>> + Send;
}

/// The source a `networkPolicy` config names.
pub enum Configured {
    Manifests(ManifestDir),
    Etcd(EtcdPrefix),
}

impl Configured {
    pub fn of(config: &NetworkPolicy) -> Configured {
        match &config.source {
            PolicySource::Manifests(dir) => Configured::Manifests(ManifestDir(dir.clone())),
            PolicySource::Etcd(e) => {
                Configured::Etcd(EtcdPrefix { endpoints: e.endpoints.clone(), prefix: e.prefix.clone() })
            }
        }
    }
}

impl Source for Configured {
    async fn snapshot(&self) -> Result<Objects> {
        match self {
            Configured::Manifests(m) => m.snapshot().await,
            Configured::Etcd(e) => e.snapshot().await,
        }
    }
}

/// A directory of manifests: `*.yaml`, `*.yml` and `*.json` files, each one
/// or more documents, each an object or a `List` of them. Other kinds are
/// ignored.
pub struct ManifestDir(pub PathBuf);

impl Source for ManifestDir {
    async fn snapshot(&self) -> Result<Objects> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .with_context(|| format!("reading {}", self.0.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json"))
            .collect();
        files.sort();
        let mut objects = Objects::default();
        for file in files {
            for doc in documents(&file)? {
                add(&mut objects, doc).with_context(|| format!("in {}", file.display()))?;
            }
        }
        Ok(objects)
    }
}

fn documents(file: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    parse(&text).with_context(|| format!("parsing {}", file.display()))
}

/// JSON, or YAML documents. JSON is YAML too, but a JSON parser reads a
/// large `List` many times faster.
fn parse(text: &str) -> Result<Vec<Value>> {
    if let Ok(doc) = serde_json::from_str::<Value>(text) {
        return Ok(vec![doc]);
    }
    // YAML 1.2's booleans only: a namespace `y` or a label value `on` stays a string.
    let options = serde_saphyr::options! { strict_booleans: true };
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(text, options)?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The objects under an etcd prefix: each key's value one or more
/// manifests, as in a file of [`ManifestDir`].
pub struct EtcdPrefix {
    pub endpoints: Vec<String>,
    pub prefix: String,
}

/// One client per endpoint list for the process: the daemon reads the
/// prefix on every pass, and its channel reconnects by itself.
static CLIENTS: Mutex<BTreeMap<Vec<String>, etcd_client::Client>> = Mutex::new(BTreeMap::new());

async fn client(endpoints: &[String]) -> Result<etcd_client::Client> {
    if let Some(c) = CLIENTS.lock().expect("not poisoned").get(endpoints) {
        return Ok(c.clone());
    }
    let options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(5));
    let client = etcd_client::Client::connect(endpoints, Some(options))
        .await
        .with_context(|| format!("connecting to etcd at {}", endpoints.join(",")))?;
    CLIENTS.lock().expect("not poisoned").insert(endpoints.to_vec(), client.clone());
    Ok(client)
}

impl Source for EtcdPrefix {
    async fn snapshot(&self) -> Result<Objects> {
        let mut client = client(&self.endpoints).await?;
        let got = client
            .get(self.prefix.as_str(), Some(etcd_client::GetOptions::new().with_prefix()))
            .await
            .with_context(|| format!("reading {} from etcd", self.prefix))?;
        let mut objects = Objects::default();
        for kv in got.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let text = std::str::from_utf8(kv.value()).with_context(|| format!("etcd key {key} is not text"))?;
            for doc in parse(text).with_context(|| format!("parsing etcd key {key}"))? {
                add(&mut objects, doc).with_context(|| format!("in etcd key {key}"))?;
            }
        }
        Ok(objects)
    }
}

fn add(objects: &mut Objects, doc: Value) -> Result<()> {
    let labels = |d: &Value| -> BTreeMap<String, String> {
        d["metadata"]["labels"]
            .as_object()
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
            .unwrap_or_default()
    };
    let name = |d: &Value| d["metadata"]["name"].as_str().map(str::to_owned).context("an object without metadata.name");
    match doc["kind"].as_str() {
        Some("List") | Some("NetworkPolicyList") | Some("NamespaceList") | Some("PodList") => {
            for item in doc["items"].as_array().cloned().unwrap_or_default() {
                // Items of a typed list may leave out their kind.
                let mut item = item;
                if item.get("kind").is_none() {
                    let kind = doc["kind"].as_str().unwrap_or_default().trim_end_matches("List").to_owned();
                    item["kind"] = kind.into();
                }
                add(objects, item)?;
            }
        }
        Some("NetworkPolicy") => objects.policies.push(doc.to_string()),
        Some("Namespace") => objects.namespaces.push(Namespace { name: name(&doc)?, labels: labels(&doc) }),
        Some("Pod") => {
            let status = &doc["status"];
            let listed = status["podIPs"].as_array().into_iter().flatten().filter_map(|p| p["ip"].as_str());
            let mut ips: Vec<IpAddr> =
                listed.chain(status["podIP"].as_str()).filter_map(|ip| ip.parse().ok()).collect();
            ips.sort();
            ips.dedup();
            let namespace = doc["metadata"]["namespace"].as_str().unwrap_or("default").to_owned();
            objects.pods.push(Pod { namespace, name: name(&doc)?, labels: labels(&doc), ips });
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manifests_give_policies_namespaces_and_pods_with_their_labels_and_addresses() {
        let dir = std::env::temp_dir().join(format!("wcni-manifests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: y\n  labels:\n    ns: y\n    tier: on\n---\n\
                    apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: x\n  labels:\n    pod: a\n\
                    status:\n  podIP: 10.244.1.5\n  podIPs:\n  - ip: 10.244.1.5\n  - ip: fc00::5\n---\n\
                    apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny\n  namespace: x\n\
                    spec:\n  podSelector: {}\n";
        std::fs::write(dir.join("a.yaml"), yaml).unwrap();
        let list = r#"{"kind": "PodList", "items": [{"metadata": {"name": "b", "labels": {"pod": "b"}}}]}"#;
        std::fs::write(dir.join("b.json"), list).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a manifest").unwrap();
        let o = ManifestDir(dir.clone()).snapshot().await.unwrap();
        // Not YAML 1.1's booleans.
        let labels = [("ns".into(), "y".into()), ("tier".into(), "on".into())].into();
        assert_eq!(o.namespaces, [Namespace { name: "y".into(), labels }]);
        assert_eq!(o.pods[0].ips, ["10.244.1.5".parse::<IpAddr>().unwrap(), "fc00::5".parse().unwrap()]);
        assert_eq!((o.pods[1].namespace.as_str(), o.pods[1].name.as_str()), ("default", "b"));
        let policy: Value = serde_json::from_str(&o.policies[0]).unwrap();
        assert_eq!(policy["metadata"]["name"], "deny");
        std::fs::write(dir.join("c.yaml"), "kind: Pod\nmetadata: {}\n").unwrap();
        assert!(ManifestDir(dir.clone()).snapshot().await.unwrap_err().to_string().contains("c.yaml"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
