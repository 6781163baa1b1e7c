//! Address requests over one rtnetlink handle.

use crate::link::{Link, exists, no_such_entry};
use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::Handle;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use wasmcni_cni::error::CniError;

fn address_of(msg: &AddressMessage) -> Option<IpNet> {
    // IPv4 reports the interface address as IFA_LOCAL, IPv6 only as IFA_ADDRESS.
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let addr = local.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })?;
    IpNet::new(addr, msg.header.prefix_len).ok()
}

async fn messages(h: &Handle, link: &Link) -> Result<Vec<AddressMessage>, CniError> {
    h.address()
        .get()
        .set_link_index_filter(link.index)
        .execute()
        .try_collect()
        .await
        .map_err(|e| CniError::kernel(format!("list addresses of {}", link.name), e))
}

pub async fn list(h: &Handle, link: &Link) -> Result<Vec<IpNet>, CniError> {
    Ok(messages(h, link).await?.iter().filter_map(address_of).collect())
}

pub async fn add(h: &Handle, link: &Link, net: IpNet) -> Result<(), CniError> {
    match h.address().add(link.index, net.addr(), net.prefix_len()).execute().await {
        Ok(()) => Ok(()),
        Err(e) if exists(&e) => Ok(()),
        Err(e) => Err(CniError::kernel(format!("add {net} to {}", link.name), e)),
    }
}

pub async fn del(h: &Handle, link: &Link, net: IpNet) -> Result<(), CniError> {
    for msg in messages(h, link).await? {
        if address_of(&msg) == Some(net) {
            return match h.address().del(msg).execute().await {
                Err(e) if !no_such_entry(&e) => Err(CniError::kernel(format!("delete {net} from {}", link.name), e)),
                _ => Ok(()),
            };
        }
    }
    Ok(())
}
