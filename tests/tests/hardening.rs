//! Regression tests for the host's hardening fixes, one-shot mode: a pinned
//! bridge MAC, a bridge DEL that goes on past a failing step, in-process
//! masquerade under concurrency, deadlines on everything a call waits for,
//! lease directories with odd entries, artifacts bound to their module,
//! `install` onto itself, and a `wasm-*` link without `CNI_COMMAND`.

use serde_json::{Value, json};
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasmcni_e2e::{CniOut, Invoke, Lab, Netns, addr_of, cache_dir, module_dir, must, result_ips, unique, wasmcni_bin};

/// The bound for anything that used to hang forever.
const NO_HANG: Duration = Duration::from_secs(10);

fn call<'a>(command: &'a str, config: &'a Value, id: &'a str, netns: &'a str) -> Invoke<'a> {
    let plugin = config["type"].as_str().unwrap_or("wasmcni");
    Invoke { plugin, command, container_id: id, netns, ifname: "eth0", args: "", config }
}

fn gc(lab: &Lab, config: &Value) -> CniOut {
    lab.invoke_within(&Invoke { container_id: "", netns: "", ifname: "", ..call("GC", config, "", "") }, NO_HANG)
}

fn masq_conf(lab: &Lab, version: &str, subnet: &str) -> Value {
    let mut conf = lab.bridge_conf(version, json!({"subnet": subnet}));
    conf["ipMasq"] = true.into();
    conf
}

