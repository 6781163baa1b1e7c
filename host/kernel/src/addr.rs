//! Addresses: the [`Addresses`] of a namespace's links, and the kernel's over rtnetlink.

use crate::link::{Link, exists, no_such_entry};
use crate::netns::Kernel;
use crate::{Error, Result};
use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::Handle;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};

/// What a namespace does with the addresses of its links.
pub trait Addresses: Send + Sync {
    /// The addresses of `link`; none for a link that is gone.
    fn addresses(&self, link: &Link) -> impl Future<Output = Result<Vec<IpNet>>> + Send;

    /// Adds `net` to `link`; one already there is not an error (a retried ADD finds its own).
    fn add_address(&self, link: &Link, net: IpNet) -> impl Future<Output = Result<()>> + Send;

    /// Removes `net` from `link`; one not there is not an error.
    fn del_address(&self, link: &Link, net: IpNet) -> impl Future<Output = Result<()>> + Send;
}

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

async fn messages(h: &Handle, link: &Link) -> Result<Vec<AddressMessage>> {
    h.address()
        .get()
        .set_link_index_filter(link.index)
        .execute()
        .try_collect()
        .await
        .map_err(|source| Error::Netlink { op: format!("list addresses of {}", link.name), source })
}

impl Addresses for Kernel {
    async fn addresses(&self, link: &Link) -> Result<Vec<IpNet>> {
        Ok(messages(self.handle().await?, link).await?.iter().filter_map(address_of).collect())
    }

    async fn add_address(&self, link: &Link, net: IpNet) -> Result<()> {
        match self.handle().await?.address().add(link.index, net.addr(), net.prefix_len()).execute().await {
            Ok(()) => Ok(()),
            Err(e) if exists(&e) => Ok(()),
            Err(source) => Err(Error::Netlink { op: format!("add {net} to {}", link.name), source }),
        }
    }

    async fn del_address(&self, link: &Link, net: IpNet) -> Result<()> {
        let h = self.handle().await?;
        for msg in messages(h, link).await? {
            if address_of(&msg) == Some(net) {
                return match h.address().del(msg).execute().await {
                    Err(source) if !no_such_entry(&source) => {
                        Err(Error::Netlink { op: format!("delete {net} from {}", link.name), source })
                    }
                    _ => Ok(()),
                };
            }
        }
        Ok(())
    }
}
