//! The CNI contract for a module that exports the handler (an IPAM or a
//! network plugin), checked the way runtimes call it: ADD, CHECK, STATUS,
//! GC, DEL, DEL again and without a netns, a container that vanished, every
//! result version, refused input with its code, concurrent calls, a call
//! killed midway, and its deadline and memory limits, each followed by a
//! look at what the node still holds.

use super::MEMORY_STEPS_MIB;
use super::lab::{Call, Lab, Netns, Reply, merge, unique};
use super::report::Report;
use anyhow::Result;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use wasmcni_cni::version::{CURRENT, SUPPORTED};
/// How many ADDs run at once in the concurrency check.
const CONCURRENT: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// An IPAM module, run as the plugin with its `ipam` section.
    Ipam,
    /// A network plugin with a bridge name and host-local IPAM to use.
    Plugin,
    /// A network plugin chained after the first-party bridge.
    Chained,
}

pub struct Subject {
    pub module: PathBuf,
    pub shape: Shape,
    /// Merged into the module's own config object.
    pub config: Map<String, Value>,
    /// Whether it runs its config's `ipam` section (imports `delegate`).
    pub delegates: bool,
}

/// What the runtime holds for one attachment.
struct Attachment {
    id: String,
    netns: Option<Netns>,
    /// The chained module's prevResult: the main plugin's ADD result.
    main_result: Option<Value>,
    result: Option<Value>,
}

impl Attachment {
    fn new(tag: &str) -> Result<Attachment> {
        Ok(Attachment { id: unique(tag), netns: Some(Netns::new("c")?), main_result: None, result: None })
    }

    fn netns_path(&self) -> String {
        self.netns.as_ref().map(Netns::path).unwrap_or_default()
    }
}

struct Suite<'a> {
    lab: &'a Lab,
    subject: &'a Subject,
    bridge: String,
}

