//! `wasmcni netpol`: the first-party k8s-networkpolicy module's rules for
//! the pods of a directory of manifests, through the real binary and the
//! WIT 1.2 network-policy export.

use serde_json::{Value, json};
use wasmcni_e2e::{cache_dir, module_dir, unique, wasmcni_bin};

const MANIFESTS: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: x
  labels:
    ns: x
---
apiVersion: v1
kind: Namespace
metadata:
  name: y
  labels:
    ns: y
---
apiVersion: v1
kind: Pod
metadata:
  name: a
  namespace: x
  labels:
    pod: a
status:
  podIPs:
  - ip: 10.0.1.1
  - ip: fd00::1:1
---
apiVersion: v1
kind: Pod
metadata:
  name: b
  namespace: y
  labels:
    pod: b
status:
  podIP: 10.0.2.2
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: from-y-on-80
  namespace: x
spec:
  podSelector:
    matchLabels:
      pod: a
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          ns: y
    ports:
    - port: 80
    - protocol: UDP
      port: 5000
      endPort: 5010
";

#[test]
fn the_rules_of_a_directory_of_manifests_are_printed_per_local_pod() {
    let dir = std::env::temp_dir().join(unique("wcni-netpol-"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cluster.yaml"), MANIFESTS).unwrap();
    let out = std::process::Command::new(wasmcni_bin())
        .args(["--cache-dir", cache_dir().to_str().unwrap(), "netpol", "--module-dir"])
        .arg(module_dir())
        .arg("--manifests")
        .arg(&dir)
        .args(["--local", "x/a"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rules: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rules,
        json!([{"namespace": "x", "name": "a", "ingressIsolated": true, "egressIsolated": false,
            "ingress": [{"peers": ["10.0.2.2/32"], "ports": [
                {"protocol": "TCP", "range": [80, 80]}, {"protocol": "UDP", "range": [5000, 5010]}]}],
            "egress": []}])
    );
    // A module of another world is refused for the job, with the reason.
    let wrong = std::process::Command::new(wasmcni_bin())
        .args(["--cache-dir", cache_dir().to_str().unwrap(), "netpol", "--module", "host-gw", "--module-dir"])
        .arg(module_dir())
        .arg("--manifests")
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success() && err.contains("does not export wasmcni:plugin/network-policy"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
