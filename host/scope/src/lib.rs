//! What a plugin may touch, as pure functions: the host enforces these on
//! every kernel call, and the SDK's testing host calls the same ones, so a
//! plugin that passes its own tests is not refused in production.

pub mod sysctl;

use std::collections::HashSet;
use wasmcni_cni::CniError;
use wasmcni_cni::result::Route;

/// The host links one call may touch: those its config declares (the
/// bridge plugin's `bridge`, ...), those prevResult lists, and those the call
/// created or found as its own veth peers (added as it goes).
#[derive(Debug, Clone, Default)]
pub struct HostLinks {
    names: HashSet<String>,
}

impl HostLinks {
    pub fn new(declared: impl IntoIterator<Item = String>) -> HostLinks {
        HostLinks { names: declared.into_iter().collect() }
    }

    /// Brings a link this call created or found into scope.
    pub fn add(&mut self, name: &str) {
        self.names.insert(name.to_owned());
    }

    /// Code 101 unless `name` is in scope.
    pub fn check(&self, name: &str) -> Result<(), CniError> {
        if self.names.contains(name) {
            Ok(())
        } else {
            Err(CniError::denied(format!(
                "host link {name:?} is outside this plugin's scope: it did not create it, \
                 the config does not declare it and prevResult does not list it"
            )))
        }
    }
}

/// On the host a plugin routes to specific destinations in the main table:
/// it may not take over the node's default route or other routing tables.
pub fn host_route(route: &Route) -> Result<(), CniError> {
    if route.dst.prefix_len() == 0 {
        return Err(CniError::denied(format!("a plugin may not change the host's default route ({})", route.dst)));
    }
    if route.table.is_some_and(|t| t != 254) {
        return Err(CniError::denied("host-side routes go in the main table"));
    }
    Ok(())
}

/// A bridge port VLAN: 1-4094.
pub fn vlan(vid: u16) -> Result<(), CniError> {
    if (1..=4094).contains(&vid) { Ok(()) } else { Err(CniError::config(format!("invalid VLAN ID {vid}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, table: Option<u32>) -> Route {
        Route { table, ..Route::to(dst.parse().unwrap()) }
    }

    #[test]
    fn host_routes_may_not_touch_the_default_route_or_other_tables() {
        assert!(host_route(&route("10.244.1.0/24", None)).is_ok());
        assert!(host_route(&route("10.244.1.0/24", Some(254))).is_ok());
        assert_eq!(host_route(&route("0.0.0.0/0", None)).unwrap_err().code, 101);
        assert_eq!(host_route(&route("::/0", None)).unwrap_err().code, 101);
        assert_eq!(host_route(&route("10.244.1.0/24", Some(100))).unwrap_err().code, 101);
    }

    #[test]
    fn host_links_are_in_scope_once_declared_or_added() {
        let mut scope = HostLinks::new(["cni0".to_string()]);
        assert!(scope.check("cni0").is_ok());
        assert_eq!(scope.check("eth0").unwrap_err().code, 101);
        scope.add("veth1234");
        assert!(scope.check("veth1234").is_ok());
    }

    #[test]
    fn vlans_are_1_to_4094() {
        assert!(vlan(1).is_ok() && vlan(4094).is_ok());
        assert_eq!(vlan(0).unwrap_err().code, 7);
        assert_eq!(vlan(4095).unwrap_err().code, 7);
    }
}
