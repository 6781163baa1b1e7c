//! `sysctl`: keys from the host's allow-list, global ones by name and a
//! link's (`ipvN/conf/<link>/<key>`) through its handle.

use super::{LinkHandle, Res, State};
use crate::caps::bindings::wasmcni::plugin::sysctl;
use crate::caps::bindings::wasmcni::plugin::types::{AddressFamily, Side};
use crate::cni::error::CniError;
use wasmcni_scope::sysctl::{Key, parse_key};
use wasmtime::component::Resource;

/// A global key; a link's must go through `set-conf`/`get-conf`.
fn global(key: &str) -> Result<&str, CniError> {
    match parse_key(key)? {
        Key::Global => Ok(key),
        Key::Link(_) => {
            Err(CniError::config(format!("{key} is a link's sysctl: use set-conf/get-conf with its handle")))
        }
    }
}

/// `ipvN/conf/<link>/<key>` for the link `l`.
fn conf_key(l: &LinkHandle, of: AddressFamily, key: &str) -> Result<String, CniError> {
    if key.is_empty() || key.contains('/') {
        return Err(CniError::config(format!("invalid per-link sysctl {key:?}")));
    }
    let family = match of {
        AddressFamily::Ipv4 => "ipv4",
        AddressFamily::Ipv6 => "ipv6",
    };
    Ok(format!("{family}/conf/{}/{key}", l.name))
}

impl sysctl::Host for State {
    async fn set(&mut self, side: Side, key: String, value: String) -> Res<()> {
        Ok(self.netlink()?.sysctl_set(side.into(), global(&key)?, &value)?)
    }

    async fn get(&mut self, side: Side, key: String) -> Res<String> {
        Ok(self.netlink()?.sysctl_get(side.into(), global(&key)?)?)
    }

    async fn set_conf(&mut self, link: Resource<LinkHandle>, of: AddressFamily, key: String, value: String) -> Res<()> {
        let l = self.link(&link)?;
        let key = conf_key(&l, of, &key)?;
        Ok(self.netlink()?.sysctl_set(l.side, &key, &value)?)
    }

    async fn get_conf(&mut self, link: Resource<LinkHandle>, of: AddressFamily, key: String) -> Res<String> {
        let l = self.link(&link)?;
        let key = conf_key(&l, of, &key)?;
        Ok(self.netlink()?.sysctl_get(l.side, &key)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_s_key_goes_through_its_handle_and_is_never_a_path() {
        assert_eq!(global("ipv4/ip_forward").unwrap(), "ipv4/ip_forward");
        assert_eq!(global("ipv4/conf/eth0/arp_notify").unwrap_err().code, 7);
        assert_eq!(global("kernel/panic").unwrap_err().code, 101);
        let eth0 = LinkHandle { side: crate::caps::netlink::Side::Container, name: "eth0".into(), index: 2 };
        assert_eq!(conf_key(&eth0, AddressFamily::Ipv6, "accept_dad").unwrap(), "ipv6/conf/eth0/accept_dad");
        for bad in ["", "../../kernel/panic", "x/y"] {
            assert_eq!(conf_key(&eth0, AddressFamily::Ipv4, bad).unwrap_err().code, 7, "{bad:?}");
        }
    }
}
