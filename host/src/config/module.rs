//! Which Wasm module a config selects.
//!
//! A plugin entry picks its module with `"type": "wasmcni", "plugin": NAME|PATH`,
//! or by being exec'd through a link named `wasm-NAME` (so `"type": "wasm-NAME"`
//! works in any conflist). NAME is looked up as `<module dir>/NAME.wasm`.

use crate::cni::error::CniError;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Default directory of named modules; `WASMCNI_MODULE_DIR` overrides it.
pub const DEFAULT_MODULE_DIR: &str = "/opt/cni/wasm";

/// The directory named modules are looked up in, chosen at the edge (the
/// daemon's `--module-dir`, or `WASMCNI_MODULE_DIR` for a one-shot call).
#[derive(Debug, Clone)]
pub struct ModuleDir(PathBuf);

impl ModuleDir {
    pub fn new(dir: PathBuf) -> ModuleDir {
        ModuleDir(dir)
    }

    /// The file of a module named by name (in the module dir) or absolute path.
    pub fn locate(&self, name_or_path: &str) -> Result<PathBuf, CniError> {
        let path = if name_or_path.starts_with('/') {
            PathBuf::from(name_or_path)
        } else {
            if !valid_module_name(name_or_path) {
                return Err(CniError::config(format!(
                    "plugin {name_or_path:?} is neither a module name nor an absolute path"
                )));
            }
            self.0.join(format!("{name_or_path}.wasm"))
        };
        if path.is_file() {
            Ok(path)
        } else {
            Err(CniError::config(format!("plugin module {} not found", path.display())))
        }
    }

    /// The module of the main plugin, from argv[0] or the config.
    pub fn resolve_plugin(&self, argv0: &str, kind: &str, plugin: Option<&str>) -> Result<PathBuf, CniError> {
        let chosen = match (wasm_link_name(argv0), plugin) {
            (_, Some(p)) if kind == "wasmcni" => p.to_owned(),
            (Some(name), _) => name.to_owned(),
            (None, _) if kind == "wasmcni" => {
                return Err(CniError::config(
                    "\"type\": \"wasmcni\" needs a \"plugin\" (module name or absolute path)",
                ));
            }
            (None, _) => match wasm_link_name(kind) {
                Some(name) => name.to_owned(),
                None => {
                    return Err(CniError::config(format!(
                        "unknown plugin type {kind:?}: use \"wasmcni\" with \"plugin\", or \"wasm-<name>\""
                    )));
                }
            },
        };
        self.locate(&chosen)
    }

    /// The module behind an `ipam` section: Wasm when its type is `wasmcni` (with
    /// `plugin`) or `wasm-<name>`, otherwise the CNI binary `$CNI_PATH/<type>`.
    pub fn resolve_ipam(&self, ipam: &Value) -> Result<ModuleSource, CniError> {
        let kind = ipam.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind.is_empty() {
            return Err(CniError::config("ipam section has no \"type\""));
        }
        let sha256 = ipam.get("pluginSha256").and_then(Value::as_str).map(str::to_ascii_lowercase);
        if kind == "wasmcni" {
            let plugin = ipam
                .get("plugin")
                .and_then(Value::as_str)
                .ok_or_else(|| CniError::config("ipam \"type\": \"wasmcni\" needs a \"plugin\""))?;
            return Ok(ModuleSource::Wasm { path: self.locate(plugin)?, sha256 });
        }
        if let Some(name) = wasm_link_name(kind) {
            return Ok(ModuleSource::Wasm { path: self.locate(name)?, sha256 });
        }
        if kind.contains('/') {
            return Err(CniError::config(format!("invalid ipam type {kind:?}")));
        }
        Ok(ModuleSource::Exec { kind: kind.to_owned() })
    }

    /// The module of a `policies` entry, by its `plugin` (name or path).
    pub fn resolve_policy(&self, entry: &Value) -> Result<(PathBuf, Option<String>), CniError> {
        let plugin = entry.get("plugin").and_then(Value::as_str).unwrap_or_default();
        let sha256 = entry.get("pluginSha256").and_then(Value::as_str).map(str::to_ascii_lowercase);
        Ok((self.locate(plugin)?, sha256))
    }
}

/// Where a plugin's code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// A Wasm component run in this process.
    Wasm { path: PathBuf, sha256: Option<String> },
    /// A CNI binary exec'd from CNI_PATH (only for IPAM delegation).
    Exec { kind: String },
}

/// The `<name>` of a `wasm-<name>` invocation name or type.
fn wasm_link_name(s: &str) -> Option<&str> {
    Path::new(s).file_name()?.to_str()?.strip_prefix("wasm-").filter(|n| !n.is_empty())
}

/// A module name: what `<module dir>/<name>.wasm` may be called.
pub fn valid_module_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_select_modules() {
        assert_eq!(wasm_link_name("/opt/cni/bin/wasm-bridge"), Some("bridge"));
        assert_eq!(wasm_link_name("wasm-host-local"), Some("host-local"));
        assert_eq!(wasm_link_name("/opt/cni/bin/wasmcni"), None);
        assert_eq!(wasm_link_name("wasm-"), None);
    }

    #[test]
    fn unknown_types_and_missing_modules_are_config_errors() {
        let dir = ModuleDir::new("/nonexistent".into());
        assert_eq!(dir.resolve_plugin("wasmcni", "bridge", None).unwrap_err().code, 7);
        assert_eq!(dir.resolve_plugin("wasmcni", "wasmcni", None).unwrap_err().code, 7);
        assert_eq!(dir.resolve_plugin("wasmcni", "wasmcni", Some("/nonexistent/x.wasm")).unwrap_err().code, 7);
        assert_eq!(dir.resolve_plugin("wasmcni", "wasmcni", Some("../etc/x")).unwrap_err().code, 7);
        let missing = dir.resolve_plugin("/opt/cni/bin/wasm-bridge", "bridge", None).unwrap_err();
        assert!(missing.msg.contains("/nonexistent/bridge.wasm"), "looked in the wrong place: {}", missing.msg);
    }

    #[test]
    fn ipam_types_pick_wasm_or_exec() {
        let dir = ModuleDir::new("/nonexistent".into());
        let exec = dir.resolve_ipam(&serde_json::json!({"type": "host-local"})).unwrap();
        assert_eq!(exec, ModuleSource::Exec { kind: "host-local".into() });
        assert_eq!(dir.resolve_ipam(&serde_json::json!({})).unwrap_err().code, 7);
        assert_eq!(dir.resolve_ipam(&serde_json::json!({"type": "../x"})).unwrap_err().code, 7);
    }
}
