//! The exec'd binary as a shim: when the config (`"daemon": {"socket": ...,
//! "fallback": "local" | "fail"}`) or `WASMCNI_DAEMON_SOCKET` names a daemon,
//! the whole call is forwarded there and its answer printed as is.

use super::error::{CniError, code};
use crate::daemon::client::{ForwardError, forward};
use crate::daemon::protocol::{CNI_VARS, CniRequest};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// How long the shim waits for the daemon's answer.
const DEADLINE: Duration = Duration::from_secs(150);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Run the call in this process when the daemon is not there.
    #[default]
    Local,
    /// Answer "try again later" (code 11).
    Fail,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Daemon {
    pub socket: PathBuf,
    #[serde(default)]
    pub fallback: Fallback,
}

/// The daemon this call goes to, if any: the config's, else the env's.
pub fn daemon_for(stdin: &[u8]) -> Result<Option<Daemon>, CniError> {
    let configured = serde_json::from_slice::<serde_json::Value>(stdin).ok().and_then(|v| v.get("daemon").cloned());
    if let Some(d) = configured {
        return serde_json::from_value(d)
            .map(Some)
            .map_err(|e| CniError::config(format!("invalid \"daemon\" section: {e}")));
    }
    Ok(std::env::var_os("WASMCNI_DAEMON_SOCKET")
        .filter(|s| !s.is_empty())
        .map(|s| Daemon { socket: s.into(), fallback: Fallback::Local }))
}

/// Forwards the call, falling back to this process where that is safe.
pub fn through(daemon: &Daemon, command: &str, argv0: &str, stdin: &[u8]) -> (String, i32) {
    let request = CniRequest {
        command: command.to_owned(),
        argv0: argv0.to_owned(),
        env: CNI_VARS.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))).collect(),
        stdin: String::from_utf8_lossy(stdin).into_owned(),
    };
    let err = match forward(&daemon.socket, &request, DEADLINE) {
        Ok(reply) => return (reply.stdout, reply.exit_code),
        Err(e) => e,
    };
    // An ADD the daemon may have half done is not retried here: the
    // runtime's DEL (served here if the daemon stays away) cleans it up.
    let retry_locally = match &err {
        ForwardError::Unavailable(_) => daemon.fallback == Fallback::Local,
        ForwardError::Broken(_) => daemon.fallback == Fallback::Local && command != "ADD",
    };
    if retry_locally {
        tracing::warn!("{err}; running {command} in this process");
        let outcome = super::handle(command, argv0, stdin, |k| std::env::var(k).ok());
        return super::printed(outcome, stdin);
    }
    let e = CniError::new(code::TRY_AGAIN_LATER, format!("wasmcni daemon: {err}; try again later"));
    super::printed(Err(e), stdin)
}
