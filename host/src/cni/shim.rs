//! The exec'd binary as a shim: when the config (`"daemon": {"socket": ...,
//! "fallback": "local" | "fail"}`) or `WASMCNI_DAEMON_SOCKET` names a daemon,
//! the whole call is forwarded there and its answer printed as is.

use super::error::{CniError, Code};
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

/// The daemon this call goes to, if any: the config's, else `env_socket`
/// (`WASMCNI_DAEMON_SOCKET`, read by the caller).
pub fn daemon_for(stdin: &[u8], env_socket: Option<std::ffi::OsString>) -> Result<Option<Daemon>, CniError> {
    let configured = serde_json::from_slice::<serde_json::Value>(stdin).ok().and_then(|v| v.get("daemon").cloned());
    if let Some(d) = configured {
        return serde_json::from_value(d)
            .map(Some)
            .map_err(|e| CniError::config(format!("invalid \"daemon\" section: {e}")));
    }
    Ok(env_socket.filter(|s| !s.is_empty()).map(|s| Daemon { socket: s.into(), fallback: Fallback::Local }))
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
    if !retry_locally(command, daemon.fallback, &err) {
        let e = CniError::new(Code::TryAgainLater, format!("wasmcni daemon: {err}; try again later"));
        return super::printed(Err(e), stdin);
    }
    tracing::warn!("{err}; running {command} in this process");
    let outcome = super::handle(command, argv0, stdin, |k| std::env::var(k).ok());
    super::printed(outcome, stdin)
}

/// Whether a call the daemon did not answer runs in this process. DEL and
/// GC always do, whatever `fallback` says: a runtime never retries a refused
/// DEL, so refusing one leaks what the container had. An ADD the daemon may
/// have half done is never retried here: the runtime's DEL cleans it up.
fn retry_locally(command: &str, fallback: Fallback, err: &ForwardError) -> bool {
    match (command, err) {
        ("DEL" | "GC", _) => true,
        (_, ForwardError::Unavailable(_)) => fallback == Fallback::Local,
        (_, ForwardError::Broken(_)) => fallback == Fallback::Local && command != "ADD",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn del_and_gc_always_run_locally_and_a_half_done_add_never_does() {
        let down = || ForwardError::Unavailable("connection refused".into());
        let broken = || ForwardError::Broken("reset mid-call".into());
        for fallback in [Fallback::Local, Fallback::Fail] {
            for command in ["DEL", "GC"] {
                assert!(retry_locally(command, fallback, &down()), "{command} {fallback:?}");
                assert!(retry_locally(command, fallback, &broken()), "{command} {fallback:?}");
            }
            assert!(!retry_locally("ADD", fallback, &broken()));
        }
        assert!(retry_locally("ADD", Fallback::Local, &down()));
        assert!(!retry_locally("ADD", Fallback::Fail, &down()));
        assert!(retry_locally("CHECK", Fallback::Local, &broken()));
        assert!(!retry_locally("CHECK", Fallback::Fail, &down()));
    }

    #[test]
    fn the_config_s_daemon_wins_over_the_environment_s_and_a_bad_section_is_code_7() {
        let env = || Some(std::ffi::OsString::from("/run/env.sock"));
        let conf = br#"{"daemon": {"socket": "/run/conf.sock", "fallback": "fail"}}"#;
        let d = daemon_for(conf, env()).unwrap().unwrap();
        assert_eq!((d.socket, d.fallback), (PathBuf::from("/run/conf.sock"), Fallback::Fail));
        let d = daemon_for(b"{}", env()).unwrap().unwrap();
        assert_eq!((d.socket, d.fallback), (PathBuf::from("/run/env.sock"), Fallback::Local));
        assert!(daemon_for(b"{}", Some("".into())).unwrap().is_none());
        assert!(daemon_for(b"not json", None).unwrap().is_none(), "the call itself reports bad JSON");
        let bad = daemon_for(br#"{"daemon": {"socket": "/s", "fallback": "maybe"}}"#, env()).unwrap_err();
        assert_eq!(bad.code, 7);
    }
}