impl Suite<'_> {
    /// The main plugin of a chained run: the first-party bridge.
    fn main_conf(&self, version: &str) -> Value {
        self.lab.bridge_conf(version, &self.bridge)
    }

    /// The module's config in `version`, with `limits` when given.
    fn conf(&self, version: &str, limits: Option<Value>) -> Value {
        let module = self.subject.module.display().to_string();
        let mut conf = match self.subject.shape {
            Shape::Ipam => {
                let mut ipam = self.lab.ipam();
                merge(&mut ipam, &self.subject.config);
                json!({"cniVersion": version, "name": self.lab.network, "type": "wasmcni", "plugin": module, "ipam": ipam})
            }
            Shape::Plugin => {
                let mut conf = self.main_conf(version);
                conf["plugin"] = module.into();
                merge(&mut conf, &self.subject.config);
                conf
            }
            Shape::Chained => {
                let mut conf =
                    json!({"cniVersion": version, "name": self.lab.network, "type": "wasmcni", "plugin": module});
                merge(&mut conf, &self.subject.config);
                conf
            }
        };
        if let Some(limits) = limits {
            conf["limits"] = limits;
        }
        conf
    }

    /// A call for attachment `a`: CNI_NETNS for the commands that take one.
    fn exec(&self, command: &str, a: &Attachment, config: &Value) -> Result<Reply> {
        let netns = if matches!(command, "ADD" | "CHECK" | "DEL") { a.netns_path() } else { String::new() };
        self.lab.exec(&call(command, &a.id, netns, &config.to_string()))
    }

    /// The module's ADD config for `a`: when chained, after the main
    /// plugin's ADD, whose result is its prevResult.
    fn add_conf(&self, a: &mut Attachment, version: &str, limits: Option<Value>) -> Result<Value> {
        let mut conf = self.conf(version, limits);
        if self.subject.shape == Shape::Chained {
            let main = self.exec("ADD", a, &self.main_conf(version))?;
            if !main.ok {
                anyhow::bail!("the bridge under the chained module failed: {}", main.failure());
            }
            a.main_result = main.json();
            conf["prevResult"] = a.main_result.clone().unwrap_or_default();
        }
        Ok(conf)
    }

    /// ADD as a runtime runs it: the main plugin first when chained.
    fn add(&self, a: &mut Attachment, version: &str, limits: Option<Value>) -> Result<Reply> {
        let conf = self.add_conf(a, version, limits)?;
        let reply = self.exec("ADD", a, &conf)?;
        a.result = if reply.ok { reply.json() } else { None };
        Ok(reply)
    }

    /// DEL as a runtime runs it: in reverse order when chained.
    fn del(&self, a: &Attachment, version: &str) -> Result<Reply> {
        let mut conf = self.conf(version, None);
        if let Some(prev) = a.result.clone().or(a.main_result.clone()) {
            conf["prevResult"] = prev;
        }
        let reply = self.exec("DEL", a, &conf)?;
        if self.subject.shape == Shape::Chained {
            let main = self.exec("DEL", a, &self.main_conf(version))?;
            if reply.ok && !main.ok {
                return Ok(main);
            }
        }
        Ok(reply)
    }

    fn with_prev(&self, a: &Attachment, version: &str) -> Value {
        let mut conf = self.conf(version, None);
        conf["prevResult"] = a.result.clone().unwrap_or_default();
        conf
    }

    fn gc(&self, version: &str, valid: &[&Attachment]) -> Result<Reply> {
        let list: Vec<Value> = valid.iter().map(|a| json!({"containerID": a.id, "ifname": "eth0"})).collect();
        let mut conf = self.conf(version, None);
        conf["cni.dev/valid-attachments"] = list.clone().into();
        let reply = self.lab.exec(&call("GC", "", String::new(), &conf.to_string()))?;
        if self.subject.shape == Shape::Chained && reply.ok {
            let mut main = self.main_conf(version);
            main["cni.dev/valid-attachments"] = list.into();
            return self.lab.exec(&call("GC", "", String::new(), &main.to_string()));
        }
        Ok(reply)
    }

    fn leases_of(&self, a: &Attachment) -> BTreeSet<String> {
        let dir = self.lab.leases_dir().join(&self.lab.network);
        self.lab
            .leases()
            .into_iter()
            .filter(|ip| std::fs::read_to_string(dir.join(ip)).is_ok_and(|c| c.lines().next() == Some(a.id.as_str())))
            .collect()
    }

    /// Whether `a` holds no lease any more.
    fn released(&self, a: &Attachment) -> Result<(), String> {
        let leases = self.leases_of(a);
        if leases.is_empty() { Ok(()) } else { Err(format!("leases kept: {leases:?}")) }
    }

    /// Whether `a` holds nothing any more: no lease, no link in its netns.
    fn cleared(&self, a: &Attachment) -> Result<String, String> {
        self.released(a)?;
        let Some(ns) = &a.netns else { return Ok(String::new()) };
        match ns.links_besides_lo() {
            Ok(links) if links.is_empty() => Ok("only lo left".into()),
            Ok(links) => Err(links.join(", ")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// What a network keeps after its last DEL (a bridge and its gateway address, say).
pub fn kept(before: &BTreeSet<String>, after: &BTreeSet<String>) -> String {
    let d = diff(before, after);
    if d.is_empty() { "nothing".into() } else { d }
}

/// One call as a runtime makes it on `eth0`, `config` as it is on stdin.
fn call<'a>(command: &'a str, container_id: &'a str, netns: String, config: &'a str) -> Call<'a> {
    Call { command, container_id, netns, ifname: "eth0", args: "", config }
}

fn ok(reply: &Reply, what: impl FnOnce() -> String) -> Result<String, String> {
    if reply.ok { Ok(what()) } else { Err(reply.failure()) }
}

/// The addresses of a result, in any version's form.
fn addresses(result: &Value) -> Vec<String> {
    let new = result["ips"].as_array().into_iter().flatten().filter_map(|ip| ip["address"].as_str());
    let old = ["ip4", "ip6"].into_iter().filter_map(|k| result[k]["ip"].as_str());
    new.chain(old).map(str::to_owned).collect()
}

/// Whether a result has the shape of `version`'s.
fn shaped(result: &Value, version: &str) -> Result<String, String> {
    if result["cniVersion"] != version {
        return Err(format!("cniVersion {} in the result", result["cniVersion"]));
    }
    let old = matches!(version, "0.1.0" | "0.2.0");
    if old && result.get("ips").is_some() || !old && (result.get("ip4").is_some() || result.get("ip6").is_some()) {
        return Err(format!("a result of the wrong version's form: {result}"));
    }
    Ok(addresses(result).join(", "))
}

/// The lines of `after` not in `before`, and those gone.
fn diff(before: &BTreeSet<String>, after: &BTreeSet<String>) -> String {
    let added: Vec<&String> = after.difference(before).collect();
    let removed: Vec<&String> = before.difference(after).collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("left: {}", added.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")));
    }
    if !removed.is_empty() {
        parts.push(format!("gone: {}", removed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")));
    }
    parts.join(" | ")
}

pub fn run(lab: &Lab, subject: &Subject, report: &mut Report) -> Result<()> {
    let s = Suite { lab, subject, bridge: unique("b") };
    let v = CURRENT;
    let version = lab.exec(&call("VERSION", "", String::new(), &s.conf(v, None).to_string()))?;
    report.check(
        "VERSION lists every spec version",
        match version.json() {
            Some(j)
                if SUPPORTED
                    .iter()
                    .all(|v| j["supportedVersions"].as_array().is_some_and(|l| l.contains(&json!(v)))) =>
            {
                Ok(j["supportedVersions"].to_string())
            }
            _ => Err(version.failure()),
        },
    );

    let before = lab.snapshot()?;
    let mut a = Attachment::new("a")?;
    let add = s.add(&mut a, v, None)?;
    report.check(
        "ADD",
        ok(&add, || {
            format!(
                "{} in {} ms",
                a.result.as_ref().map(addresses).unwrap_or_default().join(", "),
                add.took.as_millis()
            )
        }),
    );
    if !add.ok {
        // Nothing else can be judged without an attachment; DEL must still clean up.
        let del = s.del(&a, v)?;
        report.check("DEL after a failed ADD", ok(&del, String::new));
        return Ok(());
    }
    report.check("CHECK with the ADD's result", ok(&s.exec("CHECK", &a, &s.with_prev(&a, v))?, String::new));
    let status = s.exec("STATUS", &a, &s.conf(v, None))?;
    report.check("STATUS", ok(&status, String::new));
    let leased = s.leases_of(&a);
    let gc = s.gc(v, &[&a])?;
    report.check(
        "GC keeps a valid attachment",
        ok(&gc, String::new).and_then(|d| {
            if s.leases_of(&a) != leased {
                return Err(format!("its leases went from {leased:?} to {:?}", s.leases_of(&a)));
            }
            let check = s.exec("CHECK", &a, &s.with_prev(&a, v)).map_err(|e| e.to_string())?;
            if check.ok { Ok(d) } else { Err(format!("CHECK after GC: {}", check.failure())) }
        }),
    );
    let del = s.del(&a, v)?;
    report.check("DEL", ok(&del, String::new).and_then(|_| s.cleared(&a)));
    report.check("DEL again", ok(&s.del(&a, v)?, String::new));
    a.netns = None;
    report.check("DEL without CNI_NETNS", ok(&s.del(&a, v)?, String::new));
    let baseline = lab.snapshot()?;
    report.info("kept for the network after its last DEL", kept(&before, &baseline));

    let mut gone = Attachment::new("g")?;
    let add = s.add(&mut gone, v, None)?;
    gone.netns = None;
    let del = s.del(&gone, v)?;
    report.check(
        "DEL of a container whose netns is gone",
        ok(&add, String::new).and(ok(&del, String::new)).and_then(|_| s.cleared(&gone)),
    );

    let mut stale = Attachment::new("s")?;
    let add = s.add(&mut stale, v, None)?;
    let had = s.leases_of(&stale);
    let gc = s.gc(v, &[])?;
    report.check(
        "GC frees what no valid attachment owns",
        ok(&add, String::new)
            .and(ok(&gc, String::new))
            .and_then(|_| s.released(&stale))
            .map(|_| format!("{} lease(s) freed", had.len())),
    );
    s.del(&stale, v)?;

    for version in SUPPORTED {
        let mut a = Attachment::new("v")?;
        let add = s.add(&mut a, version, None)?;
        let mut result = ok(&add, String::new).and_then(|_| shaped(a.result.as_ref().unwrap_or(&Value::Null), version));
        if result.is_ok() && !matches!(*version, "0.1.0" | "0.2.0" | "0.3.0" | "0.3.1") {
            let check = s.exec("CHECK", &a, &s.with_prev(&a, version))?;
            result = result.and_then(|d| if check.ok { Ok(d) } else { Err(format!("CHECK: {}", check.failure())) });
        }
        let del = s.del(&a, version)?;
        report.check(
            format!("ADD, CHECK, DEL in {version}"),
            result.and_then(|d| if del.ok { Ok(d) } else { Err(format!("DEL: {}", del.failure())) }),
        );
    }

    refusals(&s, report)?;
    concurrent(&s, report)?;
    killed(&s, report)?;
    limits(&s, report)?;

    let after = lab.snapshot()?;
    let left = diff(&baseline, &after);
    report.check(
        "nothing left behind",
        if left.is_empty() { Ok("node as after the first DEL".into()) } else { Err(left) },
    );
    Ok(())
}

/// Bad input is refused with the spec's code before anything is created.
fn refusals(s: &Suite, report: &mut Report) -> Result<()> {
    let v = CURRENT;
    let a = Attachment::new("r")?;
    let expect = |reply: &Reply, code: u64| match reply.code() {
        Some(c) if c == code && !reply.ok => Ok(format!("code {code}")),
        _ if reply.ok => Err("accepted".to_string()),
        _ => Err(reply.failure()),
    };
    let mut unknown = s.conf(v, None);
    unknown["cniVersion"] = "99.0.0".into();
    report.check("an unknown cniVersion is code 1", expect(&s.exec("ADD", &a, &unknown)?, 1));
    let reply = s.lab.exec(&call("ADD", "", a.netns_path(), &s.conf(v, None).to_string()))?;
    report.check("ADD without CNI_CONTAINERID is code 4", expect(&reply, 4));
    let reply = s.lab.exec(&call("ADD", &a.id, a.netns_path(), "{\"cniVersion\": "))?;
    report.check("a config that is not JSON is code 6", expect(&reply, 6));
    if s.subject.shape == Shape::Ipam || s.subject.delegates {
        let mut bad = s.conf(v, None);
        bad["ipam"]["subnet"] = "not-a-subnet".into();
        let reply = s.exec("ADD", &a, &bad)?;
        let left = s.cleared(&a);
        report.check(
            "an invalid ipam subnet is code 7 and creates nothing",
            expect(&reply, 7).and_then(|d| left.map(|_| d)),
        );
    }
    Ok(())
}

/// Runtimes start many ADDs at once: each gets its own address.
fn concurrent(s: &Suite, report: &mut Report) -> Result<()> {
    let v = CURRENT;
    let mut all: Vec<Attachment> = (0..CONCURRENT).map(|_| Attachment::new("p")).collect::<Result<_>>()?;
    let replies: Vec<Result<Reply>> = std::thread::scope(|scope| {
        let jobs: Vec<_> = all.iter_mut().map(|a| scope.spawn(|| s.add(a, v, None))).collect();
        jobs.into_iter().map(|j| j.join().expect("an ADD thread")).collect()
    });
    let mut result = Ok(());
    let mut seen = BTreeSet::new();
    for (a, reply) in all.iter().zip(&replies) {
        match reply {
            Ok(r) if r.ok => {
                // Loopback addresses are the container's own, the same in every one.
                let leased = a
                    .result
                    .as_ref()
                    .map(addresses)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|ip| ip.parse::<ipnet::IpNet>().is_ok_and(|n| !n.addr().is_loopback()));
                for ip in leased {
                    if !seen.insert(ip.clone()) {
                        result = Err(format!("{ip} handed out twice"));
                    }
                }
            }
            Ok(r) => result = Err(r.failure()),
            Err(e) => result = Err(e.to_string()),
        }
    }
    for a in &all {
        let del = s.del(a, v)?;
        if !del.ok && result.is_ok() {
            result = Err(format!("DEL: {}", del.failure()));
        }
    }
    report.check(
        format!("{CONCURRENT} ADDs at once, then their DELs"),
        result.map(|_| format!("{} distinct addresses", seen.len())),
    );
    Ok(())
}

/// A runtime kills a slow plugin and runs DEL: whatever the ADD had done is undone.
fn killed(s: &Suite, report: &mut Report) -> Result<()> {
    let v = CURRENT;
    for delay in [2u64, 20] {
        let mut a = Attachment::new("k")?;
        let conf = s.add_conf(&mut a, v, None)?;
        let mut child = s.lab.spawn(&call("ADD", &a.id, a.netns_path(), &conf.to_string()))?;
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        let del = s.del(&a, v)?;
        report
            .check(format!("ADD killed after {delay} ms, then DEL"), ok(&del, String::new).and_then(|_| s.cleared(&a)));
    }
    Ok(())
}

/// Its deadline and memory limit end a call with a CNI error and leave nothing.
fn limits(s: &Suite, report: &mut Report) -> Result<()> {
    let v = CURRENT;
    let clean = |a: &Attachment, reply: &Reply| -> Result<String, String> {
        let outcome = if reply.ok {
            "completed".to_string()
        } else if reply.code().is_some() {
            reply.failure()
        } else {
            return Err(reply.failure());
        };
        let del = s.del(a, v).map_err(|e| e.to_string())?;
        ok(&del, String::new)?;
        s.cleared(a).map(|_| outcome)
    };
    let mut a = Attachment::new("t")?;
    let reply = s.add(&mut a, v, Some(json!({"timeoutMs": 1})))?;
    report.check(
        "ADD under a 1 ms deadline ends with a result or a CNI error",
        clean(&a, &reply).and_then(|d| {
            if reply.took < Duration::from_secs(2) {
                Ok(format!("{d} in {} ms", reply.took.as_millis()))
            } else {
                Err(format!("took {} ms", reply.took.as_millis()))
            }
        }),
    );

    // The smallest power-of-two memory limit an ADD fits in; below it, clean failures.
    let mut needs = None;
    let mut result = Ok(());
    for mib in MEMORY_STEPS_MIB {
        let mut a = Attachment::new("m")?;
        let reply = s.add(&mut a, v, Some(json!({"memoryMiB": mib})))?;
        match clean(&a, &reply) {
            Ok(_) if reply.ok => {
                needs = Some(mib);
                break;
            }
            Ok(_) => {}
            Err(e) => {
                result = Err(format!("under {mib} MiB: {e}"));
                break;
            }
        }
    }
    report.check(
        "memory limits end an ADD cleanly",
        result.and_then(|_| match needs {
            Some(mib) => Ok(format!("an ADD fits in {mib} MiB; under less it fails with a CNI error")),
            None => Err("no ADD fits in the default 64 MiB".into()),
        }),
    );
    Ok(())
}
