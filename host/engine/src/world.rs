//! Worlds by privilege: what a module imports decides what it is, and a
//! module whose imports exceed its role's world is refused before it runs.

use crate::Error;
use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

pub const PACKAGE: &str = "wasmcni:plugin";
/// The WIT package version of this host (wit/wasmcni.wit).
pub const WIT_VERSION: (u32, u32) = (1, 2);
/// Every (major, minor) this host has bindings for: the current one and the
/// versions it keeps serving (wit/compat/). A 1.x minor above the host's is
/// not served: its additions are not here. A 1.0 or 1.1 module binds to the
/// 1.2 bindings (the component model matches semver-compatible names).
const SERVED: &[(u32, u32)] = &[(0, 1), (0, 2), (1, 0), (1, 1), WIT_VERSION];

/// The interfaces of a network plugin's kernel access, in 1.x and in 0.x.
const KERNEL_V1: &[&str] = &["links", "addresses", "routes", "sysctl", "nat"];
const KERNEL_V0: &[&str] = &["netlink"];

/// The role a module is run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A network plugin (`cni-plugin` world).
    Plugin,
    /// An IPAM plugin (`ipam` world), run by delegation.
    Ipam,
    /// A policy (`policy` world), run before a plugin's ADD.
    Policy,
    /// A routing plugin (`routing` world), run by the daemon's cluster mode.
    Routing,
    /// An overlay routing plugin (`overlay-routing` world, 1.1), run by the
    /// daemon's cluster mode with a VTEP.
    Overlay,
    /// A network policy module (`netpol` world, 1.2).
    Netpol,
}

impl Role {
    pub fn world(self) -> &'static str {
        match self {
            Role::Plugin => "cni-plugin",
            Role::Ipam => "ipam",
            Role::Policy => "policy",
            Role::Routing => "routing",
            Role::Overlay => "overlay-routing",
            Role::Netpol => "netpol",
        }
    }

    /// Whether this role's world (of package major `major`) grants `iface`.
    fn grants(self, iface: &str, major: u32) -> bool {
        let kernel = if major == 0 { KERNEL_V0 } else { KERNEL_V1 };
        matches!(iface, "types" | "log")
            || match self {
                Role::Plugin => iface == "delegate" || kernel.contains(&iface),
                Role::Ipam => iface == "ipam-store",
                Role::Policy | Role::Routing | Role::Overlay | Role::Netpol => false,
            }
    }

    /// The interface a module of this role exports.
    pub fn export(self) -> &'static str {
        match self {
            Role::Plugin | Role::Ipam => "handler",
            Role::Policy => "admission",
            Role::Routing => "node-routes",
            Role::Overlay => "node-overlay",
            Role::Netpol => "network-policy",
        }
    }
}

/// What `inspect` and the daemon show for a module no world grants.
const MIXED: &str = "mixed (no world grants this)";

#[derive(Debug, Clone, Serialize)]
pub struct ModuleInfo {
    /// The world the module's imports and exports fit; none when no world
    /// grants them all.
    #[serde(serialize_with = "world_name")]
    pub world: Option<Role>,
    pub wit_version: Option<String>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// What the module declares about itself (see `metadata`), if anything.
    pub metadata: Option<serde_json::Value>,
}

fn world_name<S: serde::Serializer>(world: &Option<Role>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(world.map_or(MIXED, Role::world))
}

impl ModuleInfo {
    /// The name of its world, as `inspect` shows it.
    pub fn world_name(&self) -> &'static str {
        self.world.map_or(MIXED, Role::world)
    }

    /// The role the module's exports (and for a handler, its imports) declare.
    pub fn declared_role(&self) -> Role {
        if exports_for(&self.exports, Role::Policy) {
            Role::Policy
        } else if exports_for(&self.exports, Role::Routing) {
            Role::Routing
        } else if exports_for(&self.exports, Role::Overlay) {
            Role::Overlay
        } else if exports_for(&self.exports, Role::Netpol) {
            Role::Netpol
        } else if self.world == Some(Role::Ipam) {
            Role::Ipam
        } else {
            Role::Plugin
        }
    }
}

