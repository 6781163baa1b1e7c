//! Regression tests for the host's hardening fixes, daemon mode: the fd and
//! call budget, idle connections, per-attachment ordering, looping modules
//! that must not starve the API, DEL/GC served with `"fallback": "fail"`, and
//! networks remembered across a restart.

use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wasmcni_e2e::daemon::Daemon;
use wasmcni_e2e::{CniOut, Invoke, Lab, addr_of, result_ips, test_module};

const NO_HANG: Duration = Duration::from_secs(10);

/// `conf` sent to the daemon at `socket`, refused (11) when it is not there.
fn via(conf: &Value, socket: &Path) -> Value {
    let mut conf = conf.clone();
    conf["daemon"] = json!({"socket": socket, "fallback": "fail"});
    conf
}

fn masq_conf(lab: &Lab, version: &str, subnet: &str) -> Value {
    let mut conf = lab.bridge_conf(version, json!({"subnet": subnet}));
    conf["ipMasq"] = true.into();
    conf
}

fn call<'a>(command: &'a str, config: &'a Value, id: &'a str, netns: &'a str) -> Invoke<'a> {
    let plugin = config["type"].as_str().unwrap_or("wasmcni");
    Invoke { plugin, command, container_id: id, netns, ifname: "eth0", args: "", config }
}

fn daemon_log(lab: &Lab) -> String {
    std::fs::read_to_string(lab.data_dir.join("daemon/daemon.log")).unwrap_or_default()
}

/// Nothing of the lab's network is left: leases, host veths, masquerade elements.
fn assert_clean(lab: &Lab, what: &str) {
    assert!(lab.leases().is_empty(), "{what}: leases left: {:?}", lab.leases());
    assert!(lab.host_veths().is_empty(), "{what}: veths left: {:?}", lab.host_veths());
    assert!(lab.masq_elements().is_empty(), "{what}: masquerade elements left: {:?}", lab.masq_elements());
}

