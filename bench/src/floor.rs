//! The kernel floor: the netlink work of a bridge ADD/DEL done by iproute2
//! batches, one `ip` exec on each side of the veth.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasmcni_e2e::Netns;

fn batch(netns: Option<&str>, script: &str) {
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd.args(["-batch", "-"]).stdin(Stdio::piped()).spawn().expect("ip");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "ip -batch failed:\n{script}");
}

pub struct Floor {
    pub bridge: String,
}

impl Floor {
    /// A bridge with its gateway address, as the plugins leave it.
    pub fn new() -> Floor {
        let bridge = wasmcni_e2e::unique("wcbf");
        batch(
            None,
            &format!("link add {bridge} type bridge\naddr add 10.59.0.1/16 dev {bridge}\nlink set {bridge} up\n"),
        );
        Floor { bridge }
    }

    /// veth into the container, on the bridge, up; address and up inside.
    pub fn add(&self, i: usize, c: &Netns) -> Duration {
        let veth = format!("vethfl{i:06}");
        let ip = format!("10.59.{}.{}/16", 1 + (i / 250) % 250, 1 + i % 250);
        let start = Instant::now();
        batch(
            None,
            &format!(
                "link add {veth} type veth peer name eth0 netns {}\nlink set {veth} master {}\nlink set {veth} up\n",
                c.name, self.bridge
            ),
        );
        batch(Some(&c.name), &format!("addr add {ip} dev eth0\nlink set eth0 up\n"));
        start.elapsed()
    }

    pub fn del(&self, c: &Netns) -> Duration {
        let start = Instant::now();
        batch(Some(&c.name), "link del eth0\n");
        start.elapsed()
    }
}
