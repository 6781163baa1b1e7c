//! A plugin that misbehaves on purpose, for the host's containment tests.
//! Its config's `mode` picks the misdeed.

use wasmcni_sdk::Error;
use wasmcni_sdk::cni::links::{self, VethSpec};
use wasmcni_sdk::cni::types::{Attachment, CniError, CniResult, Invocation};

struct Hostile;

#[derive(serde::Deserialize)]
struct Conf {
    mode: String,
    #[serde(default)]
    target: String,
}

fn misbehave(inv: &Invocation) -> Result<CniResult, Error> {
    let conf: Conf = wasmcni_sdk::invocation::parse_config(&inv.config)?;
    match conf.mode.as_str() {
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "trap" => panic!("deliberate trap"),
        // Create a veth (so the host has something to undo), then reach for a
        // host link this call does not own.
        "touch-host-link" => {
            links::create_veth(&VethSpec { container_ifname: inv.ifname.clone(), mtu: None, container_mac: None })?;
            if let Some(link) = links::open_host_link(&conf.target)? {
                link.set_up(false)?;
            }
            Err(Error::plugin("the host let me touch a link I do not own"))
        }
        // A veth that DEL (below) never removes: what a conformance run must catch.
        "leak" => {
            links::create_veth(&VethSpec { container_ifname: inv.ifname.clone(), mtu: None, container_mac: None })?;
            Ok(CniResult { interfaces: vec![], ips: vec![], routes: vec![], dns: None })
        }
        other => Err(Error::config(format!("unknown mode {other:?}"))),
    }
}

impl wasmcni_sdk::cni::Handler for Hostile {
    fn add(inv: Invocation) -> Result<CniResult, CniError> {
        Ok(misbehave(&inv)?)
    }
    fn del(_inv: Invocation) -> Result<(), CniError> {
        Ok(())
    }
    fn check(_inv: Invocation) -> Result<(), CniError> {
        Ok(())
    }
    fn status(_inv: Invocation) -> Result<(), CniError> {
        Ok(())
    }
    fn gc(_inv: Invocation, _valid: Vec<Attachment>) -> Result<(), CniError> {
        Ok(())
    }
}

wasmcni_sdk::export_cni_plugin!(Hostile);