/// The host end of the container's veth, from an ADD result.
fn host_veth(result: &Value) -> String {
    result["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .find(|n| n.starts_with("veth"))
        .unwrap_or_else(|| panic!("no host veth in {result}"))
        .to_owned()
}

fn link_mac(ns: &Netns, dev: &str) -> String {
    ns.ip_json(&["link", "show", "dev", dev])[0]["address"].as_str().unwrap().to_owned()
}

fn addr_assign_type(ns: &Netns, dev: &str) -> String {
    ns.must(&["cat", &format!("/sys/class/net/{dev}/addr_assign_type")]).trim().to_owned()
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A background command in a process group of its own, killed (the whole
/// group) on drop.
struct Background(std::process::Child);

impl Background {
    fn spawn(args: &[&str]) -> Background {
        let child = Command::new(args[0])
            .args(&args[1..])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Background(child)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.wait();
    }
}

fn mkfifo(path: &Path) {
    must(&["mkfifo", path.to_str().unwrap()]);
}

// 1. The bridge's MAC is pinned.

#[test]
fn a_bridge_it_creates_has_a_pinned_mac_and_ports_leaving_lose_no_ping() {
    let lab = Lab::new();
    let conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.120.0.0/24"}));
    let cs: Vec<_> = (0..4).map(|_| lab.container()).collect();
    let results: Vec<Value> = cs
        .iter()
        .enumerate()
        .map(|(i, c)| lab.cni("ADD", &conf, &format!("mac-{i}"), &c.path()).expect_ok().json())
        .collect();
    assert_eq!(addr_assign_type(&lab.host, &lab.bridge), "3", "the bridge's MAC is not set explicitly");
    let bridge_mac = link_mac(&lab.host, &lab.bridge);
    let gateway = results[0]["ips"][0]["gateway"].as_str().unwrap_or("10.120.0.1").to_owned();
    assert_eq!(lab.host.addrs(&lab.bridge), vec![format!("{gateway}/24")]);

    // The pinger keeps the port with the highest MAC, so the lowest (which an
    // unpinned bridge would take as its own) is among those that leave.
    let macs: Vec<String> = results.iter().map(|r| link_mac(&lab.host, &host_veth(r))).collect();
    let pinger = (0..4).max_by_key(|&i| macs[i].clone()).unwrap();
    assert!(cs[pinger].ping(&gateway), "the container cannot reach its gateway");
    let ping = Command::new("ip")
        .args(["netns", "exec", &cs[pinger].name, "ping", "-i", "0.1", "-c", "40", "-W", "1", &gateway])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    for i in (0..4).filter(|&i| i != pinger) {
        lab.cni("DEL", &conf, &format!("mac-{i}"), &cs[i].path()).expect_ok();
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = ping.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" 0% packet loss"), "pings were lost while ports left the bridge:\n{text}");
    assert_eq!(link_mac(&lab.host, &lab.bridge), bridge_mac, "the bridge's MAC changed");
    lab.cni("DEL", &conf, &format!("mac-{pinger}"), &cs[pinger].path()).expect_ok();
    assert_eq!(link_mac(&lab.host, &lab.bridge), bridge_mac, "the bridge's MAC changed with no port left");
}

#[test]
fn an_existing_bridge_without_a_pinned_mac_gets_it_pinned_at_the_next_add() {
    let lab = Lab::new();
    lab.host.must(&["ip", "link", "add", &lab.bridge, "type", "bridge"]);
    assert_ne!(addr_assign_type(&lab.host, &lab.bridge), "3", "iproute2 pinned the MAC itself");
    let before = link_mac(&lab.host, &lab.bridge);
    let conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.121.0.0/24"}));
    let (a, b) = (lab.container(), lab.container());
    let ra = lab.cni("ADD", &conf, "pin-a", &a.path()).expect_ok().json();
    assert_eq!(addr_assign_type(&lab.host, &lab.bridge), "3", "the existing bridge's MAC was not pinned");
    let pinned = link_mac(&lab.host, &lab.bridge);
    assert_eq!(pinned, before, "the bridge's MAC was not kept as it was before the ADD");
    let rb = lab.cni("ADD", &conf, "pin-b", &b.path()).expect_ok().json();
    assert_ne!(host_veth(&ra), host_veth(&rb));
    lab.cni("DEL", &conf, "pin-a", &a.path()).expect_ok();
    assert_eq!(link_mac(&lab.host, &lab.bridge), pinned);
    lab.cni("DEL", &conf, "pin-b", &b.path()).expect_ok();
    assert_eq!(link_mac(&lab.host, &lab.bridge), pinned);
}

// 2. Bridge DEL: the interface first, and on past a failing step.

#[test]
fn a_bridge_del_whose_ipam_fails_still_removes_the_interfaces_and_reports_the_error() {
    let lab = Lab::new();
    let conf = masq_conf(&lab, "1.0.0", "10.122.0.0/24");
    let c = lab.container();
    let r = lab.cni("ADD", &conf, "del-order", &c.path()).expect_ok().json();
    let veth = host_veth(&r);
    assert!(lab.host.has_link(&veth) && c.has_link("eth0"));
    assert_eq!(lab.masq_elements().len(), 1);

    let mut broken = conf.clone();
    broken["ipam"]["type"] = "no-such-ipam-plugin".into();
    let del = lab.invoke_within(&call("DEL", &broken, "del-order", &c.path()), NO_HANG);
    assert!(!del.ok, "a DEL whose IPAM is missing succeeded: {}", del.stdout);
    let err = del.json();
    assert!(err["code"].as_u64().is_some_and(|c| c > 0), "not a CNI error: {}", del.stdout);
    assert!(!err["msg"].as_str().unwrap_or("").is_empty(), "{}", del.stdout);
    assert!(!c.has_link("eth0"), "the container's eth0 outlived the DEL");
    assert!(!lab.host.has_link(&veth), "the host veth {veth} outlived the DEL");
    // The step after the failed one (masquerade) ran too.
    assert!(lab.masq_elements().is_empty(), "the DEL stopped at IPAM: {:?}", lab.masq_elements());
    assert!(lab.masq_records().is_empty(), "{:?}", lab.masq_records());

    // The runtime's retry with the right config releases the lease.
    assert_eq!(lab.leases().len(), 1);
    lab.cni("DEL", &conf, "del-order", &c.path()).expect_ok();
    assert!(lab.leases().is_empty(), "{:?}", lab.leases());
}

// 3. Masquerade in-process.

#[test]
fn forty_concurrent_masquerading_adds_and_dels_leave_one_rule_and_an_empty_set() {
    let lab = Lab::new();
    let conf = masq_conf(&lab, "1.0.0", "10.123.0.0/24");
    let cs: Vec<_> = (0..40).map(|_| lab.container()).collect();
    let adds: Vec<CniOut> = std::thread::scope(|s| {
        let hs: Vec<_> = cs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (lab, conf) = (&lab, &conf);
                s.spawn(move || lab.cni("ADD", conf, &format!("masq-{i}"), &c.path()))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ips = Vec::new();
    for (i, out) in adds.iter().enumerate() {
        assert!(out.ok, "ADD {i} failed: {}\n{}", out.stdout, out.stderr);
        ips.push(addr_of(&result_ips(&out.json())[0]).to_owned());
    }
    let distinct: HashSet<_> = ips.iter().collect();
    assert_eq!(distinct.len(), 40, "duplicate addresses: {ips:?}");
    let mut sorted: Vec<String> = ips.clone();
    sorted.sort();
    assert_eq!(lab.leases(), sorted);
    assert_eq!(lab.masq_rules(), 1, "{}", lab.nft());
    assert_eq!(lab.masq_sets().len(), 1, "{}", lab.nft());
    assert_eq!(lab.masq_elements(), sorted, "the set does not hold exactly the containers' addresses");
    assert_eq!(lab.masq_records().len(), 40, "{:?}", lab.masq_records());

    let dels: Vec<CniOut> = std::thread::scope(|s| {
        let hs: Vec<_> = cs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (lab, conf) = (&lab, &conf);
                s.spawn(move || lab.cni("DEL", conf, &format!("masq-{i}"), &c.path()))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, out) in dels.iter().enumerate() {
        assert!(out.ok, "DEL {i} failed: {}\n{}", out.stdout, out.stderr);
    }
    assert!(lab.masq_elements().is_empty(), "elements left: {:?}", lab.masq_elements());
    assert_eq!(lab.masq_rules(), 1, "{}", lab.nft());
    assert!(lab.leases().is_empty(), "leases left: {:?}", lab.leases());
    assert!(lab.host_veths().is_empty(), "veths left: {:?}", lab.host_veths());
    assert!(lab.masq_records().is_empty(), "records left: {:?}", lab.masq_records());
}

#[test]
fn masquerade_identity_includes_the_ifname() {
    let lab = Lab::new();
    let conf = masq_conf(&lab, "1.0.0", "10.124.0.0/24");
    let c = lab.container();
    let on = |command: &'static str, ifname: &'static str| {
        lab.invoke_within(&Invoke { ifname, ..call(command, &conf, "twice", &c.path()) }, NO_HANG)
    };
    let eth0 = addr_of(&result_ips(&on("ADD", "eth0").expect_ok().json())[0]).to_owned();
    let net1 = addr_of(&result_ips(&on("ADD", "net1").expect_ok().json())[0]).to_owned();
    assert_ne!(eth0, net1);
    let mut both = vec![eth0.clone(), net1.clone()];
    both.sort();
    assert_eq!(lab.masq_elements(), both);

    on("DEL", "eth0").expect_ok();
    assert_eq!(lab.masq_elements(), vec![net1.clone()], "DEL of eth0 touched net1's element");
    assert_eq!(lab.leases(), vec![net1.clone()]);
    assert!(!c.has_link("eth0") && c.has_link("net1"));
    on("DEL", "net1").expect_ok();
    assert!(lab.masq_elements().is_empty(), "{:?}", lab.masq_elements());
    assert!(lab.leases().is_empty());
}

#[test]
fn masquerade_del_is_idempotent_and_works_without_the_netns() {
    let lab = Lab::new();
    let conf = masq_conf(&lab, "1.0.0", "10.125.0.0/24");
    let c = lab.container();
    lab.cni("ADD", &conf, "idem", &c.path()).expect_ok();
    lab.cni("DEL", &conf, "idem", &c.path()).expect_ok();
    lab.cni("DEL", &conf, "idem", &c.path()).expect_ok();
    assert!(lab.masq_elements().is_empty() && lab.leases().is_empty());

    let c2 = lab.container();
    let r = lab.cni("ADD", &conf, "no-netns", &c2.path()).expect_ok().json();
    let ip = addr_of(&result_ips(&r)[0]).to_owned();
    assert_eq!(lab.masq_elements(), vec![ip]);
    lab.invoke_within(&call("DEL", &conf, "no-netns", ""), NO_HANG).expect_ok();
    assert!(lab.masq_elements().is_empty(), "element left: {:?}", lab.masq_elements());
    assert!(lab.leases().is_empty(), "lease left: {:?}", lab.leases());
    assert!(lab.masq_records().is_empty(), "record left: {:?}", lab.masq_records());
    lab.invoke_within(&call("DEL", &conf, "no-netns", ""), NO_HANG).expect_ok();
    // The runtime removes the netns; the veth goes with it.
    let veth = host_veth(&r);
    drop(c2);
    assert!(lab.host.link_goes_away(&veth));
}

// 9. Deadlines.

#[test]
fn a_lease_lock_held_elsewhere_is_code_11_within_the_deadline() {
    let lab = Lab::new();
    let net_dir = lab.data_dir.join(&lab.network);
    std::fs::create_dir_all(&net_dir).unwrap();
    let lock = net_dir.join("lock");
    let lock = lock.to_str().unwrap();
    let _holder = Background::spawn(&["flock", lock, "sleep", "30"]);
    let held = (0..250).any(|_| {
        let free = Command::new("flock").args(["-n", lock, "true"]).status().unwrap().success();
        if free {
            std::thread::sleep(Duration::from_millis(20));
        }
        !free
    });
    assert!(held, "flock never took the lock");

    let mut ipam_limited = lab.bridge_conf("1.0.0", json!({"subnet": "10.126.0.0/24"}));
    ipam_limited["ipam"]["limits"] = json!({"timeoutMs": 1000});
    let mut plugin_limited = lab.bridge_conf("1.0.0", json!({"subnet": "10.126.0.0/24"}));
    plugin_limited["limits"] = json!({"timeoutMs": 1000});
    for (what, conf) in [("ipam limits", &ipam_limited), ("plugin limits", &plugin_limited)] {
        let c = lab.container();
        let start = Instant::now();
        let out = lab.invoke_within(&call("ADD", conf, "locked-out", &c.path()), NO_HANG);
        assert_eq!(out.code(), 11, "{what}: {}", out.stdout);
        assert!(start.elapsed() < NO_HANG, "{what}: took {:?}", start.elapsed());
        assert!(!c.has_link("eth0"), "{what}: the refused ADD left eth0");
        assert!(lab.host_veths().is_empty(), "{what}: veths left: {:?}", lab.host_veths());
        assert!(lab.leases().is_empty(), "{what}: leases left: {:?}", lab.leases());
    }
}

#[test]
fn a_fifo_or_a_file_as_cni_netns_is_refused_quickly_and_del_goes_on() {
    let lab = Lab::new();
    let conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.127.0.0/24"}));
    let dir = TempDir::new("wcni-fifo-");
    let fifo = dir.0.join("netns-fifo");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    let add = lab.invoke_within(&call("ADD", &conf, "fifo", fifo), NO_HANG);
    assert_eq!(add.code(), 4, "{}", add.stdout);
    lab.invoke_within(&call("DEL", &conf, "fifo", fifo), NO_HANG).expect_ok();

    let file = dir.0.join("netns-file");
    std::fs::write(&file, b"not a netns").unwrap();
    let add = lab.invoke_within(&call("ADD", &conf, "file", file.to_str().unwrap()), NO_HANG);
    assert_eq!(add.code(), 4, "{}", add.stdout);
    assert!(lab.leases().is_empty(), "{:?}", lab.leases());
    assert!(lab.host_veths().is_empty(), "{:?}", lab.host_veths());
}

#[test]
fn a_fifo_named_like_an_ip_in_the_lease_dir_blocks_nothing() {
    let lab = Lab::new();
    let conf = lab.bridge_conf("1.1.0", json!({"subnet": "10.128.0.0/24"}));
    let net_dir = lab.data_dir.join(&lab.network);
    std::fs::create_dir_all(&net_dir).unwrap();
    // The first address the range hands out.
    mkfifo(&net_dir.join("10.128.0.2"));
    let c = lab.container();
    let r = lab.invoke_within(&call("ADD", &conf, "beside-fifo", &c.path()), NO_HANG).expect_ok().json();
    let ip = addr_of(&result_ips(&r)[0]).to_owned();
    assert_ne!(ip, "10.128.0.2", "handed out the address a FIFO sits on");
    assert_eq!(lab.lease_content(&ip), "beside-fifo\r\neth0");
    lab.invoke_within(&call("DEL", &conf, "beside-fifo", &c.path()), NO_HANG).expect_ok();
    assert_eq!(lab.leases(), vec!["10.128.0.2".to_string()], "the DEL left its lease");
    let c2 = lab.container();
    lab.invoke_within(&call("ADD", &conf, "gc-me", &c2.path()), NO_HANG).expect_ok();
    gc(&lab, &conf).expect_ok();
    assert_eq!(lab.leases(), vec!["10.128.0.2".to_string()], "GC kept a lease no attachment owns");
}

// 10. Lease directory contents.

#[test]
fn a_directory_named_like_an_ip_in_the_lease_dir_breaks_nothing() {
    let lab = Lab::new();
    let conf = lab.bridge_conf(
        "1.1.0",
        json!({"subnet": "10.129.0.0/24", "rangeStart": "10.129.0.250", "rangeEnd": "10.129.0.251"}),
    );
    let net_dir = lab.data_dir.join(&lab.network);
    let squatter = net_dir.join("10.129.0.250");
    std::fs::create_dir_all(&squatter).unwrap();
    let c = lab.container();
    let r = lab.invoke_within(&call("ADD", &conf, "beside-dir", &c.path()), NO_HANG).expect_ok().json();
    assert_eq!(result_ips(&r), vec!["10.129.0.251/24".to_string()]);
    lab.invoke_within(&call("DEL", &conf, "beside-dir", &c.path()), NO_HANG).expect_ok();
    assert_eq!(lab.leases(), vec!["10.129.0.250".to_string()]);
    lab.invoke_within(&call("ADD", &conf, "gc-me", &c.path()), NO_HANG).expect_ok();
    gc(&lab, &conf).expect_ok();
    assert_eq!(lab.leases(), vec!["10.129.0.250".to_string()], "GC left a lease or removed the directory");
    assert!(squatter.is_dir());
}

#[test]
fn a_600_byte_container_id_is_leased_whole_and_released_and_leases_are_0600() {
    let lab = Lab::new();
    let conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.130.0.0/24"}));
    let id: String = (0..600).map(|i| char::from(b"0123456789abcdef"[i % 16])).collect();
    let c = lab.container();
    let r = lab.invoke_within(&call("ADD", &conf, &id, &c.path()), NO_HANG).expect_ok().json();
    let ip = addr_of(&result_ips(&r)[0]).to_owned();
    assert_eq!(lab.lease_content(&ip), format!("{id}\r\neth0"), "the lease does not hold the whole ID");
    let mode = std::fs::metadata(lab.data_dir.join(&lab.network).join(&ip)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "lease mode {mode:o}");
    lab.invoke_within(&call("DEL", &conf, &id, &c.path()), NO_HANG).expect_ok();
    assert!(lab.leases().is_empty(), "lease left: {:?}", lab.leases());
    assert!(!c.has_link("eth0"));

    // With masquerade: either it works and DEL cleans up, or the ADD is
    // refused with nothing left.
    let masq = masq_conf(&lab, "1.0.0", "10.130.0.0/24");
    let add = lab.invoke_within(&call("ADD", &masq, &id, &c.path()), NO_HANG);
    if add.ok {
        lab.invoke_within(&call("DEL", &masq, &id, &c.path()), NO_HANG).expect_ok();
    } else {
        assert!(add.json()["code"].as_u64().is_some(), "{}", add.stdout);
    }
    assert!(lab.leases().is_empty(), "lease left: {:?}", lab.leases());
    assert!(lab.masq_elements().is_empty(), "element left: {:?}", lab.masq_elements());
    assert!(lab.host_veths().is_empty(), "veth left: {:?}", lab.host_veths());
    assert!(!c.has_link("eth0"));
}

// 11. Artifacts are bound to their module.

fn sha256_of(path: &Path) -> String {
    must(&["sha256sum", path.to_str().unwrap()]).split_whitespace().next().unwrap().to_owned()
}

/// The artifact of module `sha` in `cache` (exactly one engine key expected).
fn artifact_of(cache: &Path, sha: &str) -> Option<PathBuf> {
    std::fs::read_dir(cache).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
        let name = p.file_name().unwrap().to_string_lossy();
        name.starts_with(&format!("{sha}-")) && name.ends_with(".cwasm")
    })
}

fn sum_of(artifact: &Path) -> PathBuf {
    artifact.with_extension("cwasm.sum")
}

/// The module a `.sum` file says its artifact was compiled from.
fn sum_module(artifact: &Path) -> String {
    let text = std::fs::read_to_string(sum_of(artifact)).unwrap();
    text.lines().next().unwrap().split(' ').nth(3).unwrap_or("").to_owned()
}

#[test]
fn another_modules_artifact_under_the_bridges_key_is_rebuilt_not_run() {
    let lab = Lab::new();
    let cache = lab.data_dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let precompile = |m: &str| {
        let out = Command::new(wasmcni_bin())
            .arg("precompile")
            .arg(module_dir().join(m))
            .env("WASMCNI_CACHE_DIR", &cache)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let (bridge_sha, loopback_sha, hl_sha) = (
        sha256_of(&module_dir().join("bridge.wasm")),
        sha256_of(&module_dir().join("loopback.wasm")),
        sha256_of(&module_dir().join("host-local.wasm")),
    );
    precompile("loopback.wasm");
    let loopback = artifact_of(&cache, &loopback_sha).expect("loopback artifact");
    let key =
        loopback.file_name().unwrap().to_string_lossy().trim_start_matches(&format!("{loopback_sha}-")).to_owned();
    // Bridge and host-local from the shared cache when it has them for this engine.
    for (m, sha) in [("bridge.wasm", &bridge_sha), ("host-local.wasm", &hl_sha)] {
        let shared = cache_dir().join(format!("{sha}-{key}"));
        if shared.is_file() && sum_of(&shared).is_file() {
            std::fs::copy(&shared, cache.join(format!("{sha}-{key}"))).unwrap();
            std::fs::copy(sum_of(&shared), sum_of(&cache.join(format!("{sha}-{key}")))).unwrap();
        } else {
            precompile(m);
        }
    }
    let bridge = cache.join(format!("{bridge_sha}-{key}"));
    assert_eq!(sum_module(&bridge), bridge_sha);
    let loopback_bytes = std::fs::read(&loopback).unwrap();
    lab.extra_env.lock().unwrap().extend([
        ("WASMCNI_CACHE_DIR".to_string(), cache.display().to_string()),
        ("WASMCNI_LOG".to_string(), "info".to_string()),
    ]);
    let conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.131.0.0/24"}));

    // (a) The loopback's artifact and its .sum, copied whole.
    std::fs::copy(&loopback, &bridge).unwrap();
    std::fs::copy(sum_of(&loopback), sum_of(&bridge)).unwrap();
    // (b) The loopback's artifact, with a .sum claiming it is the bridge's.
    let forged = || {
        std::fs::copy(&loopback, &bridge).unwrap();
        let text = std::fs::read_to_string(sum_of(&loopback)).unwrap();
        std::fs::write(sum_of(&bridge), text.replace(&loopback_sha, &bridge_sha)).unwrap();
    };
    for (round, setup) in [("copied", None), ("forged", Some(&forged as &dyn Fn()))] {
        if let Some(f) = setup {
            f();
        }
        let c = lab.container();
        let id = format!("cache-{round}");
        let r = lab.invoke_within(&call("ADD", &conf, &id, &c.path()), Duration::from_secs(60));
        let r = r.expect_ok().json();
        assert_eq!(c.addrs("eth0"), result_ips(&r), "{round}: the bridge did not do its work");
        assert!(lab.host.has_link(&lab.bridge), "{round}");
        lab.cni("DEL", &conf, &id, &c.path()).expect_ok();
        assert!(!c.has_link("eth0"), "{round}");
        assert_eq!(sum_module(&bridge), bridge_sha, "{round}: the entry was not rebuilt from the bridge");
        assert_ne!(std::fs::read(&bridge).unwrap(), loopback_bytes, "{round}: the loopback's artifact is still there");
    }
    assert!(lab.leases().is_empty());
}

// 12. install.

fn sizes(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
        .collect();
    v.sort();
    v
}

fn install(exe: &Path, args: &[&Path]) -> std::process::Output {
    let mut cmd = Command::new(exe);
    cmd.arg("install");
    for pair in args.chunks(2) {
        cmd.arg(pair[0]).arg(pair[1]);
    }
    cmd.env("WASMCNI_CACHE_DIR", cache_dir()).output().unwrap()
}

#[test]
fn install_onto_its_own_module_dir_keeps_the_modules_and_an_installed_binary_reinstalls() {
    let root = TempDir::new("wcni-reinstall-");
    let (bin, wasm, bin2) = (root.0.join("bin"), root.0.join("wasm"), root.0.join("bin2"));
    let (bin, wasm, bin2) = (bin.as_path(), wasm.as_path(), bin2.as_path());
    std::fs::create_dir_all(wasm).unwrap();
    for entry in std::fs::read_dir(module_dir()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, wasm.join(path.file_name().unwrap())).unwrap();
    }
    let original = sizes(wasm);
    assert!(original.iter().all(|(_, s)| *s > 0) && original.len() >= 4, "{original:?}");
    let (bd, md, from) = (Path::new("--bin-dir"), Path::new("--module-dir"), Path::new("--from"));

    let out = install(&wasmcni_bin(), &[bd, bin, md, wasm, from, wasm]);
    assert!(out.status.success(), "install --from = --module-dir: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sizes(wasm), original, "installing a module dir onto itself changed it");
    assert!(std::fs::read_link(bin.join("wasm-bridge")).is_ok());

    // The installed binary has no modules/ beside it: it reinstalls from --module-dir.
    assert!(!bin.join("modules").exists());
    std::fs::remove_file(bin.join("wasm-bridge")).unwrap();
    let out = install(&bin.join("wasmcni"), &[bd, bin, md, wasm]);
    assert!(out.status.success(), "reinstall from the bin dir: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sizes(wasm), original);
    assert_eq!(std::fs::read_link(bin.join("wasm-bridge")).unwrap(), Path::new("wasmcni"));
    let out = install(&bin.join("wasmcni"), &[bd, bin2, md, wasm]);
    assert!(out.status.success(), "install elsewhere from the bin dir: {}", String::from_utf8_lossy(&out.stderr));
    for name in ["bridge", "host-local", "loopback", "custom-route"] {
        assert!(bin2.join(format!("wasm-{name}")).exists(), "wasm-{name} missing");
    }
    assert_eq!(sizes(wasm), original);
    let version = Command::new(bin2.join("wasm-bridge")).env("CNI_COMMAND", "VERSION").output().unwrap();
    assert!(version.status.success(), "{}", String::from_utf8_lossy(&version.stderr));
}

// 13. A wasm-* link without CNI_COMMAND.

#[test]
fn a_wasm_link_without_cni_command_prints_a_cni_error_with_code_4() {
    let lab = Lab::new();
    let c = lab.container();
    let conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.132.0.0/24"}));
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.host.name])
        .arg(wasmcni_e2e::bin_dir().join("wasm-bridge"))
        .env_remove("CNI_COMMAND")
        .envs([("CNI_CONTAINERID", "no-command"), ("CNI_IFNAME", "eth0"), ("CNI_PATH", "/usr/lib/cni")])
        .env("CNI_NETNS", c.path())
        .env("WASMCNI_MODULE_DIR", module_dir())
        .env("WASMCNI_CACHE_DIR", cache_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), conf.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout:?}"));
    assert_eq!(err["code"], 4, "{stdout}");
    assert!(err["msg"].as_str().unwrap_or("").contains("CNI_COMMAND"), "{stdout}");
    assert!(!c.has_link("eth0"));
}
