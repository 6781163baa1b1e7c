//! Daemon mode: the exec'd binary as a shim, the API, hot swaps under load
//! without a lost lease, and a daemon that dies mid-call.

use serde_json::{Value, json};
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmcni_e2e::daemon::Daemon;
use wasmcni_e2e::{Lab, addr_of, module_dir, result_ips};

fn use_daemon(lab: &Lab, d: &Daemon) {
    lab.extra_env.lock().unwrap().push(("WASMCNI_DAEMON_SOCKET".into(), d.socket.display().to_string()));
}

/// The result without the parts that differ between two containers.
fn shape(r: &Value) -> Value {
    let mut r = r.clone();
    for i in r["interfaces"].as_array_mut().unwrap() {
        i["mac"] = "mac".into();
        i["name"] = i["name"].as_str().filter(|n| !n.starts_with("veth")).unwrap_or("veth").into();
        if i.get("sandbox").is_some() {
            i["sandbox"] = "ns".into();
        }
    }
    for ip in r["ips"].as_array_mut().unwrap() {
        ip["address"] = "addr".into();
    }
    r
}

#[test]
fn the_shim_forwards_add_check_del_and_results_match_one_shot() {
    let lab = Lab::new();
    let d = Daemon::start(&lab, &[]);
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");
    let conf = lab.bridge_conf("1.1.0", json!({"subnet": "10.69.0.0/24"}));

    let local = lab.container();
    let one_shot = lab.cni("ADD", &conf, "local", &local.path()).expect_ok().json();
    use_daemon(&lab, &d);
    let remote = lab.container();
    let via_daemon = lab.cni("ADD", &conf, "remote", &remote.path()).expect_ok().json();
    assert_eq!(shape(&via_daemon), shape(&one_shot));
    assert_eq!(remote.addrs("eth0"), result_ips(&via_daemon));
    assert!(remote.ping(addr_of(&result_ips(&one_shot)[0])), "containers attached both ways cannot talk");

    let mut prev = conf.clone();
    prev["prevResult"] = via_daemon.clone();
    lab.cni("CHECK", &prev, "remote", &remote.path()).expect_ok();
    let host_veth = via_daemon["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .find(|n| n.starts_with("veth"))
        .unwrap()
        .to_owned();
    assert!(lab.host.has_link(&host_veth));
    // The daemon answers a DEL once the kernel has unregistered the veth,
    // before its cleanup ends: both ends must be gone by then, and the same
    // container can come right back under the same names.
    lab.cni("DEL", &prev, "remote", &remote.path()).expect_ok();
    assert!(!remote.has_link("eth0"));
    assert!(!lab.host.has_link(&host_veth), "{host_veth} outlived the DEL");
    assert_eq!(lab.leases().len(), 1);
    let again = lab.cni("ADD", &conf, "remote", &remote.path()).expect_ok().json();
    assert!(again["interfaces"].as_array().unwrap().iter().any(|i| i["name"] == host_veth.as_str()));
    lab.cni("DEL", &conf, "remote", &remote.path()).expect_ok();
    assert!(!lab.host.has_link(&host_veth));
    // What a DEL uses to watch the kernel is closed again: ten more rounds
    // leave the daemon with no more open files than before, once the last
    // DEL's background cleanup (the kernel's RCU wait) is over.
    let open_files = || std::fs::read_dir(format!("/proc/{}/fd", d.child.id())).unwrap().count();
    let before = open_files();
    for _ in 0..10 {
        lab.cni("ADD", &conf, "remote", &remote.path()).expect_ok();
        lab.cni("DEL", &conf, "remote", &remote.path()).expect_ok();
    }
    let settled = Instant::now() + Duration::from_secs(5);
    let mut after = open_files();
    while after >= before + 3 && Instant::now() < settled {
        std::thread::sleep(Duration::from_millis(50));
        after = open_files();
    }
    assert!(after < before + 3, "the daemon held {before} files before ten ADD/DEL rounds and {after} after");

    // The daemon served those calls: its plugin table and metrics say so.
    let plugins = d.get("/v1/plugins").unwrap();
    let bridge = plugins.as_array().unwrap().iter().find(|p| p["name"] == "bridge").unwrap().clone();
    assert_eq!(bridge["calls"], 25, "{bridge}");
    assert_eq!(bridge["world"], "cni-plugin");
    assert_eq!(bridge["witVersion"], "1.2.0");
    assert_eq!(d.metric("wasmcni_requests_total{command=\"ADD\",plugin=\"bridge\",outcome=\"success\"}"), 12.0);
    let leases = d.get(&format!("/v1/networks/{}/leases", lab.network)).unwrap();
    assert_eq!(leases["leases"][0]["containerID"], "local");
    assert_eq!(d.metric(&format!("wasmcni_leases{{network=\"{}\"}}", lab.network)), 1.0);

    // Errors come back with their code, as from the binary itself.
    let bad =
        lab.cni("ADD", &json!({"cniVersion": "1.0.0", "name": "x y", "type": "wasm-bridge"}), "bad", &remote.path());
    assert_eq!(bad.code(), 7);
}

#[test]
fn a_config_can_name_the_daemon_and_fallback_decides_when_it_is_gone() {
    let lab = Lab::new();
    let mut d = Daemon::start(&lab, &[]);
    let mut conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.68.0.0/24"}));
    conf["daemon"] = json!({"socket": d.socket, "fallback": "fail"});
    let c = lab.container();
    lab.cni("ADD", &conf, "named", &c.path()).expect_ok();
    assert_eq!(d.metric("wasmcni_requests_total{command=\"ADD\""), 1.0);

    d.kill();
    let c2 = lab.container();
    let refused = lab.cni("ADD", &conf, "named-2", &c2.path());
    assert_eq!(refused.code(), 11, "{}", refused.stdout);
    assert!(!c2.has_link("eth0"));

    conf["daemon"]["fallback"] = "local".into();
    let served = lab.cni("ADD", &conf, "named-3", &c2.path());
    served.expect_ok();
    assert!(served.stderr.contains("running ADD in this process"), "{}", served.stderr);
}

#[test]
fn tcp_needs_a_token_and_refuses_requests_without_it() {
    let lab = Lab::new();
    let refused = std::process::Command::new(wasmcni_e2e::wasmcni_bin())
        .args(["daemon", "--socket", "/nonexistent/x.sock", "--tcp", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("token"), "{}", String::from_utf8_lossy(&refused.stderr));

    let token_file = lab.data_dir.join("token");
    std::fs::create_dir_all(&lab.data_dir).unwrap();
    std::fs::write(&token_file, "s3cret-token-0123456789\n").unwrap();
    let _d = Daemon::start(&lab, &["--tcp", "127.0.0.1:18765", "--token-file", token_file.to_str().unwrap()]);
    let curl = |auth: Option<&str>| {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &lab.host.name, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"]);
        if let Some(a) = auth {
            cmd.args(["-H", &format!("Authorization: Bearer {a}")]);
        }
        String::from_utf8(cmd.arg("http://127.0.0.1:18765/v1/plugins").output().unwrap().stdout).unwrap()
    };
    assert_eq!(curl(None), "401");
    assert_eq!(curl(Some("wrong-token-0123456789")), "401");
    assert_eq!(curl(Some("s3cret-token-0123456789")), "200");
}

#[test]
fn bad_requests_get_json_4xx_and_the_daemon_keeps_serving() {
    let lab = Lab::new();
    let d = Daemon::start(&lab, &[]);
    let garbage = lab.data_dir.join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm this is not a component").unwrap();
    let (status, body) = d.http("PUT", "/v1/plugins/bridge", Some(&garbage));
    assert_eq!(status, 400, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].as_str().unwrap().contains("component"));
    assert_eq!(d.metric("wasmcni_module_swaps_total{result=\"rejected\"}"), 1.0);
    // A module of the wrong kind is refused too: a network plugin as host-local.
    let (status, _) = d.http("PUT", "/v1/plugins/../x", Some(&garbage));
    assert!(status == 400 || status == 404, "{status}");

    let bad_json = lab.data_dir.join("bad.json");
    std::fs::write(&bad_json, b"{\"command\": 5}").unwrap();
    let (status, body) = d.http("POST", "/v1/cni", Some(&bad_json));
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap().get("error").is_some(), "{body}");
    let (status, _) = d.http("GET", "/v1/nothing", None);
    assert_eq!(status, 404);
    let huge = lab.data_dir.join("huge.json");
    std::fs::write(&huge, vec![b' '; 2 << 20]).unwrap();
    let (status, _) = d.http("POST", "/v1/cni", Some(&huge));
    assert_eq!(status, 413, "an oversized body was accepted");

    use_daemon(&lab, &d);
    let c = lab.container();
    lab.cni("ADD", &lab.bridge_conf("1.0.0", json!({"subnet": "10.67.0.0/24"})), "after", &c.path()).expect_ok();
    let bridge = d.get("/v1/plugins").unwrap();
    let sha = bridge.as_array().unwrap().iter().find(|p| p["name"] == "bridge").unwrap()["sha256"].clone();
    let on_disk = wasmcni_e2e::must(&["sha256sum", module_dir().join("bridge.wasm").to_str().unwrap()]);
    assert!(on_disk.starts_with(sha.as_str().unwrap()), "the rejected upload replaced the module");
}

