//! custom-route on a pod with two networks: chosen destinations and services
//! go through the chosen interface, and editing the rules file moves the
//! routes of the running container (the daemon applies the change).

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use wasmcni_e2e::daemon::Daemon;
use wasmcni_e2e::{Invoke, Lab, Netns, unique};

fn on(lab: &Lab, c: &Netns, plugin: &str, command: &str, ifname: &str, config: &Value) -> wasmcni_e2e::CniOut {
    let path = c.path();
    lab.invoke(&Invoke { plugin, command, container_id: "two-nets", netns: &path, ifname, args: "", config })
}

fn route(c: &Netns, dst: &str) -> Option<(String, String)> {
    let r = c.ip_json(&["route", "show", dst]);
    let r = r.as_array()?.first()?;
    Some((r["dev"].as_str()?.to_owned(), r["gateway"].as_str().unwrap_or("").to_owned()))
}

/// The rules document: a services map and the rules (one for an interface the pod lacks).
const RULES: &str = "services:\n  default/api: 10.96.0.10\nrules:\n- dst: 172.20.0.0/16\n  dev: net1\n- svc: default/api\n  dev: net1\n- dst: 172.21.0.0/16\n  dev: eth9\n";
const MOVED: &str = "services:\n  default/api: 10.96.0.10\nrules:\n- dst: 172.20.0.0/16\n  dev: eth0\n  via: 10.61.0.1\n- svc: default/api\n  dev: net1\n";

#[test]
fn routes_go_through_the_chosen_interface_and_follow_the_rules_file_live() {
    let lab = Lab::new();
    let state = lab.data_dir.join("state");
    lab.extra_env.lock().unwrap().push(("WASMCNI_STATE_DIR".into(), state.display().to_string()));
    let _daemon = Daemon::start(&lab, &[]);
    let c = lab.container();

    let management = lab.bridge_conf("1.0.0", json!({"subnet": "10.61.0.0/24"}));
    on(&lab, &c, "wasm-bridge", "ADD", "eth0", &management).expect_ok();
    let mut fast = lab.bridge_conf("1.0.0", json!({"subnet": "10.62.0.0/24"}));
    fast["name"] = json!(unique("fast"));
    fast["bridge"] = json!(unique("wcb"));
    let fast_result = on(&lab, &c, "wasm-bridge", "ADD", "net1", &fast).expect_ok().json();

    let rules = lab.data_dir.join("routes.yaml");
    std::fs::create_dir_all(&lab.data_dir).unwrap();
    std::fs::write(&rules, RULES).unwrap();
    let mut custom = json!({"cniVersion": "1.0.0", "name": fast["name"], "type": "wasm-custom-route",
        "rulesFile": rules, "prevResult": fast_result});
    let r = on(&lab, &c, "wasm-custom-route", "ADD", "net1", &custom).expect_ok().json();
    assert_eq!(r["ips"][0]["address"], "10.62.0.2/24", "the bridge's result passes through: {r}");
    assert_eq!(route(&c, "172.20.0.0/16"), Some(("net1".into(), "10.62.0.1".into())));
    assert_eq!(route(&c, "10.96.0.10"), Some(("net1".into(), "10.62.0.1".into())));
    assert_eq!(route(&c, "172.21.0.0/16"), None, "a rule for an interface the pod lacks was applied");

    // Edit the rules: the daemon moves the route of the running container.
    std::fs::write(&rules, MOVED).unwrap();
    let start = Instant::now();
    while route(&c, "172.20.0.0/16") != Some(("eth0".into(), "10.61.0.1".into())) {
        assert!(start.elapsed() < Duration::from_secs(15), "the route did not move: {:?}", route(&c, "172.20.0.0/16"));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(route(&c, "10.96.0.10"), Some(("net1".into(), "10.62.0.1".into())));

    // Rules that do not apply keep the routes the container has, and are reported once, not every tick.
    std::fs::write(&rules, "rules:\n- dst: 172.20.0.0/16\n  dev: eth0\n  via: not-an-address\n").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(route(&c, "172.20.0.0/16"), Some(("eth0".into(), "10.61.0.1".into())), "bad rules took the route");
    assert_eq!(route(&c, "10.96.0.10"), Some(("net1".into(), "10.62.0.1".into())), "bad rules took the route");
    let log = std::fs::read_to_string(lab.data_dir.join("daemon").join("daemon.log")).unwrap();
    assert_eq!(log.matches("applying changed rules").count(), 1, "reported other than once:\n{log}");
    std::fs::write(&rules, MOVED).unwrap();

    custom["prevResult"] = r;
    on(&lab, &c, "wasm-custom-route", "DEL", "net1", &custom).expect_ok();
    assert_eq!(route(&c, "172.20.0.0/16"), None);
    assert_eq!(route(&c, "10.96.0.10"), None);
    assert!(!records(&state, "wasm-custom-route"), "DEL left the attachment record behind");
    assert!(records(&state, "wasm-bridge"), "the bridge's ADDs were not recorded");
    on(&lab, &c, "wasm-bridge", "DEL", "net1", &fast).expect_ok();
    on(&lab, &c, "wasm-bridge", "DEL", "eth0", &management).expect_ok();
    assert!(!records(&state, "wasm-bridge"), "DEL left the attachment record behind");
}

/// Whether any attachment record of plugin `kind` is left under `state`.
fn records(state: &std::path::Path, kind: &str) -> bool {
    let networks = std::fs::read_dir(state.join("attachments")).into_iter().flatten().flatten();
    networks.flat_map(|n| std::fs::read_dir(n.path().join(kind)).into_iter().flatten().flatten()).next().is_some()
}

#[test]
fn inline_rules_can_target_a_route_table_of_their_own() {
    let lab = Lab::new();
    let c = lab.container();
    let conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.63.0.0/24"}));
    let prev = on(&lab, &c, "wasm-bridge", "ADD", "eth0", &conf).expect_ok().json();
    let custom = json!({"cniVersion": "1.0.0", "name": lab.network, "type": "wasm-custom-route", "table": 100,
        "rules": [{"dst": "172.22.0.0/16", "dev": "eth0"}], "prevResult": prev});
    on(&lab, &c, "wasm-custom-route", "ADD", "eth0", &custom).expect_ok();
    let table = c.ip_json(&["route", "show", "table", "100"]);
    let routes = table.as_array().unwrap();
    assert!(
        routes.iter().any(|r| r["dst"] == "172.22.0.0/16" && r["dev"] == "eth0" && r["gateway"] == "10.63.0.1"),
        "{table}"
    );
    assert_eq!(route(&c, "172.22.0.0/16"), None, "the main table got the route too");
    on(&lab, &c, "wasm-custom-route", "DEL", "eth0", &custom).expect_ok();
    assert!(c.ip_json(&["route", "show", "table", "100"]).as_array().unwrap().is_empty());
    on(&lab, &c, "wasm-bridge", "DEL", "eth0", &conf).expect_ok();
}
