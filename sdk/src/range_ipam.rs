//! A complete IPAM plugin over the host's lease store, reading the
//! host-local config (ranges, routes, dns, requested IPs), with the choice of
//! the next free address left to a [`Policy`]. host-local is this with a
//! round-robin policy; another policy is a few lines:
//!
//! ```text
//! struct LowestFree;
//! impl wasmcni_sdk::range_ipam::Policy for LowestFree {
//!     fn pick(set: &RangeSet, _last: Option<IpAddr>, taken: &HashSet<IpAddr>) -> Option<IpAddr> {
//!         set.iter().find_map(|r| r.first_free(r.start, taken))
//!     }
//! }
//! type Plugin = wasmcni_sdk::range_ipam::RangeIpam<LowestFree>;
//! wasmcni_sdk::export_ipam!(Plugin);
//! ```

use crate::ip::route_to;
use crate::ipam::ipam_store::{self, Lease};
use crate::ipam::log::{self, Level};
use crate::ipam::types::{Attachment, CniError, CniResult, Dns, Invocation, IpConfig, Route};
use crate::ipam_config::{IpamConfig, RangeSet};
use crate::{Code, Error, invocation};
use ipnet::IpNet;
use std::collections::HashSet;
use std::marker::PhantomData;
use std::net::IpAddr;

/// How an IPAM plugin chooses among free addresses.
pub trait Policy: 'static {
    /// A free address of `set`, given the last one reserved in it (if any)
    /// and every address taken; never a range's gateway. `None` when full.
    fn pick(set: &RangeSet, last_reserved: Option<IpAddr>, taken: &HashSet<IpAddr>) -> Option<IpAddr>;
}

/// The IPAM plugin for policy `P`; export it with [`crate::export_ipam`].
pub struct RangeIpam<P>(PhantomData<P>);

struct Call {
    ipam: IpamConfig,
    sets: Vec<RangeSet>,
}

impl Call {
    fn parse(inv: &Invocation) -> Result<Call, Error> {
        let config: serde_json::Value = invocation::parse_config(&inv.config)?;
        let ipam = IpamConfig::from_plugin_config(&config)?;
        let sets = ipam.range_sets()?;
        Ok(Call { ipam, sets })
    }
}

fn owned_by(lease: &Lease, inv: &Invocation) -> bool {
    lease.container_id == inv.container_id && lease.ifname == inv.ifname
}

fn in_set(set: &RangeSet, ip: IpAddr) -> bool {
    set.iter().any(|r| r.contains(ip))
}

fn allocate<P: Policy>(inv: &Invocation, call: &Call) -> Result<Vec<IpConfig>, Error> {
    let mut requested: Vec<IpAddr> = inv.requested.ips.iter().map(|ip| IpAddr::from(*ip)).collect();
    let leases = ipam_store::leases()?;
    // Checked before anything is reserved: a refused ADD must not touch the
    // attachment's existing leases.
    if let Some(dup) =
        leases.iter().filter(|l| owned_by(l, inv)).find(|l| call.sets.iter().any(|set| in_set(set, l.ip.into())))
    {
        return Err(Error::plugin(format!(
            "{} has been allocated to {}/{}, duplicate allocation is not allowed",
            IpAddr::from(dup.ip),
            inv.container_id,
            inv.ifname
        )));
    }
    let taken: HashSet<IpAddr> = leases.iter().map(|l| l.ip.into()).collect();
    match reserve_all::<P>(inv, call, &taken, &mut requested) {
        Ok(ips) => Ok(ips),
        Err(e) => {
            // The attachment held nothing before: free what this call took.
            ipam_store::release_owner(&inv.container_id, &inv.ifname)?;
            Err(e)
        }
    }
}

