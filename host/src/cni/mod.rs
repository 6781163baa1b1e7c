//! The CNI contract: read CNI_* and stdin, dispatch the command to the
//! selected plugin, print the result in the config's version (or the error),
//! and exit with the matching status.

pub mod call;
pub mod env;
pub mod error;
pub mod exec;
pub mod result;
pub mod version;

use crate::config::{ModuleSource, NetConf, resolve_ipam, resolve_plugin};
use crate::engine::{Runner, Target};
use call::Call;
use env::{CniEnv, Command};
use error::{CniError, code};
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use version::Version;

/// Runs one CNI call from the process environment; stdout gets the result
/// or the error, nothing else.
pub fn plugin_main() -> ExitCode {
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    let argv0 = std::env::args().next().unwrap_or_default();
    let command = std::env::var("CNI_COMMAND").unwrap_or_default();
    let outcome = match read {
        Ok(_) => handle(&command, &argv0, &stdin, |k| std::env::var(k).ok()),
        Err(e) => Err(CniError::io(format!("cannot read stdin: {e}"))),
    };
    let (out, status) = match outcome {
        Ok(Some(v)) => (Some(v), ExitCode::SUCCESS),
        Ok(None) => (None, ExitCode::SUCCESS),
        Err(e) => {
            tracing::error!(command = %command, "{e}");
            (Some(e.to_json(&error_version(&stdin))), ExitCode::FAILURE)
        }
    };
    if let Some(v) = out {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{v}");
    }
    status
}

/// The version errors are printed in: the config's when it has a valid one.
fn error_version(stdin: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion").and_then(|s| s.as_str()).map(str::to_owned))
        .filter(|v| version::SUPPORTED.contains(&v.as_str()))
        .unwrap_or_else(|| version::CURRENT.to_owned())
}

fn version_reply(stdin: &[u8]) -> serde_json::Value {
    let asked = serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion").and_then(|s| s.as_str()).map(str::to_owned))
        .unwrap_or_else(|| version::CURRENT.to_owned());
    serde_json::json!({ "cniVersion": asked, "supportedVersions": version::SUPPORTED })
}

/// Handles one call; `Ok(None)` means success with nothing to print.
pub fn handle(
    command: &str,
    argv0: &str,
    stdin: &[u8],
    vars: impl Fn(&str) -> Option<String>,
) -> Result<Option<serde_json::Value>, CniError> {
    let command = Command::parse(command)?;
    if command == Command::Version {
        return Ok(Some(version_reply(stdin)));
    }
    let env = CniEnv::from_vars(command, vars)?;
    let conf = NetConf::parse(stdin)?;
    let allowed = match command {
        Command::Check => conf.version >= Version::V0_4_0,
        Command::Status | Command::Gc => conf.version >= Version::V1_1_0,
        _ => true,
    };
    if !allowed {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!("config version {} does not allow {}", conf.cni_version, command.as_str()),
        ));
    }
    let path = resolve_plugin(argv0, &conf.kind, conf.plugin.as_deref())?;
    let target = Target { path, sha256: conf.plugin_sha256.clone(), limits: conf.limits, role: None };
    let valid = (command == Command::Gc).then(|| conf.valid_attachments.clone());
    let call = Arc::new(Call { env, conf });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CniError::io(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(async {
        let runner = Runner::new()?;
        tracing::debug!("engine ready");
        if let Some(ModuleSource::Wasm { path, sha256 }) = call.conf.ipam.as_ref().and_then(|i| resolve_ipam(i).ok()) {
            runner.preload(path, sha256);
        }
        runner.run(&target, call.clone(), command, valid).await
    })?;
    Ok(result.map(|r| r.to_version(&call.conf.cni_version, call.conf.version)))
}