/// The package major of a version string (`"0.2.0"` → 0).
fn major(version: &str) -> u32 {
    version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0)
}

/// Whether an import is one of a network plugin's (kernel or delegation).
fn plugin_only(iface: &str) -> bool {
    iface == "delegate" || KERNEL_V0.contains(&iface) || KERNEL_V1.contains(&iface)
}

/// `wasmcni:plugin/netlink@0.1.0` → (`netlink`, `0.1.0`).
fn our_interface(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    Some(rest.split_once('@').unwrap_or((rest, "")))
}

/// Whether `exports` include the interface a module of `role` exports.
fn exports_for(exports: &[String], role: Role) -> bool {
    exports.iter().filter_map(|n| our_interface(n)).any(|(i, _)| i == role.export())
}

fn compatible(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    matches!((parts.next(), parts.next()), (Some(Some(major)), Some(Some(minor))) if SERVED.contains(&(major, minor)))
}

fn served() -> String {
    SERVED.iter().map(|(major, minor)| format!("{major}.{minor}.x")).collect::<Vec<_>>().join(", ")
}

pub fn describe(engine: &Engine, component: &Component) -> ModuleInfo {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_owned()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
    let ours: Vec<(&str, &str)> = imports.iter().filter_map(|n| our_interface(n)).collect();
    let world = if let Some(role) =
        [Role::Policy, Role::Routing, Role::Overlay, Role::Netpol].into_iter().find(|r| exports_for(&exports, *r))
    {
        ours.iter().all(|(i, v)| role.grants(i, major(v))).then_some(role)
    } else if ours.iter().any(|(i, _)| *i == "ipam-store") && !ours.iter().any(|(i, _)| plugin_only(i)) {
        Some(Role::Ipam)
    } else if ours.iter().any(|(i, _)| plugin_only(i)) && !ours.iter().any(|(i, _)| *i == "ipam-store") {
        Some(Role::Plugin)
    } else if ours.iter().all(|(i, _)| matches!(*i, "types" | "log")) {
        // A handler that imports nothing privileged runs as a plugin.
        Some(Role::Plugin)
    } else {
        None
    };
    let wit_version = exports.iter().find_map(|n| our_interface(n)).map(|(_, v)| v.to_owned());
    ModuleInfo { world, wit_version, imports, exports, metadata: None }
}

