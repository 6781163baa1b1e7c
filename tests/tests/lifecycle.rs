//! ADD / CHECK / DEL through the bridge and host-local modules, for every
//! result version a runtime may ask for.

use serde_json::{Value, json};
use wasmcni_e2e::{Lab, addr_of, result_ips};

fn ipam() -> Value {
    json!({"subnet": "10.77.0.0/24", "routes": [{"dst": "192.0.2.0/24"}]})
}

/// Puts `result` in the config as prevResult, the way libcni does for CHECK/DEL.
fn with_prev(conf: &Value, result: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = result.clone();
    c
}

fn lifecycle(version: &str) {
    let lab = Lab::new();
    let c = lab.container();
    let conf = lab.bridge_conf(version, ipam());
    let id = format!("ctr-{}", version.replace('.', ""));

    let result = lab.cni("ADD", &conf, &id, &c.path()).expect_ok().json();
    assert_eq!(result["cniVersion"], version);
    let ips = result_ips(&result);
    assert_eq!(ips.len(), 1, "{result}");
    let ip = &ips[0];
    if version != "1.0.0" && version != "1.1.0" {
        assert_eq!(result["ips"][0]["version"], "4");
    }
    // The result describes what is really there.
    assert_eq!(c.addrs("eth0"), vec![ip.clone()]);
    let ifaces = result["interfaces"].as_array().unwrap();
    assert_eq!(ifaces.len(), 3);
    assert_eq!(ifaces[0]["name"], lab.bridge.as_str());
    let host_veth = ifaces[1]["name"].as_str().unwrap();
    assert!(lab.host.has_link(host_veth));
    assert_eq!(ifaces[2]["sandbox"], c.path());
    let link = c.ip_json(&["link", "show", "dev", "eth0"]);
    assert_eq!(link[0]["address"], ifaces[2]["mac"]);
    let master = lab.host.ip_json(&["link", "show", "dev", host_veth]);
    assert_eq!(master[0]["master"], lab.bridge.as_str());
    let routes = c.must(&["ip", "route"]);
    assert!(routes.contains("192.0.2.0/24 via 10.77.0.1"), "{routes}");
    assert_eq!(lab.host.addrs(&lab.bridge), vec!["10.77.0.1/24".to_string()]);
    assert_eq!(lab.leases(), vec![addr_of(ip).to_string()]);
    assert_eq!(lab.lease_content(addr_of(ip)), format!("{id}\r\neth0"));

    let prev = with_prev(&conf, &result);
    if version != "0.3.1" {
        lab.cni("CHECK", &prev, &id, &c.path()).expect_ok();
        c.must(&["ip", "addr", "del", ip, "dev", "eth0"]);
        let failed = lab.cni("CHECK", &prev, &id, &c.path());
        assert!(failed.code() >= 100, "{failed:?}");
        assert!(failed.json()["msg"].as_str().unwrap().contains(ip.as_str()), "{}", failed.stdout);
    } else {
        assert_eq!(lab.cni("CHECK", &prev, &id, &c.path()).code(), 1);
    }

    lab.cni("DEL", &prev, &id, &c.path()).expect_ok();
    assert!(!c.has_link("eth0"));
    assert!(!lab.host.has_link(host_veth));
    assert!(lab.leases().is_empty());
    // DEL is idempotent.
    lab.cni("DEL", &prev, &id, &c.path()).expect_ok();
}

#[test]
fn lifecycle_0_3_1() {
    lifecycle("0.3.1");
}

#[test]
fn lifecycle_0_4_0() {
    lifecycle("0.4.0");
}

#[test]
fn lifecycle_1_0_0() {
    lifecycle("1.0.0");
}

#[test]
fn lifecycle_1_1_0() {
    lifecycle("1.1.0");
}

#[test]
fn result_in_0_2_0_form() {
    let lab = Lab::new();
    let c = lab.container();
    let conf = lab.bridge_conf("0.2.0", json!({"subnet": "10.78.0.0/24", "gateway": "10.78.0.1"}));
    let result = lab.cni("ADD", &conf, "legacy", &c.path()).expect_ok().json();
    assert_eq!(result["cniVersion"], "0.2.0");
    assert!(result.get("ips").is_none() && result.get("interfaces").is_none(), "{result}");
    let ip = result["ip4"]["ip"].as_str().unwrap();
    assert_eq!(result["ip4"]["gateway"], "10.78.0.1");
    assert_eq!(c.addrs("eth0"), vec![ip.to_string()]);
    lab.cni("DEL", &conf, "legacy", &c.path()).expect_ok();
    assert!(lab.leases().is_empty());
}

#[test]
fn del_without_netns_or_with_netns_gone_frees_the_lease() {
    let lab = Lab::new();
    let conf = lab.bridge_conf("1.0.0", ipam());

    let c1 = lab.container();
    let r1 = lab.cni("ADD", &conf, "gone-1", &c1.path()).expect_ok().json();
    let veth1 = r1["interfaces"][1]["name"].as_str().unwrap().to_owned();
    lab.cni("DEL", &conf, "gone-1", "").expect_ok();
    assert!(lab.leases().is_empty());
    drop(c1);
    assert!(lab.host.link_goes_away(&veth1));

    let c2 = lab.container();
    let path = c2.path();
    lab.cni("ADD", &conf, "gone-2", &path).expect_ok();
    assert_eq!(lab.leases().len(), 1);
    drop(c2);
    lab.cni("DEL", &conf, "gone-2", &path).expect_ok();
    assert!(lab.leases().is_empty());
    lab.cni("DEL", &conf, "gone-2", &path).expect_ok();
}
