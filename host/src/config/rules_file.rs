//! `"rulesFile": "/etc/wasmcni/routes.yaml"`: a plugin's `rules`, kept in a
//! file (YAML or JSON) the host reads, so they can change without a new
//! network config; with the daemon, a change is applied to running
//! containers (see `crate::attachments`).

use crate::cni::error::CniError;
use serde_json::Value;
use std::path::Path;

/// The rules in `path`: YAML, or JSON (which YAML reads too).
pub fn read(path: &Path) -> Result<Value, CniError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CniError::config(format!("rulesFile {}: {e}", path.display())))?;
    serde_saphyr::from_str::<Value>(&text)
        .map_err(|e| CniError::config(format!("rulesFile {} is neither YAML nor JSON: {e}", path.display())))
}

/// Replaces the config's `rules` with its `rulesFile`'s; returns whether it did.
pub fn resolve(config: &mut Value) -> Result<bool, CniError> {
    let Some(path) = config.get("rulesFile") else { return Ok(false) };
    let path = path.as_str().ok_or_else(|| CniError::config("\"rulesFile\" must be a path"))?.to_owned();
    let rules = read(Path::new(&path))?;
    config["rules"] = rules;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_come_from_yaml_or_json() {
        let dir = std::env::temp_dir().join(format!("wcni-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = dir.join("r.yaml");
        std::fs::write(&yaml, "- dst: 10.10.0.0/16\n  dev: net1\n- svc: default/api\n  dev: net1\n").unwrap();
        let mut c = json!({"type": "wasm-custom-route", "rulesFile": yaml});
        assert!(resolve(&mut c).unwrap());
        assert_eq!(c["rules"], json!([{"dst": "10.10.0.0/16", "dev": "net1"}, {"svc": "default/api", "dev": "net1"}]));
        let js = dir.join("r.json");
        std::fs::write(&js, r#"[{"dst": "10.11.0.0/16", "dev": "eth0", "via": "10.0.0.1"}]"#).unwrap();
        assert_eq!(read(&js).unwrap()[0]["via"], "10.0.0.1");
        std::fs::write(&js, "[{").unwrap();
        assert_eq!(read(&js).unwrap_err().code, 7);
        assert!(!resolve(&mut json!({"rules": []})).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
