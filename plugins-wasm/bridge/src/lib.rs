//! bridge: attaches the container to a Linux bridge on the host through a
//! veth pair, with addresses from its IPAM, like the reference bridge plugin.

mod add;
mod check;
mod config;
#[cfg(test)]
mod tests;

use config::BridgeConf;
use wasmcni_sdk::cni::links::{self, Link};
use wasmcni_sdk::cni::types::{Attachment, CniError, CniResult, Invocation};
use wasmcni_sdk::cni::{delegate, nat};

struct Bridge;

impl wasmcni_sdk::cni::Handler for Bridge {
    fn add(inv: Invocation) -> Result<CniResult, CniError> {
        let conf = BridgeConf::parse(&inv)?;
        Ok(add::add(&inv, &conf)?)
    }

    /// The reference order: the interface goes before its lease, so an
    /// address is never handed out again while still in use. Every step is
    /// tried even when one fails (a runtime does not retry a failed DEL),
    /// and the error names every step that failed.
    fn del(inv: Invocation) -> Result<(), CniError> {
        let conf = BridgeConf::parse(&inv)?;
        let mut failed = Vec::new();
        // Without the netns the veth went with it; only host-side state is left.
        if inv.netns.is_some() {
            failed.extend(remove_interface(&inv.ifname).err());
        }
        if conf.has_ipam() {
            failed.extend(delegate::ipam_del().err());
        }
        if conf.ip_masq {
            failed.extend(nat::masquerade_del().err());
        }
        all_done(failed)
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
            nat::masquerade_gc(&keep)?;
        }
        if conf.has_ipam() {
            delegate::ipam_gc(&valid)?;
        }
        Ok(())
    }
}

fn remove_interface(ifname: &str) -> Result<(), CniError> {
    match links::open_container_link(ifname)? {
        Some(link) => Link::delete(link),
        None => Ok(()),
    }
}

/// Ok when nothing failed; otherwise the first failure's code with every message.
fn all_done(failed: Vec<CniError>) -> Result<(), CniError> {
    let Some(first) = failed.first() else { return Ok(()) };
    let msg = failed.iter().map(|e| e.msg.as_str()).collect::<Vec<_>>().join("; ");
    Err(CniError { code: first.code, msg, details: first.details.clone() })
}

wasmcni_sdk::export_cni_plugin!(Bridge);
