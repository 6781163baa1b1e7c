//! The host-local IPAM config (`ranges` or the legacy `subnet` form), made
//! canonical exactly as the reference host-local does, so an IPAM policy
//! written with this SDK reads the same configs and hands out the same ranges.

use crate::{Error, ip};
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::IpAddr;

/// One `ranges[i][j]` entry, or the legacy top-level fields.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RangeConfig {
    pub subnet: String,
    #[serde(default)]
    pub range_start: Option<IpAddr>,
    #[serde(default)]
    pub range_end: Option<IpAddr>,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RouteConfig {
    pub dst: IpNet,
    #[serde(default)]
    pub gw: Option<IpAddr>,
    #[serde(default)]
    pub priority: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
pub struct DnsConfig {
    #[serde(default)]
    pub nameservers: Vec<IpAddr>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

/// The `ipam` object as written in the network config.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IpamConfig {
    #[serde(default)]
    pub ranges: Vec<Vec<RangeConfig>>,
    #[serde(flatten)]
    pub legacy: Option<LegacyRange>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub dns: Option<DnsConfig>,
}

/// `subnet`/`rangeStart`/`rangeEnd`/`gateway` at the top of `ipam`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LegacyRange {
    #[serde(default)]
    pub subnet: Option<String>,
    #[serde(default)]
    pub range_start: Option<IpAddr>,
    #[serde(default)]
    pub range_end: Option<IpAddr>,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
}

/// A range with every default filled in and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub subnet: IpNet,
    pub start: IpAddr,
    pub end: IpAddr,
    pub gateway: IpAddr,
}

impl Range {
    /// Applies the reference defaults: start after the network address, end
    /// before the IPv4 broadcast (the last address for IPv6), gateway = first.
    pub fn canonical(cfg: &RangeConfig) -> Result<Range, Error> {
        let net: IpNet = cfg.subnet.parse().map_err(|_| Error::config(format!("invalid subnet {:?}", cfg.subnet)))?;
        let subnet = net.trunc();
        if subnet.prefix_len() >= subnet.max_prefix_len() - 1 && subnet.addr().is_ipv4() {
            return Err(Error::config(format!("network {subnet} too small to allocate from")));
        }
        let first = ip::next(subnet.network()).expect("a /30 or wider has a next address");
        let last = match subnet.addr() {
            IpAddr::V4(_) => ip::prev(subnet.broadcast()).expect("broadcast is not 0.0.0.0"),
            IpAddr::V6(_) => subnet.broadcast(),
        };
        let inside = |name: &str, a: IpAddr| -> Result<IpAddr, Error> {
            if subnet.contains(&a) { Ok(a) } else { Err(Error::config(format!("{name} {a} not in network {subnet}"))) }
        };
        let start = cfg.range_start.map(|a| inside("rangeStart", a)).transpose()?.unwrap_or(first);
        let end = cfg.range_end.map(|a| inside("rangeEnd", a)).transpose()?.unwrap_or(last);
        let gateway = cfg.gateway.map(|a| inside("gateway", a)).transpose()?.unwrap_or(first);
        if ip::cmp(start, end).is_gt() {
            return Err(Error::config(format!("rangeStart {start} is after rangeEnd {end}")));
        }
        Ok(Range { subnet, start, end, gateway })
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        self.subnet.contains(&a) && ip::cmp(a, self.start).is_ge() && ip::cmp(a, self.end).is_le()
    }

    /// The first address from `from` on, inside this range, that is neither
    /// the gateway nor in `taken`.
    pub fn first_free(&self, from: IpAddr, taken: &HashSet<IpAddr>) -> Option<IpAddr> {
        let mut a = from;
        while self.contains(a) {
            if a != self.gateway && !taken.contains(&a) {
                return Some(a);
            }
            a = ip::next(a)?;
        }
        None
    }

    /// Addresses this range can hand out (its span less the gateway if inside).
    pub fn capacity(&self) -> u128 {
        let span = ip::span(self.start, self.end);
        span - u128::from(self.contains(self.gateway))
    }
}