/// One address per range set (the requested one where given).
fn reserve_all<P: Policy>(
    inv: &Invocation,
    call: &Call,
    taken: &HashSet<IpAddr>,
    requested: &mut Vec<IpAddr>,
) -> Result<Vec<IpConfig>, Error> {
    let mut ips = Vec::new();
    for (index, set) in call.sets.iter().enumerate() {
        let wanted = requested.iter().position(|ip| in_set(set, *ip)).map(|i| requested.remove(i));
        let ip = match wanted {
            Some(ip) => {
                if set.iter().any(|r| r.gateway == ip) || !reserve(inv, ip, index)? {
                    return Err(Error::plugin(format!(
                        "requested IP address {ip} is not available in range set {}",
                        describe(set)
                    )));
                }
                ip
            }
            None => {
                let last = ipam_store::last_reserved(index as u32)?.map(IpAddr::from);
                let mut skip = taken.clone();
                loop {
                    let ip = P::pick(set, last, &skip).ok_or_else(|| {
                        Error::new(
                            Code::PluginNotAvailable,
                            format!("no IP addresses available in range set: {}", describe(set)),
                        )
                    })?;
                    if reserve(inv, ip, index)? {
                        break ip;
                    }
                    skip.insert(ip);
                }
            }
        };
        let range = set.iter().find(|r| r.contains(ip)).expect("allocated inside the set");
        let address = IpNet::new(ip, range.subnet.prefix_len()).expect("the subnet's own prefix length");
        ips.push(IpConfig { address: address.into(), gateway: Some(range.gateway.into()), iface: None });
    }
    if !requested.is_empty() {
        let list: Vec<String> = requested.iter().map(IpAddr::to_string).collect();
        return Err(Error::plugin(format!("requested IPs {} were not allocated", list.join(", "))));
    }
    Ok(ips)
}

fn reserve(inv: &Invocation, ip: IpAddr, set: usize) -> Result<bool, Error> {
    Ok(ipam_store::reserve(ip.into(), &inv.container_id, &inv.ifname, set as u32)?)
}

/// Addresses as a log line lists them.
fn joined(ips: &[crate::ipam::types::IpAddress]) -> String {
    ips.iter().map(|ip| IpAddr::from(*ip).to_string()).collect::<Vec<_>>().join(",")
}

fn describe(set: &RangeSet) -> String {
    set.iter().map(|r| format!("{}-{}", r.start, r.end)).collect::<Vec<_>>().join(",")
}

fn to_result(ips: Vec<IpConfig>, ipam: &IpamConfig) -> CniResult {
    CniResult {
        interfaces: Vec::new(),
        ips,
        routes: ipam
            .routes
            .iter()
            .map(|r| Route { gw: r.gw.map(Into::into), priority: r.priority, ..route_to(r.dst) })
            .collect(),
        dns: ipam.dns.clone().map(|d| Dns {
            nameservers: d.nameservers.into_iter().map(Into::into).collect(),
            domain: d.domain,
            search: d.search,
            options: d.options,
        }),
    }
}

impl<P: Policy> crate::ipam::Handler for RangeIpam<P> {
    fn add(inv: Invocation) -> Result<CniResult, CniError> {
        let call = Call::parse(&inv)?;
        let ips = allocate::<P>(&inv, &call)?;
        let list: Vec<String> =
            ips.iter().filter_map(|i| IpNet::try_from(i.address).ok()).map(|n| n.to_string()).collect();
        log::emit(Level::Info, &format!("allocated {} to {}", list.join(","), inv.container_id));
        Ok(to_result(ips, &call.ipam))
    }

    fn del(inv: Invocation) -> Result<(), CniError> {
        // A config error must not stop a DEL from freeing what it can.
        if let Err(e) = Call::parse(&inv) {
            log::emit(Level::Warn, &format!("DEL with invalid config: {}", e.msg));
        }
        let freed = ipam_store::release_owner(&inv.container_id, &inv.ifname)?;
        if !freed.is_empty() {
            log::emit(Level::Info, &format!("released {} of {}", joined(&freed), inv.container_id));
        }
        Ok(())
    }

    fn check(inv: Invocation) -> Result<(), CniError> {
        Call::parse(&inv)?;
        if ipam_store::leases()?.iter().any(|l| owned_by(l, &inv)) {
            Ok(())
        } else {
            Err(Error::plugin(format!("host-local: failed to find address added by container {}", inv.container_id))
                .into())
        }
    }

    fn status(inv: Invocation) -> Result<(), CniError> {
        let call = Call::parse(&inv)?;
        let leases = ipam_store::leases()?;
        for set in &call.sets {
            let used = leases.iter().filter(|l| in_set(set, l.ip.into())).count();
            let capacity: u128 = set.iter().map(|r| r.capacity()).sum();
            if capacity <= used as u128 {
                return Err(Error::new(
                    Code::PluginNotAvailable,
                    format!("range set {} is exhausted ({used} leases)", describe(set)),
                )
                .into());
            }
        }
        Ok(())
    }

