//! `routes`: routes through a link a handle names, or in the container netns
//! without a device. Host-side routes pass `host_route_allowed` in `NetlinkCap`.

use super::convert::{family, route};
use super::{LinkHandle, Res, State};
use crate::bindings::wasmcni::plugin::routes::{self, RouteDev, RouteInfo};
use crate::bindings::wasmcni::plugin::types::{AddressFamily, Route};
use crate::netlink::{RouteOp, RouteView, Side};
use wasmcni_cni::error::CniError;
use wasmtime::component::Resource;

impl State {
    async fn change_route(&mut self, dev: RouteDev, r: Route, op: RouteOp) -> Result<(), CniError> {
        let r = route(r)?;
        let (side, name) = match dev {
            RouteDev::Link(link) => {
                let l = self.link(&link)?;
                (l.side, Some(l.name))
            }
            RouteDev::Container => (Side::Container, None),
        };
        self.netlink()?.change_route(side, name.as_deref(), &r, op).await
    }

    async fn listed(&mut self, side: Side, dev: Option<&str>, of: Option<AddressFamily>) -> Res<Vec<RouteInfo>> {
        let listed = self.netlink()?.list_routes(side, dev).await?;
        Ok(listed
            .into_iter()
            .filter(|v| of.is_none_or(|f| family(&v.route.dst.addr()) == f))
            .map(|RouteView { route, dev }| RouteInfo { family: family(&route.dst.addr()), route: route.into(), dev })
            .collect())
    }
}

impl routes::Host for State {
    async fn add_route(&mut self, dev: RouteDev, route: Route) -> Res<()> {
        Ok(self.change_route(dev, route, RouteOp::Add).await?)
    }

    async fn replace_route(&mut self, dev: RouteDev, route: Route) -> Res<()> {
        Ok(self.change_route(dev, route, RouteOp::Replace).await?)
    }

    async fn del_route(&mut self, dev: RouteDev, route: Route) -> Res<()> {
        Ok(self.change_route(dev, route, RouteOp::Delete).await?)
    }

    async fn list_routes(&mut self, link: Resource<LinkHandle>, of: Option<AddressFamily>) -> Res<Vec<RouteInfo>> {
        let l = self.link(&link)?;
        self.listed(l.side, Some(&l.name), of).await
    }

    async fn list_container_routes(&mut self, of: Option<AddressFamily>) -> Res<Vec<RouteInfo>> {
        self.listed(Side::Container, None, of).await
    }
}