/// An exec'd IPAM `slow-ipam` first in `CNI_PATH`: runs `prelude` (shell),
/// then the reference host-local.
fn slow_ipam(lab: &Lab, prelude: &str) {
    let bin = lab.data_dir.join("slow-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!("#!/bin/sh\n{prelude}\nexec /usr/lib/cni/host-local \"$@\"\n");
    std::fs::write(bin.join("slow-ipam"), script).unwrap();
    std::fs::set_permissions(bin.join("slow-ipam"), std::fs::Permissions::from_mode(0o755)).unwrap();
    lab.prepend_cni_path(&bin);
}

// 4. The daemon's fd budget.

#[test]
fn under_a_256_fd_limit_sixty_concurrent_adds_are_served_or_refused_with_11_and_all_dels_served() {
    let lab = Lab::new();
    let d = Daemon::start_with_nofile(&lab, &[], Some(256));
    let health = d.get("/healthz").unwrap();
    assert_eq!(health["maxCalls"], 12, "{health}");
    assert_eq!(health["callsInFlight"], 0, "{health}");
    // Each ADD holds its slot 2 s and each DEL 1 s, so calls pile up past the budget.
    slow_ipam(&lab, "case $CNI_COMMAND in ADD) sleep 2;; DEL) sleep 1;; esac");
    let mut conf = masq_conf(&lab, "1.0.0", "10.140.0.0/24");
    conf["ipam"]["type"] = "slow-ipam".into();
    let conf = via(&conf, &d.socket);
    let cs: Vec<_> = (0..60).map(|_| lab.container()).collect();
    let peak = AtomicUsize::new(0);
    let running = std::sync::atomic::AtomicBool::new(true);
    let run_all = |command: &'static str| -> Vec<CniOut> {
        std::thread::scope(|s| {
            running.store(true, Ordering::SeqCst);
            let watcher = s.spawn(|| {
                while running.load(Ordering::SeqCst) {
                    if let Some(n) = d.get("/healthz").and_then(|h| h["callsInFlight"].as_u64()) {
                        peak.fetch_max(n as usize, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
            let hs: Vec<_> = cs
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let (lab, conf) = (&lab, &conf);
                    s.spawn(move || {
                        lab.invoke_within(
                            &call(command, conf, &format!("budget-{i}"), &c.path()),
                            Duration::from_secs(60),
                        )
                    })
                })
                .collect();
            let outs = hs.into_iter().map(|h| h.join().unwrap()).collect();
            running.store(false, Ordering::SeqCst);
            watcher.join().unwrap();
            outs
        })
    };
    let adds = run_all("ADD");
    let refused = adds.iter().filter(|o| !o.ok).count();
    assert!(refused > 0, "no ADD was refused although 60 came at once for 12 slots held 2 s each");
    assert!(peak.load(Ordering::SeqCst) <= 12, "{} calls in flight, over the budget", peak.load(Ordering::SeqCst));
    let mut ips = Vec::new();
    for (i, out) in adds.iter().enumerate() {
        if out.ok {
            let ip = result_ips(&out.json())[0].clone();
            assert_eq!(cs[i].addrs("eth0"), vec![ip.clone()], "ADD {i}");
            ips.push(addr_of(&ip).to_owned());
        } else {
            assert_eq!(out.code(), 11, "ADD {i}: {}", out.stdout);
            assert!(!cs[i].has_link("eth0"), "ADD {i} was refused but left eth0");
        }
    }
    assert!(!ips.is_empty(), "no ADD was served");
    let distinct: HashSet<_> = ips.iter().collect();
    assert_eq!(distinct.len(), ips.len(), "duplicate addresses: {ips:?}");
    ips.sort();
    assert_eq!(lab.leases(), ips, "leases are not exactly those of the served ADDs");
    assert_eq!(lab.masq_elements(), ips);
    assert_eq!(lab.host_veths().len(), ips.len());

    let dels = run_all("DEL");
    for (i, out) in dels.iter().enumerate() {
        assert!(out.ok, "DEL {i}: {}\n{}", out.stdout, out.stderr);
    }
    assert_clean(&lab, "after the DELs");
    assert!(peak.load(Ordering::SeqCst) <= 12, "{} calls in flight, over the budget", peak.load(Ordering::SeqCst));
    let health = d.get("/healthz").unwrap();
    assert_eq!(health["callsInFlight"], 0, "{health}");
}

#[test]
fn a_thousand_idle_connections_do_not_block_the_daemon_and_are_closed() {
    let lab = Lab::new();
    let d = Daemon::start(&lab, &[]);
    let health = d.get("/healthz").unwrap();
    assert!(health["maxCalls"].as_u64().is_some_and(|n| n > 12), "{health}");
    let opened = Instant::now();
    let idle: Vec<UnixStream> =
        (0..1000).map(|i| UnixStream::connect(&d.socket).unwrap_or_else(|e| panic!("connection {i}: {e}"))).collect();

    let probe = Instant::now();
    let health = d.get("/healthz");
    assert!(health.is_some_and(|h| h["status"] == "ok"), "/healthz did not answer beside 1000 idle connections");
    assert!(probe.elapsed() < Duration::from_secs(2), "/healthz took {:?}", probe.elapsed());
    let conf = via(&lab.bridge_conf("1.0.0", json!({"subnet": "10.141.0.0/24"})), &d.socket);
    let c = lab.container();
    lab.invoke_within(&call("ADD", &conf, "beside-idle", &c.path()), NO_HANG).expect_ok();
    lab.invoke_within(&call("DEL", &conf, "beside-idle", &c.path()), NO_HANG).expect_ok();
    assert_clean(&lab, "ADD+DEL beside idle connections");

    // The daemon closes connections that sent no request (after ~5 s).
    let mut still_open = 0;
    for (i, mut s) in idle.into_iter().enumerate() {
        let left = Duration::from_secs(10).saturating_sub(opened.elapsed()).max(Duration::from_millis(200));
        s.set_read_timeout(Some(left)).unwrap();
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => {
                if still_open == 0 {
                    eprintln!("connection {i}: {other:?} after {:?}", opened.elapsed());
                }
                still_open += 1;
            }
        }
    }
    assert_eq!(still_open, 0, "{still_open} idle connections were still open 10 s after they were made");
    let fds = std::fs::read_dir(format!("/proc/{}/fd", d.child.id())).unwrap().count();
    assert!(fds < 200, "the daemon still holds {fds} descriptors");
}

// 5. Per-attachment ordering.

#[test]
fn a_del_after_the_runtime_killed_its_add_waits_for_it_and_leaves_nothing() {
    let lab = Lab::new();
    let d = Daemon::start(&lab, &[]);
    // It notes each call once it is done sleeping: an ADD noted after its
    // shim was killed ran on in the daemon.
    let calls = lab.data_dir.join("slow-ipam.calls");
    slow_ipam(&lab, &format!("sleep 1\necho \"$CNI_COMMAND $CNI_CONTAINERID\" >> {}", calls.display()));
    let mut conf = masq_conf(&lab, "1.0.0", "10.142.0.0/24");
    conf["ipam"]["type"] = "slow-ipam".into();
    let conf = via(&conf, &d.socket);
    let c = lab.container();
    for round in 0..5 {
        let id = format!("killed-{round}");
        let mut add = lab.spawn(&call("ADD", &conf, &id, &c.path()));
        std::thread::sleep(Duration::from_millis(300));
        add.kill().unwrap();
        let _ = add.wait();
        lab.invoke_within(&call("DEL", &conf, &id, &c.path()), Duration::from_secs(20)).expect_ok();
        std::thread::sleep(Duration::from_millis(300));
        assert!(!c.has_link("eth0"), "round {round}: eth0 outlived the DEL");
        assert_clean(&lab, &format!("round {round}"));
    }
    // Each killed ADD ran on in the daemon, and its DEL came after it.
    let want: String = (0..5).map(|r| format!("ADD killed-{r}\nDEL killed-{r}\n")).collect();
    assert_eq!(std::fs::read_to_string(&calls).unwrap_or_default(), want, "{}", daemon_log(&lab));
    // ...and is counted, though no one was left to answer.
    assert_eq!(d.metric("wasmcni_requests_total{command=\"ADD\",plugin=\"bridge\",outcome=\"success\"}"), 5.0);
}

// 6. Looping modules do not starve the daemon.

#[test]
fn sixteen_looping_calls_do_not_hold_up_healthz_or_a_normal_add() {
    let lab = Lab::new();
    let d = Daemon::start(&lab, &[]);
    let looping = via(
        &json!({
            "cniVersion": "1.0.0", "name": lab.network, "type": "wasmcni", "plugin": test_module("hostile"),
            "mode": "loop", "limits": {"timeoutMs": 4000},
        }),
        &d.socket,
    );
    let normal = via(&lab.bridge_conf("1.0.0", json!({"subnet": "10.143.0.0/24"})), &d.socket);
    let c = lab.container();
    let returned = AtomicUsize::new(0);
    let first_return: Mutex<Option<Instant>> = Mutex::new(None);
    std::thread::scope(|s| {
        let loopers: Vec<_> = (0..16)
            .map(|i| {
                let (lab, looping, c, returned, first_return) = (&lab, &looping, &c, &returned, &first_return);
                s.spawn(move || {
                    let id = format!("looper-{i}");
                    let out = lab.invoke_within(&call("ADD", looping, &id, &c.path()), Duration::from_secs(30));
                    first_return.lock().unwrap().get_or_insert_with(Instant::now);
                    returned.fetch_add(1, Ordering::SeqCst);
                    out
                })
            })
            .collect();
        // Until the daemon runs them all.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let h = d.get("/healthz");
            if h.as_ref().is_some_and(|h| h["callsInFlight"].as_u64().unwrap_or(0) >= 16) {
                break;
            }
            assert!(Instant::now() < deadline, "the 16 looping calls are not all in flight: {h:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        for probe in 0..5 {
            let start = Instant::now();
            let h = d.get("/healthz");
            assert!(h.is_some_and(|h| h["status"] == "ok"), "probe {probe}: /healthz did not answer");
            assert!(start.elapsed() < Duration::from_secs(2), "probe {probe}: /healthz took {:?}", start.elapsed());
        }
        let n = lab.container();
        let r = lab.invoke_within(&call("ADD", &normal, "normal", &n.path()), NO_HANG).expect_ok().json();
        assert_eq!(n.addrs("eth0"), result_ips(&r));
        lab.invoke_within(&call("DEL", &normal, "normal", &n.path()), NO_HANG).expect_ok();
        let done = Instant::now();
        assert_eq!(returned.load(Ordering::SeqCst), 0, "a looping call returned before the normal ADD+DEL finished");
        for (i, l) in loopers.into_iter().enumerate() {
            let out = l.join().unwrap();
            assert_eq!(out.code(), 100, "looper {i}: {}", out.stdout);
            assert!(out.json()["msg"].as_str().unwrap_or("").contains("timed out"), "looper {i}: {}", out.stdout);
        }
        assert!(first_return.lock().unwrap().unwrap() > done);
    });
    assert!(lab.leases().is_empty());
}

// 7. "fallback": "fail" does not refuse DEL or GC.

#[test]
fn with_fallback_fail_and_no_daemon_add_is_11_but_del_and_gc_are_served() {
    let lab = Lab::new();
    let socket = lab.data_dir.join("nobody-listens.sock");
    let conf = lab.bridge_conf("1.1.0", json!({"subnet": "10.144.0.0/24"}));
    let down = via(&conf, &socket);
    let (a, b, g) = (lab.container(), lab.container(), lab.container());
    let ra = lab.cni("ADD", &conf, "one-shot", &a.path()).expect_ok().json();
    let leased = addr_of(&result_ips(&ra)[0]).to_owned();

    let refused = lab.invoke_within(&call("ADD", &down, "refused", &b.path()), NO_HANG);
    assert_eq!(refused.code(), 11, "{}", refused.stdout);
    assert!(!b.has_link("eth0"), "the refused ADD created eth0");
    assert_eq!(lab.leases(), vec![leased], "the refused ADD took a lease");
    assert_eq!(lab.host_veths().len(), 1);

    let del = lab.invoke_within(&call("DEL", &down, "one-shot", &a.path()), NO_HANG);
    assert!(del.ok, "DEL with no daemon and fallback fail: {}\n{}", del.stdout, del.stderr);
    assert!(lab.leases().is_empty(), "{:?}", lab.leases());
    assert!(lab.host_veths().is_empty(), "{:?}", lab.host_veths());
    assert!(!a.has_link("eth0"));

    lab.cni("ADD", &conf, "gc-me", &g.path()).expect_ok();
    let mut gc_conf = down.clone();
    gc_conf["cni.dev/valid-attachments"] = json!([]);
    let gc =
        lab.invoke_within(&Invoke { container_id: "", netns: "", ifname: "", ..call("GC", &gc_conf, "", "") }, NO_HANG);
    assert!(gc.ok, "GC with no daemon and fallback fail: {}\n{}", gc.stdout, gc.stderr);
    assert!(lab.leases().is_empty(), "GC left {:?}", lab.leases());
}

// 8. Networks are remembered across a restart.

#[test]
fn after_a_restart_the_daemon_lists_the_leases_of_a_network_with_its_own_data_dir() {
    let lab = Lab::new();
    let conf = lab.bridge_conf("1.0.0", json!({"subnet": "10.145.0.0/24"}));
    let c = lab.container();
    {
        let d = Daemon::start(&lab, &[]);
        lab.invoke_within(&call("ADD", &via(&conf, &d.socket), "remembered", &c.path()), NO_HANG).expect_ok();
        let leases = d.get(&format!("/v1/networks/{}/leases", lab.network)).unwrap();
        assert_eq!(leases["leases"][0]["containerID"], "remembered", "{leases}");
    }
    let d = Daemon::start(&lab, &[]);
    let (status, body) = d.http("GET", &format!("/v1/networks/{}/leases", lab.network), None);
    assert_eq!(status, 200, "{body}");
    let leases: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(leases["leases"].as_array().map(Vec::len), Some(1), "{leases}");
    assert_eq!(leases["leases"][0]["containerID"], "remembered", "{leases}");
    lab.invoke_within(&call("DEL", &via(&conf, &d.socket), "remembered", &c.path()), NO_HANG).expect_ok();
    assert!(lab.leases().is_empty());
}
