//! loopback: brings `lo` up inside the container.

use wasmcni_sdk::Error;
use wasmcni_sdk::cni::addresses;
use wasmcni_sdk::cni::links::{self, Link};
use wasmcni_sdk::cni::types::{Attachment, CniError, CniResult, Iface, Invocation, IpConfig};

struct Loopback;

const LO: &str = "lo";

fn need_netns(inv: &Invocation) -> Result<&str, CniError> {
    inv.netns.as_deref().ok_or_else(|| Error::new(wasmcni_sdk::Code::InvalidEnv, "CNI_NETNS is required").into())
}

fn lo() -> Result<Link, CniError> {
    links::open_container_link(LO)?.ok_or_else(|| Error::plugin("the container has no loopback interface").into())
}

impl wasmcni_sdk::cni::Handler for Loopback {
    fn add(inv: Invocation) -> Result<CniResult, CniError> {
        let netns = need_netns(&inv)?;
        let lo = lo()?;
        lo.set_up(true)?;
        let ips = addresses::list_addresses(&lo, None)?
            .into_iter()
            .map(|address| IpConfig { address, gateway: None, iface: Some(0) })
            .collect();
        Ok(CniResult {
            interfaces: vec![Iface {
                name: LO.into(),
                mac: Some((0, 0, 0, 0, 0, 0)),
                mtu: None,
                sandbox: Some(netns.into()),
            }],
            ips,
            routes: Vec::new(),
            dns: None,
        })
    }

    fn del(inv: Invocation) -> Result<(), CniError> {
        if inv.netns.is_some() {
            lo()?.set_up(false)?;
        }
        Ok(())
    }

    fn check(inv: Invocation) -> Result<(), CniError> {
        need_netns(&inv)?;
        if lo()?.info()?.up { Ok(()) } else { Err(Error::plugin("loopback interface is down").into()) }
    }

    fn status(_inv: Invocation) -> Result<(), CniError> {
        Ok(())
    }

    fn gc(_inv: Invocation, _valid: Vec<Attachment>) -> Result<(), CniError> {
        Ok(())
    }
}

wasmcni_sdk::export_cni_plugin!(Loopback);
