//! The sysctls under /proc/sys/net a plugin may read and write.

use wasmcni_cni::CniError;

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
        && wasmcni_cni::env::validate_ifname(link).is_ok()
        && !matches!(link, "all" | "default")
    {
        return Ok(Key::Link(link));
    }
    Err(CniError::denied(format!("sysctl net/{key} is not on the allow-list")))
}

/// A global key: one of a link's (`ipvN/conf/<link>/...`) must go through
/// the link's handle instead (code 7); one off the allow-list is code 101.
pub fn global_key(key: &str) -> Result<(), CniError> {
    match parse_key(key)? {
        Key::Global => Ok(()),
        Key::Link(_) => {
            Err(CniError::config(format!("{key} is a link's sysctl: use set-conf/get-conf with its handle")))
        }
    }
}

/// `ipvN/conf/<link>/<key>`, the key of one link's sysctl; `key` is a
/// single name, never a path (code 7). The allow-list is `parse_key`'s.
pub fn link_key(ipv6: bool, link: &str, key: &str) -> Result<String, CniError> {
    if key.is_empty() || key.contains('/') {
        return Err(CniError::config(format!("invalid per-link sysctl {key:?}")));
    }
    Ok(format!("{}/conf/{link}/{key}", if ipv6 { "ipv6" } else { "ipv4" }))
}

/// A value a plugin may write: short and alphanumeric (numbers, mostly).
pub fn value(value: &str) -> Result<(), CniError> {
    if value.is_empty() || value.len() > 16 || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CniError::denied(format!("sysctl value {value:?} refused")));
    }
    Ok(())
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

    #[test]
    fn a_link_s_key_goes_through_its_handle_and_is_never_a_path() {
        assert!(global_key("ipv4/ip_forward").is_ok());
        assert_eq!(global_key("ipv4/conf/eth0/arp_notify").unwrap_err().code, 7);
        assert_eq!(global_key("kernel/panic").unwrap_err().code, 101);
        assert_eq!(link_key(true, "eth0", "accept_dad").unwrap(), "ipv6/conf/eth0/accept_dad");
        for bad in ["", "../../kernel/panic", "x/y"] {
            assert_eq!(link_key(false, "eth0", bad).unwrap_err().code, 7, "{bad:?}");
        }
    }

    #[test]
    fn values_are_short_and_alphanumeric() {
        assert!(value("1").is_ok() && value("0").is_ok());
        for bad in ["", "1 2", "../x", "12345678901234567"] {
            assert_eq!(value(bad).unwrap_err().code, 101, "{bad:?}");
        }
    }
}
