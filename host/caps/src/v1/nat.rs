//! `nat`: masquerade entries owned by this (network, container, ifname).

use super::convert::net;
use super::{Res, State};
use crate::bindings::wasmcni::plugin::nat;
use crate::bindings::wasmcni::plugin::types::{IpAddress, IpPrefix};

impl nat::Host for State {
    async fn masquerade_add(&mut self, source: IpAddress, exclude: IpPrefix) -> Res<()> {
        let exclude = net(exclude)?;
        Ok(self.netlink()?.masquerade_add(source.into(), exclude)?)
    }

    async fn masquerade_del(&mut self) -> Res<()> {
        Ok(self.netlink()?.masquerade_del()?)
    }

    async fn masquerade_gc(&mut self, keep: Vec<String>) -> Res<()> {
        Ok(self.netlink()?.masquerade_gc(&keep)?)
    }
}
