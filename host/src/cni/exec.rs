//! Delegation to a CNI binary from CNI_PATH, as the spec's delegation rules
//! describe: the call's CNI_* variables (CNI_COMMAND set to the delegated
//! command), the same config on stdin.

use super::call::Call;
use super::env::Command;
use super::error::{CniError, Code};
use super::result::CniResult;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

fn find(kind: &str, path: &[String]) -> Result<PathBuf, CniError> {
    path.iter()
        .map(|dir| PathBuf::from(dir).join(kind))
        .find(|p| p.is_file())
        .ok_or_else(|| CniError::config(format!("failed to find plugin {kind:?} in path {path:?}")))
}

pub async fn delegate(kind: &str, command: Command, call: &Call) -> Result<Option<CniResult>, CniError> {
    let bin = find(kind, &call.env.path)?;
    // The call's own CNI_* values, not this process's: in daemon mode they
    // came in the request.
    let env = &call.env;
    let mut child = tokio::process::Command::new(&bin)
        // A call that times out takes its delegate down with it.
        .kill_on_drop(true)
        .env("CNI_COMMAND", command.as_str())
        .env("CNI_CONTAINERID", &env.container_id)
        .env("CNI_NETNS", env.netns.as_deref().unwrap_or(""))
        .env("CNI_IFNAME", &env.ifname)
        .env("CNI_ARGS", &env.args_raw)
        .env("CNI_PATH", env.path.join(":"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| CniError::io(format!("cannot run {}: {e}", bin.display())))?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(call.conf.raw.as_bytes()).await.map_err(|e| CniError::io(format!("{kind}: {e}")))?;
    drop(stdin);
    let out = child.wait_with_output().await.map_err(|e| CniError::io(format!("{kind}: {e}")))?;
    if !out.status.success() {
        #[derive(serde::Deserialize)]
        struct Reported {
            code: u32,
            msg: String,
            #[serde(default)]
            details: String,
        }
        return Err(match serde_json::from_slice::<Reported>(&out.stdout) {
            Ok(r) => CniError::from_parts(r.code, format!("{kind}: {}", r.msg), r.details),
            Err(_) => CniError::new(
                Code::PluginFailure,
                format!("{kind} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stdout).trim()),
            ),
        });
    }
    if command != Command::Add {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| CniError::new(Code::DecodeFailure, format!("{kind} printed an invalid result: {e}")))?;
    CniResult::from_any(&value).map(Some)
}
