//! `addresses`: the addresses of a link a handle names.

use super::convert::{family, net};
use super::{LinkHandle, Res, State};
use crate::bindings::wasmcni::plugin::addresses;
use crate::bindings::wasmcni::plugin::types::{AddressFamily, IpPrefix};
use wasmtime::component::Resource;

impl addresses::Host for State {
    async fn add_address(&mut self, link: Resource<LinkHandle>, address: IpPrefix) -> Res<()> {
        let (l, address) = (self.link(&link)?, net(address)?);
        Ok(self.netlink()?.add_address(l.side, &l.name, address).await?)
    }

    async fn del_address(&mut self, link: Resource<LinkHandle>, address: IpPrefix) -> Res<()> {
        let (l, address) = (self.link(&link)?, net(address)?);
        Ok(self.netlink()?.del_address(l.side, &l.name, address).await?)
    }

    async fn list_addresses(&mut self, link: Resource<LinkHandle>, of: Option<AddressFamily>) -> Res<Vec<IpPrefix>> {
        let l = self.link(&link)?;
        let listed = self.netlink()?.list_addresses(l.side, &l.name).await?;
        Ok(listed.into_iter().filter(|n| of.is_none_or(|f| family(&n.addr()) == f)).map(Into::into).collect())
    }
}
