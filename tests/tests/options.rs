//! The bridge module's options, each observed in the kernel, and the
//! loopback module.

use serde_json::{Value, json};
use wasmcni_e2e::{Invoke, Lab, Netns, result_ips};

fn conf(lab: &Lab, version: &str, extra: Value, ipam: Value) -> Value {
    let mut c = lab.bridge_conf(version, ipam);
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn link(ns: &Netns, dev: &str) -> Value {
    ns.ip_json(&["-d", "link", "show", "dev", dev])[0].clone()
}

#[test]
fn mtu_mac_hairpin_and_promisc_reach_the_kernel() {
    let lab = Lab::new();
    let c = lab.container();
    let mac = "0a:58:0a:4c:00:99";
    let extra = json!({"mtu": 1400, "hairpinMode": true, "promiscMode": true, "runtimeConfig": {"mac": mac}});
    let conf = conf(&lab, "1.1.0", extra, json!({"subnet": "10.75.0.0/24"}));
    let r = lab.cni("ADD", &conf, "opts", &c.path()).expect_ok().json();

    let eth0 = link(&c, "eth0");
    assert_eq!(eth0["mtu"], 1400);
    assert_eq!(eth0["address"], mac);
    assert_eq!(r["interfaces"][2]["mac"], mac);
    assert_eq!(r["interfaces"][2]["mtu"], 1400);
    let veth = r["interfaces"][1]["name"].as_str().unwrap();
    let host_end = link(&lab.host, veth);
    assert_eq!(host_end["mtu"], 1400);
    assert_eq!(host_end["linkinfo"]["info_slave_data"]["hairpin"], true, "{host_end}");
    let bridge = link(&lab.host, &lab.bridge);
    assert!(bridge["promiscuity"].as_u64().unwrap() >= 1, "{bridge}");
}

#[test]
fn mac_from_cni_args_and_a_bad_mac_is_code_7() {
    let lab = Lab::new();
    let c = lab.container();
    let conf = conf(&lab, "1.0.0", json!({}), json!({"subnet": "10.74.0.0/24"}));
    let base = Invoke {
        plugin: "wasm-bridge",
        command: "ADD",
        container_id: "mac",
        netns: "",
        ifname: "eth0",
        args: "",
        config: &conf,
    };
    let path = c.path();
    lab.invoke(&Invoke { netns: &path, args: "MAC=0a:58:0a:4c:00:07", ..base }).expect_ok();
    assert_eq!(link(&c, "eth0")["address"], "0a:58:0a:4c:00:07");

    let c2 = lab.container();
    let path2 = c2.path();
    let bad = lab.invoke(&Invoke { netns: &path2, container_id: "mac2", args: "MAC=zz:58:0a:4c:00:07", ..base });
    assert_eq!(bad.code(), 7);
    assert!(!c2.has_link("eth0"));
}

#[test]
fn is_default_gateway_routes_everything_via_the_bridge() {
    let lab = Lab::new();
    let c = lab.container();
    let conf = conf(&lab, "1.0.0", json!({"isDefaultGateway": true}), json!({"subnet": "10.73.0.0/24"}));
    let r = lab.cni("ADD", &conf, "dgw", &c.path()).expect_ok().json();
    assert!(
        r["routes"].as_array().unwrap().iter().any(|rt| rt["dst"] == "0.0.0.0/0" && rt["gw"] == "10.73.0.1"),
        "{r}"
    );
    let routes = c.must(&["ip", "route", "show", "default"]);
    assert!(routes.contains("default via 10.73.0.1 dev eth0"), "{routes}");
}

#[test]
fn duplicate_address_detection_is_off_unless_enabledad() {
    let lab = Lab::new();
    let ipam = json!({"ranges": [[{"subnet": "fd00:72::/64"}]]});
    let dad = |c: &Netns| c.must(&["sysctl", "-n", "net.ipv6.conf.eth0.accept_dad"]).trim().to_owned();
    let off = lab.container();
    lab.cni("ADD", &conf(&lab, "1.0.0", json!({}), ipam.clone()), "dad-off", &off.path()).expect_ok();
    assert_eq!(dad(&off), "0");
    let on = lab.container();
    lab.cni("ADD", &conf(&lab, "1.0.0", json!({"enabledad": true}), ipam), "dad-on", &on.path()).expect_ok();
    assert_ne!(dad(&on), "0");
}

#[test]
fn a_link_named_like_the_bridge_that_is_not_one_is_refused() {
    let lab = Lab::new();
    let c = lab.container();
    lab.host.must(&["ip", "link", "add", &lab.bridge, "type", "veth", "peer", "name", "wcpeer0"]);
    let conf = conf(&lab, "1.0.0", json!({}), json!({"subnet": "10.71.0.0/24"}));
    let out = lab.cni("ADD", &conf, "notbr", &c.path());
    assert_eq!(out.code(), 7);
    assert!(out.json()["msg"].as_str().unwrap().contains("not a bridge"), "{}", out.stdout);
    assert!(lab.leases().is_empty());
}

#[test]
fn loopback_comes_up_checks_and_goes_down() {
    let lab = Lab::new();
    let c = Netns::new("wcl");
    let conf = json!({"cniVersion": "1.0.0", "name": lab.network, "type": "wasm-loopback"});
    let r = lab.cni("ADD", &conf, "lo", &c.path()).expect_ok().json();
    assert_eq!(r["interfaces"][0]["name"], "lo");
    assert!(result_ips(&r).contains(&"127.0.0.1/8".to_string()), "{r}");
    assert!(c.ping("127.0.0.1"));
    let mut check = conf.clone();
    check["prevResult"] = r;
    lab.cni("CHECK", &check, "lo", &c.path()).expect_ok();
    lab.cni("DEL", &check, "lo", &c.path()).expect_ok();
    assert!(!c.ping("127.0.0.1"));
    assert_eq!(lab.cni("CHECK", &check, "lo", &c.path()).code(), 100);
}
