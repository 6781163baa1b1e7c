//! The network config a runtime passes on stdin, and which Wasm module it selects.

mod module;
pub mod rules_file;
mod subnet_file;

use crate::cni::error::CniError;
use crate::cni::result::CniResult;
pub use module::{DEFAULT_MODULE_DIR, ModuleDir, ModuleSource, valid_module_name};
pub use wasmcni_cni::netconf::{Limits, NetConf};

/// Parses stdin, resolving the files it names (`subnetFile`, `rulesFile`):
/// not JSON → 6; a field of the wrong type or a bad name → 7; an unsupported
/// cniVersion → 1.
pub fn parse(stdin: &[u8]) -> Result<NetConf, CniError> {
    parse_with(stdin, false)
}

/// As `parse`, for a DEL: a subnet or rules file that cannot be read is left
/// unresolved, and a prevResult that cannot be read is left out (the plugin
/// frees what it can), not an error: a runtime never retries a refused DEL.
pub fn parse_for_del(stdin: &[u8]) -> Result<NetConf, CniError> {
    parse_with(stdin, true)
}

fn parse_with(stdin: &[u8], lenient: bool) -> Result<NetConf, CniError> {
    let mut value = wasmcni_cni::netconf::decode(stdin)?;
    let unreadable_prev = match value.get("prevResult").map(CniResult::from_any) {
        Some(Err(e)) if lenient => {
            tracing::warn!("DEL goes on without prevResult: {}", e.msg);
            value.as_object_mut().expect("an object").remove("prevResult");
            true
        }
        _ => false,
    };
    let resolved = [subnet_file::resolve, rules_file::resolve]
        .into_iter()
        .map(|resolve| match resolve(&mut value) {
            Err(e) if lenient => {
                tracing::warn!("{e}");
                Ok(false)
            }
            other => other,
        })
        .collect::<Result<Vec<bool>, CniError>>()?
        .contains(&true);
    let rewritten = resolved || unreadable_prev;
    let as_given = if rewritten { value.to_string() } else { String::from_utf8_lossy(stdin).into_owned() };
    NetConf::from_value(&value, as_given)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_del_survives_a_subnet_file_that_is_gone() {
        let c = r#"{"cniVersion":"1.0.0","name":"n","type":"wasm-bridge",
            "ipam":{"type":"wasm-host-local","subnetFile":"/nonexistent/subnet.env"}}"#;
        assert_eq!(parse(c.as_bytes()).unwrap_err().code, 11);
        let del = parse_for_del(c.as_bytes()).unwrap();
        assert!(del.ipam.unwrap().get("subnetFile").is_some());
    }

    #[test]
    fn a_del_goes_on_without_a_prev_result_it_cannot_read() {
        let c = r#"{"cniVersion":"1.0.0","name":"n","type":"x",
            "prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2"}]}}"#;
        assert_eq!(parse(c.as_bytes()).unwrap_err().code, 6);
        let del = parse_for_del(c.as_bytes()).unwrap();
        assert!(del.prev_result.is_none());
        assert!(!del.raw.contains("prevResult"), "the plugin still gets the unreadable prevResult");
    }
}
