//! Side by side with Debian's containernetworking-plugins: each bridge with
//! the other's host-local, sharing one lease directory, and a conflist that
//! chains wasm-bridge into the reference portmap.

use serde_json::{Value, json};
use wasmcni_e2e::{Invoke, Lab, Netns, REFERENCE_DIR, addr_of, result_ips};

fn reference(name: &str) -> String {
    format!("{REFERENCE_DIR}/{name}")
}

/// `main` ("wasm-bridge" or the reference bridge) with `ipam_type`, all on
/// one network and lease directory.
fn conf(lab: &Lab, main: &str, ipam_type: &str) -> Value {
    let mut c = lab.bridge_conf("1.0.0", json!({"type": ipam_type, "subnet": "10.70.0.0/24"}));
    c["type"] = if main == "wasm-bridge" { "wasm-bridge" } else { "bridge" }.into();
    c
}

fn run(lab: &Lab, plugin: &str, command: &str, config: &Value, id: &str, c: &Netns) -> wasmcni_e2e::CniOut {
    lab.invoke(&Invoke { plugin, command, container_id: id, netns: &c.path(), ifname: "eth0", args: "", config })
}

#[test]
fn each_host_local_reads_and_releases_the_others_leases() {
    let lab = Lab::new();
    let ref_bridge = reference("bridge");
    let ours_with_ref_ipam = conf(&lab, "wasm-bridge", "host-local");
    let ref_with_our_ipam = conf(&lab, &ref_bridge, "wasm-host-local");
    let (c1, c2, c3) = (lab.container(), lab.container(), lab.container());

    // Our bridge with the reference host-local.
    let r1 = run(&lab, "wasm-bridge", "ADD", &ours_with_ref_ipam, "mix-1", &c1).expect_ok().json();
    // The reference bridge with our host-local: it sees the reference's lease.
    let r2 = run(&lab, &ref_bridge, "ADD", &ref_with_our_ipam, "mix-2", &c2).expect_ok().json();
    // And the reference host-local sees ours.
    let r3 = run(&lab, "wasm-bridge", "ADD", &ours_with_ref_ipam, "mix-3", &c3).expect_ok().json();
    let ips: Vec<String> = [&r1, &r2, &r3].iter().map(|r| addr_of(&result_ips(r)[0]).to_owned()).collect();
    assert_eq!(ips, vec!["10.70.0.2", "10.70.0.3", "10.70.0.4"], "round-robin continued across implementations");
    assert_eq!(lab.leases().len(), 3);
    assert_eq!(lab.lease_content("10.70.0.3"), "mix-2\r\neth0");
    assert_eq!(c2.addrs("eth0"), vec![result_ips(&r2)[0].clone()]);
    assert!((0..3).any(|_| c1.ping("10.70.0.3")), "reference-attached and wasm-attached containers cannot talk");

    // Cross releases: ours frees a lease the reference wrote, and back.
    run(&lab, &ref_bridge, "DEL", &ref_with_our_ipam, "mix-1", &c1).expect_ok();
    assert_eq!(lab.leases(), vec!["10.70.0.3", "10.70.0.4"]);
    run(&lab, "wasm-bridge", "DEL", &ours_with_ref_ipam, "mix-2", &c2).expect_ok();
    assert_eq!(lab.leases(), vec!["10.70.0.4"]);
    run(&lab, "wasm-bridge", "DEL", &ours_with_ref_ipam, "mix-3", &c3).expect_ok();
    assert!(lab.leases().is_empty());
}

/// Debian's portmap 1.1.1 CHECK looks for its IPv4 DNAT chain in ip6tables
/// whenever ip6tables exists (fixed upstream later), so this lab gives the
/// plugins a PATH that holds only the IPv4 tools.
fn hide_ip6tables(lab: &Lab) {
    // Inside the lab's lease directory, so it goes when the lab does.
    let dir = lab.data_dir.join("v4path");
    std::fs::create_dir_all(&dir).unwrap();
    for tool in ["ip", "iptables", "iptables-save", "iptables-restore"] {
        let real = wasmcni_e2e::must(&["sh", "-c", &format!("command -v {tool}")]);
        std::os::unix::fs::symlink(real.trim(), dir.join(tool)).unwrap();
    }
    lab.extra_env.lock().unwrap().push(("PATH".into(), dir.display().to_string()));
}

#[test]
fn wasm_bridge_chains_into_the_reference_portmap() {
    let lab = Lab::new();
    hide_ip6tables(&lab);
    let c = lab.container();
    let portmap = reference("portmap");
    let mut bridge = lab.bridge_conf("1.0.0", json!({"subnet": "10.71.0.0/24"}));
    let mappings = json!({"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]});
    let mut pm = json!({"cniVersion": "1.0.0", "name": lab.network, "type": "portmap", "capabilities": {"portMappings": true}, "runtimeConfig": mappings});

    // ADD in order, each plugin seeing the previous result, as libcni does.
    let r1 = run(&lab, "wasm-bridge", "ADD", &bridge, "chain", &c).expect_ok().json();
    pm["prevResult"] = r1.clone();
    let r2 = run(&lab, &portmap, "ADD", &pm, "chain", &c).expect_ok().json();
    assert_eq!(result_ips(&r2), result_ips(&r1));
    let nat = lab.host.must(&["iptables-save", "-t", "nat"]);
    let ip = addr_of(&result_ips(&r1)[0]).to_owned();
    assert!(nat.contains("18080") && nat.contains(&format!("{ip}:80")), "{nat}");

    // CHECK: every plugin gets the final result.
    bridge["prevResult"] = r2.clone();
    pm["prevResult"] = r2.clone();
    run(&lab, "wasm-bridge", "CHECK", &bridge, "chain", &c).expect_ok();
    run(&lab, &portmap, "CHECK", &pm, "chain", &c).expect_ok();

    // DEL in reverse order.
    run(&lab, &portmap, "DEL", &pm, "chain", &c).expect_ok();
    run(&lab, "wasm-bridge", "DEL", &bridge, "chain", &c).expect_ok();
    let nat = lab.host.must(&["iptables-save", "-t", "nat"]);
    assert!(!nat.contains("18080"), "{nat}");
    assert!(!c.has_link("eth0"));
    assert!(lab.leases().is_empty());
}
