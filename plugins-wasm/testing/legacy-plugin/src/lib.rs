//! A network plugin built against the frozen WIT 0.1.0 (wit/compat/0.1.0),
//! with wit-bindgen directly and no SDK, as a module built before 0.2 was.
//! The version-skew tests run it on the current host: it brings the
//! container's loopback up through netlink and delegates its IPAM section.

wit_bindgen::generate!({ world: "cni-plugin", path: "../../../wit/compat/0.1.0" });

use exports::wasmcni::plugin::handler::Guest;
use wasmcni::plugin::netlink::{self, Side};
use wasmcni::plugin::types::{Attachment, CniError, CniResult, Iface, Invocation};
use wasmcni::plugin::{delegate, log};

struct LegacyPlugin;

impl Guest for LegacyPlugin {
    fn add(inv: Invocation) -> Result<CniResult, CniError> {
        netlink::set_link_up(Side::Container, "lo", true)?;
        let lo = netlink::get_link(Side::Container, "lo")?.ok_or_else(|| CniError {
            code: 100,
            msg: "no loopback".into(),
            details: String::new(),
        })?;
        log::emit(log::Level::Info, &format!("legacy-plugin: lo is up={}", lo.up));
        let mut result = delegate::ipam_add()?;
        let sandbox = inv.netns.unwrap_or_default();
        result.interfaces = vec![Iface { name: lo.name, mac: lo.mac, mtu: Some(lo.mtu), sandbox }];
        Ok(result)
    }

    fn del(_inv: Invocation) -> Result<(), CniError> {
        delegate::ipam_del()
    }

    fn check(_inv: Invocation) -> Result<(), CniError> {
        delegate::ipam_check()
    }

    fn status(_inv: Invocation) -> Result<(), CniError> {
        delegate::ipam_status()
    }

    fn gc(_inv: Invocation, valid: Vec<Attachment>) -> Result<(), CniError> {
        delegate::ipam_gc(&valid)
    }
}

export!(LegacyPlugin);
