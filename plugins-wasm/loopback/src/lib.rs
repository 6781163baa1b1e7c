//! loopback: brings `lo` up inside the container.

use wasmcni_sdk::Error;
use wasmcni_sdk::cni::netlink::{self, Side};
use wasmcni_sdk::cni::types::{Attachment, CniError, CniResult, Iface, Invocation, IpConfig};

struct Loopback;

const LO: &str = "lo";

fn need_netns(inv: &Invocation) -> Result<&str, CniError> {
    inv.netns.as_deref().ok_or_else(|| Error::new(wasmcni_sdk::Code::InvalidEnv, "CNI_NETNS is required").into())
}

impl wasmcni_sdk::cni::Handler for Loopback {
    fn add(inv: Invocation) -> Result<CniResult, CniError> {
        let netns = need_netns(&inv)?;
        netlink::set_link_up(Side::Container, LO, true)?;
        let ips = netlink::list_addresses(Side::Container, LO)?
            .into_iter()
            .map(|address| IpConfig { address, gateway: None, iface: Some(0) })
            .collect();
        Ok(CniResult {
            interfaces: vec![Iface {
                name: LO.into(),
                mac: "00:00:00:00:00:00".into(),
                mtu: None,
                sandbox: netns.into(),
            }],
            ips,
            routes: Vec::new(),
            dns: None,
        })
    }

    fn del(inv: Invocation) -> Result<(), CniError> {
        if inv.netns.is_some() {
            netlink::set_link_up(Side::Container, LO, false)?;
        }
        Ok(())
    }

    fn check(inv: Invocation) -> Result<(), CniError> {
        need_netns(&inv)?;
        match netlink::get_link(Side::Container, LO)? {
            Some(link) if link.up => Ok(()),
            _ => Err(Error::plugin("loopback interface is down").into()),
        }
    }

    fn status(_inv: Invocation) -> Result<(), CniError> {
        Ok(())
    }

    fn gc(_inv: Invocation, _valid: Vec<Attachment>) -> Result<(), CniError> {
        Ok(())
    }
}

wasmcni_sdk::export_cni_plugin!(Loopback);