/// Refuses a module that imports what `role`'s world does not grant, or that
/// was built for a WIT version this host cannot serve.
pub fn check(info: &ModuleInfo, role: Role, module: &str) -> Result<(), Error> {
    for name in info.imports.iter().chain(info.exports.iter()) {
        match our_interface(name) {
            Some((_, version)) if !compatible(version) => {
                return Err(Error::Refused(format!(
                    "module {module} was built for {PACKAGE}@{version}; this host serves {}",
                    served()
                )));
            }
            _ => {}
        }
    }
    if !exports_for(&info.exports, role) {
        return Err(Error::Refused(format!(
            "module {module} does not export {PACKAGE}/{}, so it cannot run as {} {}",
            role.export(),
            if role == Role::Ipam { "an" } else { "a" },
            role.world()
        )));
    }
    for name in &info.imports {
        let allowed = match our_interface(name) {
            Some((iface, version)) => role.grants(iface, major(version)),
            None => crate::wasi::granted(name),
        };
        if !allowed {
            return Err(Error::Refused(format!(
                "module {module} imports {name}, which the {} world does not grant",
                role.world()
            )));
        }
    }
    if let Some(meta) = &info.metadata {
        let field = |k: &str| meta.get(k).and_then(serde_json::Value::as_str);
        if let Some(declared) = field("world")
            && declared != info.world_name()
        {
            return Err(Error::Refused(format!(
                "module {module} declares the {declared} world, but its imports make it {}",
                info.world_name()
            )));
        }
        if let Some(wit) = field("wit")
            && !compatible(wit)
        {
            return Err(Error::Refused(format!(
                "module {module} was built for {PACKAGE}@{wit}; this host serves {}",
                served()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(imports: &[&str]) -> ModuleInfo {
        ModuleInfo {
            world: None,
            wit_version: Some("0.2.0".into()),
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: vec!["wasmcni:plugin/handler@0.2.0".into()],
            metadata: None,
        }
    }

    #[test]
    fn declared_metadata_must_match_the_imports_and_the_wit_version() {
        let mut m = info(&["wasmcni:plugin/netlink@0.2.0"]);
        m.world = Some(Role::Plugin);
        m.metadata = Some(serde_json::json!({"world": "cni-plugin", "wit": "0.2.0"}));
        check(&m, Role::Plugin, "m").unwrap();
        m.metadata = Some(serde_json::json!({"world": "ipam", "wit": "0.2.0"}));
        assert!(check(&m, Role::Plugin, "m").unwrap_err().to_string().contains("declares the ipam world"));
        m.metadata = Some(serde_json::json!({"world": "cni-plugin", "wit": "1.3.0"}));
        assert!(check(&m, Role::Plugin, "m").unwrap_err().to_string().contains("built for wasmcni:plugin@1.3.0"));
    }

    #[test]
    fn an_ipam_module_may_not_import_netlink() {
        let ok = info(&["wasi:cli/environment@0.2.6", "wasmcni:plugin/ipam-store@0.2.0", "wasmcni:plugin/log@0.2.0"]);
        check(&ok, Role::Ipam, "m").unwrap();
        let bad = info(&["wasmcni:plugin/ipam-store@0.2.0", "wasmcni:plugin/netlink@0.2.0"]);
        let err = check(&bad, Role::Ipam, "m").unwrap_err();
        assert!(err.to_string().contains("netlink"), "{err}");
        assert!(check(&info(&["wasmcni:plugin/ipam-store@0.2.0"]), Role::Plugin, "m").is_err());
        assert!(check(&info(&["evil:host/shell"]), Role::Plugin, "m").is_err());
        assert!(check(&info(&["wasi:sockets/tcp@0.2.6"]), Role::Plugin, "m").is_err());
        assert!(check(&info(&["wasi:filesystem/preopens@0.2.6"]), Role::Ipam, "m").is_err());
        check(&info(&["wasi:cli/stderr@0.2.6", "wasi:io/streams@0.2.3"]), Role::Plugin, "m").unwrap();
    }

    #[test]
    fn versions_follow_the_semver_promise() {
        assert!(compatible("0.1.0") && compatible("0.1.9") && compatible("0.2.0"));
        assert!(compatible("1.0.0") && compatible("1.0.7") && compatible("1.1.0") && compatible("1.2.0"));
        assert!(!compatible("0.0.3") && !compatible("0.3.0") && !compatible("1.3.0") && !compatible("2.0.0"));
        assert!(!compatible(""));
        let mut old = info(&["wasmcni:plugin/ipam-store@0.1.0"]);
        old.exports = vec!["wasmcni:plugin/handler@0.1.0".into()];
        check(&old, Role::Ipam, "m").unwrap();
        old.exports = vec!["wasmcni:plugin/handler@0.3.0".into()];
        let err = check(&old, Role::Ipam, "m").unwrap_err();
        assert!(err.to_string().contains("this host serves 0.1.x, 0.2.x, 1.0.x, 1.1.x, 1.2.x"), "{err}");
    }

    #[test]
    fn a_1_0_plugin_is_granted_the_kernel_interfaces_by_name_and_an_ipam_none_of_them() {
        let v1 = |imports: &[&str], export: &str| ModuleInfo {
            world: None,
            wit_version: Some("1.0.0".into()),
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: vec![format!("wasmcni:plugin/{export}@1.0.0")],
            metadata: None,
        };
        let kernel = ["links", "addresses", "routes", "sysctl", "nat", "delegate", "log", "types"]
            .map(|i| format!("wasmcni:plugin/{i}@1.0.0"));
        let plugin = v1(&kernel.iter().map(String::as_str).collect::<Vec<_>>(), "handler");
        check(&plugin, Role::Plugin, "m").unwrap();
        let routes_only = v1(&["wasmcni:plugin/links@1.0.0", "wasmcni:plugin/routes@1.0.0"], "handler");
        check(&routes_only, Role::Plugin, "m").unwrap();
        let ipam = v1(&["wasmcni:plugin/ipam-store@1.0.0", "wasmcni:plugin/links@1.0.0"], "handler");
        let err = check(&ipam, Role::Ipam, "m").unwrap_err();
        assert!(err.to_string().contains("links@1.0.0, which the ipam world does not grant"), "{err}");
        // 0.x named its kernel interface netlink; 1.x has none of that name.
        let odd = v1(&["wasmcni:plugin/netlink@1.0.0"], "handler");
        assert!(check(&odd, Role::Plugin, "m").is_err());
        let policy = v1(&["wasmcni:plugin/nat@1.0.0"], "admission");
        assert!(check(&policy, Role::Policy, "p").is_err());
    }

    #[test]
    fn an_overlay_plugin_is_its_own_world_and_imports_nothing_privileged() {
        let overlay = |imports: &[&str]| ModuleInfo {
            world: None,
            wit_version: Some("1.1.0".into()),
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: vec!["wasmcni:plugin/node-overlay@1.1.0".into()],
            metadata: None,
        };
        let ok = overlay(&["wasmcni:plugin/types@1.1.0", "wasmcni:plugin/log@1.1.0"]);
        assert_eq!(ok.declared_role(), Role::Overlay);
        check(&ok, Role::Overlay, "o").unwrap();
        let err = check(&ok, Role::Routing, "o").unwrap_err();
        assert!(err.to_string().contains("does not export wasmcni:plugin/node-routes"), "{err}");
        let err = check(&overlay(&["wasmcni:plugin/routes@1.1.0"]), Role::Overlay, "o").unwrap_err();
        assert!(err.to_string().contains("which the overlay-routing world does not grant"), "{err}");
    }

    #[test]
    fn a_netpol_module_is_its_own_world_and_imports_nothing_privileged() {
        let netpol = |imports: &[&str]| ModuleInfo {
            world: None,
            wit_version: Some("1.2.0".into()),
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: vec!["wasmcni:plugin/network-policy@1.2.0".into()],
            metadata: None,
        };
        let ok = netpol(&["wasmcni:plugin/types@1.2.0", "wasmcni:plugin/log@1.2.0"]);
        assert_eq!(ok.declared_role(), Role::Netpol);
        check(&ok, Role::Netpol, "n").unwrap();
        let err = check(&netpol(&["wasmcni:plugin/nat@1.2.0"]), Role::Netpol, "n").unwrap_err();
        assert!(err.to_string().contains("which the netpol world does not grant"), "{err}");
    }

    #[test]
    fn a_policy_exports_admission_and_imports_nothing_privileged() {
        let mut policy = info(&["wasmcni:plugin/log@0.2.0"]);
        policy.exports = vec!["wasmcni:plugin/admission@0.2.0".into()];
        policy.world = Some(Role::Policy);
        assert_eq!(policy.declared_role(), Role::Policy);
        check(&policy, Role::Policy, "p").unwrap();
        let err = check(&policy, Role::Plugin, "p").unwrap_err();
        assert!(err.to_string().contains("does not export wasmcni:plugin/handler"), "{err}");
        let err = check(&info(&["wasmcni:plugin/log@0.2.0"]), Role::Policy, "h").unwrap_err();
        assert!(err.to_string().contains("cannot run as a policy"), "{err}");
        policy.imports.push("wasmcni:plugin/netlink@0.2.0".into());
        let err = check(&policy, Role::Policy, "p").unwrap_err();
        assert!(err.to_string().contains("netlink@0.2.0, which the policy world does not grant"), "{err}");
    }
}
