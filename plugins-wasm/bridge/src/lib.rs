//! bridge: attaches the container to a Linux bridge on the host through a
//! veth pair, with addresses from its IPAM, like the reference bridge plugin.

mod add;
mod check;
mod config;
#[cfg(test)]
mod tests;

use config::BridgeConf;
use wasmcni_sdk::cni::types::{Attachment, CniError, CniResult, Invocation};
use wasmcni_sdk::cni::{delegate, netlink};

struct Bridge;

impl wasmcni_sdk::cni::Handler for Bridge {
    fn add(inv: Invocation) -> Result<CniResult, CniError> {
        let conf = BridgeConf::parse(&inv)?;
        Ok(add::add(&inv, &conf)?)
    }

    fn del(inv: Invocation) -> Result<(), CniError> {
        let conf = BridgeConf::parse(&inv)?;
        if conf.has_ipam() {
            delegate::ipam_del()?;
        }
        // Without the netns the veth went with it; only host-side state is left.
        if inv.netns.is_some() && netlink::get_link(netlink::Side::Container, &inv.ifname)?.is_some() {
            netlink::delete_link(netlink::Side::Container, &inv.ifname)?;
        }
        if conf.ip_masq {
            netlink::masquerade_del()?;
        }
        Ok(())
    }

    fn check(inv: Invocation) -> Result<(), CniError> {
        let conf = BridgeConf::parse(&inv)?;
        Ok(check::check(&inv, &conf)?)
    }

    fn status(inv: Invocation) -> Result<(), CniError> {
        let conf = BridgeConf::parse(&inv)?;
        if conf.has_ipam() {
            delegate::ipam_status()?;
        }
        Ok(())
    }

    fn gc(inv: Invocation, valid: Vec<Attachment>) -> Result<(), CniError> {
        let conf = BridgeConf::parse(&inv)?;
        if conf.ip_masq {
            let keep: Vec<String> = valid.iter().map(|a| a.container_id.clone()).collect();
            netlink::masquerade_gc(&keep)?;
        }
        if conf.has_ipam() {
            delegate::ipam_gc(&valid)?;
        }
        Ok(())
    }
}

wasmcni_sdk::export_cni_plugin!(Bridge);
