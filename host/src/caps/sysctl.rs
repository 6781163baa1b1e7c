//! sysctl writes under /proc/sys/net, limited to an allow-list.

use crate::cni::error::CniError;

/// Global keys a plugin may set.
const GLOBAL: &[&str] = &["ipv4/ip_forward", "ipv6/conf/all/forwarding", "ipv4/conf/all/rp_filter"];

/// Per-interface keys a plugin may set, as `ipvN/conf/<ifname>/<key>`.
const PER_LINK: &[(&str, &str)] = &[
    ("ipv4", "arp_notify"),
    ("ipv4", "rp_filter"),
    ("ipv4", "forwarding"),
    ("ipv4", "route_localnet"),
    ("ipv4", "proxy_arp"),
    ("ipv6", "accept_ra"),
    ("ipv6", "accept_dad"),
    ("ipv6", "disable_ipv6"),
    ("ipv6", "forwarding"),
];

/// What a key refers to, once it passed the allow-list.
#[derive(Debug, PartialEq, Eq)]
pub enum Key<'a> {
    Global,
    Link(&'a str),
}

/// Checks `key` (relative to /proc/sys/net) against the allow-list.
pub fn parse_key(key: &str) -> Result<Key<'_>, CniError> {
    if GLOBAL.contains(&key) {
        return Ok(Key::Global);
    }
    let parts: Vec<&str> = key.split('/').collect();
    if let [family, "conf", link, name] = parts[..]
        && PER_LINK.contains(&(family, name))
        && crate::cni::env::validate_ifname(link).is_ok()
        && !matches!(link, "all" | "default")
    {
        return Ok(Key::Link(link));
    }
    Err(CniError::denied(format!("sysctl net/{key} is not on the allow-list")))
}

fn path(key: &str) -> String {
    format!("/proc/sys/net/{key}")
}

pub fn write(key: &str, value: &str) -> Result<(), CniError> {
    if value.is_empty() || value.len() > 16 || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CniError::denied(format!("sysctl value {value:?} refused")));
    }
    std::fs::write(path(key), value).map_err(|e| CniError::kernel(format!("sysctl net/{key}={value}"), e))
}

pub fn read(key: &str) -> Result<String, CniError> {
    std::fs::read_to_string(path(key))
        .map(|s| s.trim().to_owned())
        .map_err(|e| CniError::kernel(format!("sysctl net/{key}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list() {
        assert_eq!(parse_key("ipv4/ip_forward").unwrap(), Key::Global);
        assert_eq!(parse_key("ipv6/conf/eth0/accept_dad").unwrap(), Key::Link("eth0"));
        for bad in [
            "kernel/panic",
            "ipv4/conf/../../../kernel/x/arp_notify",
            "ipv4/conf/eth0/../x",
            "ipv6/conf/default/accept_ra",
            "ipv4/tcp_syncookies",
        ] {
            assert_eq!(parse_key(bad).unwrap_err().code, 101, "{bad}");
        }
    }
}