#[test]
fn swapping_the_ipam_module_twenty_times_under_load_loses_no_lease() {
    let lab = Lab::new();
    let d = Daemon::start(&lab, &[]);
    let round_robin = module_dir().join("host-local.wasm");
    let lowest_free = module_dir().parent().unwrap().join("example-modules/lowest-free.wasm");
    std::fs::copy(&round_robin, d.module_dir.join("pod-ipam.wasm")).unwrap();
    use_daemon(&lab, &d);
    // Wait until the watcher has loaded the new file.
    while !d.get("/v1/plugins").unwrap().to_string().contains("pod-ipam") {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut conf = lab.bridge_conf("1.0.0", json!({"type": "wasmcni", "plugin": "pod-ipam", "subnet": "10.66.0.0/24"}));
    conf["ipam"]["type"] = "wasmcni".into();

    let live: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    let done = AtomicBool::new(false);
    let containers: Vec<_> = (0..4).map(|_| lab.container()).collect();
    let calls = std::thread::scope(|s| {
        let workers: Vec<_> = containers
            .iter()
            .enumerate()
            .map(|(w, c)| {
                let (lab, conf, live, done) = (&lab, &conf, &live, &done);
                s.spawn(move || {
                    let mut n = 0;
                    while !done.load(Ordering::SeqCst) || n < 4 {
                        let id = format!("load-{w}-{n}");
                        let r = lab.cni("ADD", conf, &id, &c.path()).expect_ok().json();
                        let ip = addr_of(&result_ips(&r)[0]).to_owned();
                        assert!(live.lock().unwrap().insert(ip.clone()), "{ip} handed out twice");
                        assert_eq!(lab.lease_content(&ip), format!("{id}\r\neth0"));
                        live.lock().unwrap().remove(&ip);
                        lab.cni("DEL", conf, &id, &c.path()).expect_ok();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for i in 0..20 {
            let module = if i % 2 == 0 { &lowest_free } else { &round_robin };
            let (status, body) = d.http("PUT", "/v1/plugins/pod-ipam", Some(module));
            assert_eq!(status, 200, "swap {i}: {body}");
            std::thread::sleep(std::time::Duration::from_millis(60));
        }
        done.store(true, Ordering::SeqCst);
        workers.into_iter().map(|w| w.join().unwrap()).sum::<usize>()
    });
    assert!(calls >= 16, "only {calls} ADD/DEL rounds ran");
    assert!(lab.leases().is_empty(), "leases left: {:?}", lab.leases());
    assert_eq!(d.metric("wasmcni_module_swaps_total{result=\"accepted\"}"), 20.0);

    // A lease the old module made is released by the new one.
    let c = lab.container();
    lab.cni("ADD", &conf, "across", &c.path()).expect_ok();
    d.http("PUT", "/v1/plugins/pod-ipam", Some(&lowest_free));
    lab.cni("DEL", &conf, "across", &c.path()).expect_ok();
    assert!(lab.leases().is_empty());
}

#[test]
fn a_daemon_killed_mid_add_leaves_nothing_once_del_arrives() {
    let lab = Lab::new();
    let mut d = Daemon::start(&lab, &[]);
    // The IPAM takes a real lease, then stalls: the daemon is killed meanwhile.
    let marker = slow_ipam(&lab, 3);
    use_daemon(&lab, &d);
    let conf = lab.bridge_conf("1.0.0", json!({"type": "slow-ipam", "subnet": "10.65.0.0/24"}));
    let c = lab.container();

    let out = std::thread::scope(|s| {
        let add = s.spawn(|| lab.cni("ADD", &conf, "killed", &c.path()));
        while !marker.exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(lab.leases().len(), 1, "the stalled ADD holds a lease");
        assert!(c.has_link("eth0"), "the stalled ADD made the veth");
        d.kill();
        add.join().unwrap()
    });
    assert_eq!(out.code(), 11, "{}", out.stdout);

    // The runtime's DEL finds no daemon and is served in this process.
    let del = lab.cni("DEL", &conf, "killed", &c.path());
    del.expect_ok();
    assert!(lab.leases().is_empty(), "lease left: {:?}", lab.leases());
    assert!(!c.has_link("eth0"));
    let veths = lab.host.must(&["ip", "-o", "link", "show", "type", "veth"]);
    assert!(veths.trim().is_empty(), "veth left: {veths}");
}

/// An IPAM binary wrapping the reference host-local that takes `secs` on ADD
/// after the lease is made, touching `marker` first.
fn slow_ipam(lab: &Lab, secs: u32) -> std::path::PathBuf {
    let bin = lab.data_dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let marker = lab.data_dir.join("ipam-added");
    let script = format!(
        "#!/bin/sh\nout=$(/usr/lib/cni/host-local)\nrc=$?\n[ \"$CNI_COMMAND\" = ADD ] && {{ touch {m}; sleep {secs}; }}\necho \"$out\"\nexit $rc\n",
        m = marker.display()
    );
    std::fs::write(bin.join("slow-ipam"), script).unwrap();
    std::fs::set_permissions(bin.join("slow-ipam"), std::fs::Permissions::from_mode(0o755)).unwrap();
    lab.extra_env
        .lock()
        .unwrap()
        .push(("CNI_PATH".into(), format!("{}:{}", bin.display(), wasmcni_e2e::bin_dir().display())));
    marker
}

#[test]
fn sigterm_finishes_the_call_in_flight_then_exits() {
    let lab = Lab::new();
    let mut d = Daemon::start(&lab, &[]);
    let marker = slow_ipam(&lab, 1);
    use_daemon(&lab, &d);
    let conf = lab.bridge_conf("1.0.0", json!({"type": "slow-ipam", "subnet": "10.64.0.0/24"}));
    let (c, c2) = (lab.container(), lab.container());
    let in_flight = std::thread::scope(|s| {
        let add = s.spawn(|| lab.cni("ADD", &conf, "draining", &c.path()));
        while !marker.exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        wasmcni_e2e::must(&["kill", "-TERM", &d.child.id().to_string()]);
        // Until the daemon has taken the signal: draining, or no longer listening.
        for _ in 0..100 {
            if d.get("/healthz").is_none_or(|h| h["status"] == "draining") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // A new call is refused by the daemon and served in this process.
        let late = lab.cni("ADD", &lab.bridge_conf("1.0.0", json!({"subnet": "10.64.0.0/24"})), "late", &c2.path());
        late.expect_ok();
        assert!(late.stderr.contains("in this process"), "{}", late.stderr);
        add.join().unwrap()
    });
    let result = in_flight.expect_ok().json();
    assert_eq!(c.addrs("eth0"), result_ips(&result));
    let status = d.child.wait().unwrap();
    assert!(status.success(), "daemon exit: {status}");
    assert!(!d.socket.exists(), "the socket was left behind");
}

#[test]
fn replacing_a_module_file_swaps_it_and_a_broken_file_is_rejected() {
    let lab = Lab::new();
    let d = Daemon::start(&lab, &[]);
    let sha_of = |name: &str| {
        d.get("/v1/plugins")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["sha256"].clone())
    };
    let wait_for = |what: &dyn Fn() -> bool| {
        for _ in 0..100 {
            if what() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    };
    let before = sha_of("host-local").unwrap();
    let lowest_free = module_dir().parent().unwrap().join("example-modules/lowest-free.wasm");
    let staged = d.module_dir.join("host-local.wasm.new");
    std::fs::copy(&lowest_free, &staged).unwrap();
    std::fs::rename(&staged, d.module_dir.join("host-local.wasm")).unwrap();
    assert!(wait_for(&|| sha_of("host-local") != Some(before.clone())), "the replaced file was not picked up");
    assert_eq!(d.metric("wasmcni_module_swaps_total{result=\"accepted\"}"), 1.0);
    let swapped = sha_of("host-local").unwrap();

    std::fs::write(&staged, b"not wasm at all").unwrap();
    std::fs::rename(&staged, d.module_dir.join("host-local.wasm")).unwrap();
    assert!(wait_for(&|| d.metric("wasmcni_module_swaps_total{result=\"rejected\"}") == 1.0));
    assert_eq!(sha_of("host-local").unwrap(), swapped, "a broken file replaced a working module");

    // The swapped-in policy serves: lowest free address, not round-robin.
    use_daemon(&lab, &d);
    let conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.63.0.0/24"}));
    let (a, b) = (lab.container(), lab.container());
    lab.cni("ADD", &conf, "lf-a", &a.path()).expect_ok();
    lab.cni("DEL", &conf, "lf-a", &a.path()).expect_ok();
    let r = lab.cni("ADD", &conf, "lf-b", &b.path()).expect_ok().json();
    assert_eq!(result_ips(&r), vec!["10.63.0.2/24".to_string()], "round-robin would have moved on to .3");
}
