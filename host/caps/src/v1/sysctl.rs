//! `sysctl`: keys from the host's allow-list, global ones by name and a
//! link's (`ipvN/conf/<link>/<key>`) through its handle.

use super::{LinkHandle, Res, State};
use crate::bindings::wasmcni::plugin::sysctl;
use crate::bindings::wasmcni::plugin::types::{AddressFamily, Side};
use wasmcni_cni::error::CniError;
use wasmcni_scope::sysctl::{global_key, link_key};
use wasmtime::component::Resource;

/// The key of `l`'s sysctl `key` of family `of`.
fn conf_key(l: &LinkHandle, of: AddressFamily, key: &str) -> Result<String, CniError> {
    link_key(matches!(of, AddressFamily::Ipv6), &l.name, key)
}

impl sysctl::Host for State {
    async fn set(&mut self, side: Side, key: String, value: String) -> Res<()> {
        global_key(&key)?;
        Ok(self.netlink()?.sysctl_set(side.into(), &key, &value)?)
    }

    async fn get(&mut self, side: Side, key: String) -> Res<String> {
        global_key(&key)?;
        Ok(self.netlink()?.sysctl_get(side.into(), &key)?)
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