/// A set of ranges of one family: one address is allocated per set.
pub type RangeSet = Vec<Range>;

impl IpamConfig {
    /// Parses the `ipam` object of a plugin config.
    pub fn from_plugin_config(config: &serde_json::Value) -> Result<IpamConfig, Error> {
        let ipam = config.get("ipam").ok_or_else(|| Error::config("missing \"ipam\" section"))?;
        serde_json::from_value(ipam.clone()).map_err(|e| Error::config(format!("invalid ipam config: {e}")))
    }

    /// Every range set, legacy form first, each range canonical and the sets
    /// free of overlaps and mixed families.
    pub fn range_sets(&self) -> Result<Vec<RangeSet>, Error> {
        let mut sets: Vec<Vec<RangeConfig>> = Vec::new();
        if let Some(legacy) = &self.legacy
            && let Some(subnet) = &legacy.subnet
        {
            sets.push(vec![RangeConfig {
                subnet: subnet.clone(),
                range_start: legacy.range_start,
                range_end: legacy.range_end,
                gateway: legacy.gateway,
            }]);
        }
        sets.extend(self.ranges.iter().cloned());
        if sets.is_empty() {
            return Err(Error::config("no IP ranges specified"));
        }
        let mut out: Vec<RangeSet> = Vec::new();
        for set in &sets {
            if set.is_empty() {
                return Err(Error::config("empty range set"));
            }
            let ranges = set.iter().map(Range::canonical).collect::<Result<Vec<_>, _>>()?;
            let v4 = ranges[0].subnet.addr().is_ipv4();
            if ranges.iter().any(|r| r.subnet.addr().is_ipv4() != v4) {
                return Err(Error::config("a range set mixes IPv4 and IPv6"));
            }
            for (i, a) in ranges.iter().enumerate() {
                for b in &ranges[i + 1..] {
                    if a.contains(b.start) || a.contains(b.end) || b.contains(a.start) {
                        return Err(Error::config(format!(
                            "ranges {}-{} and {}-{} overlap",
                            a.start, a.end, b.start, b.end
                        )));
                    }
                }
            }
            out.push(ranges);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sets(ipam: serde_json::Value) -> Result<Vec<RangeSet>, Error> {
        IpamConfig::from_plugin_config(&json!({ "ipam": ipam }))?.range_sets()
    }

    #[test]
    fn defaults_match_the_reference() {
        let s = sets(json!({"subnet": "10.1.2.0/24"})).unwrap();
        let r = &s[0][0];
        assert_eq!(r.start.to_string(), "10.1.2.1");
        assert_eq!(r.end.to_string(), "10.1.2.254");
        assert_eq!(r.gateway.to_string(), "10.1.2.1");
        assert_eq!(r.capacity(), 253);
        let s = sets(json!({"ranges": [[{"subnet": "fd00::/120"}]]})).unwrap();
        assert_eq!(s[0][0].end.to_string(), "fd00::ff");
    }

    #[test]
    fn legacy_and_ranges_combine_into_dual_stack() {
        let s = sets(json!({
            "subnet": "10.1.0.0/16", "rangeStart": "10.1.0.10", "rangeEnd": "10.1.0.20",
            "ranges": [[{"subnet": "fd00::/64"}]]
        }))
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0][0].capacity(), 11);
    }

    #[test]
    fn bad_configs_are_code_7() {
        for bad in [
            json!({}),
            json!({"subnet": "10.1.0.0/33"}),
            json!({"subnet": "nonsense"}),
            json!({"subnet": "10.1.0.0/24", "gateway": "10.2.0.1"}),
            json!({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.9", "rangeEnd": "10.1.0.2"}),
            json!({"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "fd00::/64"}]]}),
            json!({"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "10.1.0.0/25"}]]}),
            json!({"ranges": "10.1.0.0/24"}),
        ] {
            assert_eq!(sets(bad.clone()).unwrap_err().code, 7, "{bad}");
        }
    }
}