    fn gc(_inv: Invocation, valid: Vec<Attachment>) -> Result<(), CniError> {
        let keep: HashSet<(String, String)> = valid.into_iter().map(|a| (a.container_id, a.ifname)).collect();
        let mut owners: Vec<(String, String)> = ipam_store::leases()?
            .into_iter()
            .map(|l| (l.container_id, l.ifname))
            .filter(|o| !keep.contains(o))
            .collect();
        owners.sort();
        owners.dedup();
        for (id, ifname) in owners {
            let freed = ipam_store::release_owner(&id, &ifname)?;
            log::emit(Level::Info, &format!("gc released {} of {id}/{ifname}", joined(&freed)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::Handler;
    use crate::testing::{self, invocation, with};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// The simplest policy: the first free address.
    struct FirstFree;
    impl Policy for FirstFree {
        fn pick(set: &RangeSet, _last: Option<IpAddr>, taken: &HashSet<IpAddr>) -> Option<IpAddr> {
            set.iter().find_map(|r| r.first_free(r.start, taken))
        }
    }
    type Plugin = RangeIpam<FirstFree>;

    const CONF: &str = r#"{"ipam": {"subnet": "10.9.0.0/29", "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {"nameservers": ["10.9.0.53"]}}}"#;

    #[test]
    fn add_allocates_skipping_the_gateway_and_reports_routes_and_dns() {
        testing::reset();
        let r = Plugin::add(invocation("c1", CONF)).unwrap();
        assert_eq!(IpNet::try_from(r.ips[0].address).unwrap(), net("10.9.0.2/29"));
        assert_eq!(r.ips[0].gateway.map(IpAddr::from), Some(ip("10.9.0.1")));
        assert_eq!(IpNet::try_from(r.routes[0].dst).unwrap(), net("0.0.0.0/0"));
        let dns: Vec<IpAddr> = r.dns.unwrap().nameservers.into_iter().map(IpAddr::from).collect();
        assert_eq!(dns, [ip("10.9.0.53")]);
        assert_eq!(with(|h| h.leases.get(&ip("10.9.0.2")).cloned()), Some(("c1".into(), "eth0".into())));
    }

    #[test]
    fn a_second_add_for_the_same_attachment_is_refused_and_leaves_one_lease() {
        testing::reset();
        Plugin::add(invocation("c1", CONF)).unwrap();
        let err = Plugin::add(invocation("c1", CONF)).unwrap_err();
        assert!(err.code >= 100 && err.msg.contains("duplicate"), "{err:?}");
        assert_eq!(with(|h| h.leases.len()), 1);
    }

    #[test]
    fn requested_ips_are_honoured_or_refused() {
        testing::reset();
        let mut inv = invocation("c1", CONF);
        inv.requested.ips.push(ip("10.9.0.5").into());
        assert_eq!(IpNet::try_from(Plugin::add(inv.clone()).unwrap().ips[0].address).unwrap(), net("10.9.0.5/29"));
        inv.container_id = "c2".into();
        let err = Plugin::add(inv.clone()).unwrap_err();
        assert!(err.msg.contains("10.9.0.5"), "{err:?}");
        inv.requested.ips = vec![ip("10.9.0.1").into()];
        assert!(Plugin::add(inv).is_err(), "the gateway was handed out");
    }

    #[test]
    fn exhaustion_is_code_50_in_add_and_status() {
        testing::reset();
        for i in 0..5 {
            Plugin::add(invocation(&format!("c{i}"), CONF)).unwrap();
        }
        assert_eq!(Plugin::add(invocation("c9", CONF)).unwrap_err().code, 50);
        assert_eq!(Plugin::status(invocation("", CONF)).unwrap_err().code, 50);
        Plugin::del(invocation("c0", CONF)).unwrap();
        Plugin::status(invocation("", CONF)).unwrap();
    }

    #[test]
    fn del_is_idempotent_and_gc_keeps_only_valid_attachments() {
        testing::reset();
        for id in ["a", "b", "c"] {
            Plugin::add(invocation(id, CONF)).unwrap();
        }
        Plugin::del(invocation("a", CONF)).unwrap();
        Plugin::del(invocation("a", CONF)).unwrap();
        let keep = vec![crate::ipam::types::Attachment { container_id: "b".into(), ifname: "eth0".into() }];
        Plugin::gc(invocation("", CONF), keep).unwrap();
        let owners: Vec<String> = with(|h| h.leases.values().map(|(id, _)| id.clone()).collect());
        assert_eq!(owners, vec!["b".to_string()]);
        assert!(Plugin::check(invocation("b", CONF)).is_ok());
        assert!(Plugin::check(invocation("c", CONF)).is_err());
    }

    #[test]
    fn a_bad_config_is_code_7() {
        testing::reset();
        let err = Plugin::add(invocation("c1", r#"{"ipam": {"subnet": "10.9.0.0/33"}}"#)).unwrap_err();
        assert_eq!(err.code, 7);
        assert!(with(|h| h.leases.is_empty()));
    }
}
