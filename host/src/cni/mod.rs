//! The CNI contract: read CNI_* and stdin, dispatch the command to the
//! selected plugin, print the result in the config's version (or the error),
//! and exit with the matching status.

pub mod admission;
pub mod exec;
mod shim;

pub use wasmcni_cni::{call, env, error, requested, result, version};

use crate::config::{ModuleDir, ModuleSource};
use crate::runner::{Host, Runner, Target};
use call::Call;
use env::{CniEnv, Command};
use error::{CniError, Code};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use version::Version;
use wasmcni_engine::cache::Cache;

/// Runs one CNI call from the process environment, in this process or
/// through the daemon; stdout gets the result or the error, nothing else.
pub fn plugin_main() -> ExitCode {
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    let argv0 = std::env::args().next().unwrap_or_default();
    let command = std::env::var("CNI_COMMAND").unwrap_or_default();
    let (stdout, code) = match read {
        Ok(_) => match shim::daemon_for(&stdin, std::env::var_os("WASMCNI_DAEMON_SOCKET")) {
            Ok(Some(daemon)) if command != "VERSION" => shim::through(&daemon, &command, &argv0, &stdin),
            Ok(_) => printed(handle(&command, &argv0, &stdin, |k| std::env::var(k).ok()), &stdin),
            Err(e) => printed(Err(e), &stdin),
        },
        Err(e) => printed(Err(CniError::io(format!("cannot read stdin: {e}"))), &stdin),
    };
    if !stdout.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", stdout.trim_end());
    }
    if code == 0 { ExitCode::SUCCESS } else { ExitCode::from(code.clamp(1, 255) as u8) }
}

/// What a local call prints, and its exit status.
pub fn printed(outcome: Result<Option<serde_json::Value>, CniError>, stdin: &[u8]) -> (String, i32) {
    match outcome {
        Ok(Some(v)) => (v.to_string(), 0),
        Ok(None) => (String::new(), 0),
        Err(e) => {
            tracing::error!("{e}");
            (e.to_json(&error_version(stdin)).to_string(), 1)
        }
    }
}

/// The version errors are printed in: the config's when it has a valid one.
pub fn error_version(stdin: &[u8]) -> String {
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

/// A call parsed and validated, ready to run.
pub struct Request {
    pub command: Command,
    pub call: Arc<Call>,
    pub target: Target,
    valid: Option<Vec<(String, String)>>,
}

/// What a parsed call needs next.
pub enum Prepared {
    /// Answered without running anything (VERSION).
    Reply(serde_json::Value),
    Run(Request),
}

/// Parses and validates one call: the command, the CNI_* variables (read
/// through `vars`) and the config on stdin.
pub fn prepare(
    command: &str,
    argv0: &str,
    stdin: &[u8],
    vars: impl Fn(&str) -> Option<String>,
    modules: &ModuleDir,
) -> Result<Prepared, CniError> {
    let command = Command::parse(command)?;
    if command == Command::Version {
        return Ok(Prepared::Reply(version_reply(stdin)));
    }
    let env = CniEnv::from_vars(command, vars)?;
    let conf =
        if command == Command::Del { crate::config::parse_for_del(stdin)? } else { crate::config::parse(stdin)? };
    let allowed = match command {
        Command::Check => conf.version >= Version::V0_4_0,
        Command::Status | Command::Gc => conf.version >= Version::V1_1_0,
        _ => true,
    };
    if !allowed {
        return Err(CniError::new(
            Code::IncompatibleVersion,
            format!("config version {} does not allow {}", conf.cni_version, command.as_str()),
        ));
    }
    let path = modules.resolve_plugin(argv0, &conf.kind, conf.plugin.as_deref())?;
    let target = Target { path, sha256: conf.plugin_sha256.clone(), limits: conf.limits, role: None };
    let valid = (command == Command::Gc).then(|| conf.valid_attachments.clone());
    Ok(Prepared::Run(Request { command, call: Arc::new(Call { env, conf }), target, valid }))
}

impl Request {
    /// The Wasm modules this call will run: the plugin, its IPAM when that
    /// is a Wasm module, and its network policy module.
    pub fn modules(&self, dir: &ModuleDir) -> Vec<(PathBuf, Option<String>)> {
        let mut modules = vec![(self.target.path.clone(), self.target.sha256.clone())];
        if let Some(ModuleSource::Wasm { path, sha256 }) =
            self.call.conf.ipam.as_ref().and_then(|i| dir.resolve_ipam(i).ok())
        {
            modules.push((path, sha256));
        }
        if let Some(path) = self.call.conf.network_policy.as_ref().and_then(|p| dir.locate(&p.module).ok()) {
            modules.push((path, None));
        }
        modules
    }

    /// Runs the call; `Ok(None)` means success with nothing to print.
    pub async fn execute(self, runner: &Arc<Runner>) -> Result<Option<serde_json::Value>, CniError> {
        let call = match self.command {
            Command::Add => admission::admit(runner, self.call).await?,
            _ => self.call,
        };
        let deadline = Instant::now() + self.target.limits.timeout;
        let result = runner.run(&self.target, call.clone(), self.command, self.valid, None).await?;
        let state_dir = runner.state_dir();
        match self.command {
            Command::Add => crate::attachments::record(state_dir, &call, result.as_ref()),
            Command::Del => crate::attachments::forget(state_dir, &call),
            Command::Gc => crate::attachments::collect(state_dir, &call, &call.conf.valid_attachments),
            _ => {}
        }
        if call.conf.network_policy.is_some() && matches!(self.command, Command::Add | Command::Del | Command::Gc) {
            police(self.command, &self.target, runner, &call, deadline).await?;
        }
        Ok(result.map(|r| r.to_version(&call.conf.cni_version, call.conf.version)))
    }
}

/// Brings the node's network policy up to date with a call that changed
/// its pods. A pod whose policy cannot be put in place is not left
/// attached: its ADD is undone and fails. DEL and GC never fail for it (a
/// runtime does not retry them); the next pass removes what this one could not.
async fn police(
    command: Command,
    target: &Target,
    runner: &Arc<Runner>,
    call: &Arc<Call>,
    deadline: Instant,
) -> Result<(), CniError> {
    let Err(e) = crate::netpol::enforce::enforce(runner, target.limits, deadline).await else {
        return Ok(());
    };
    if command != Command::Add {
        tracing::warn!("network policy not updated after {}: {}", command.as_str(), e.msg);
        return Ok(());
    }
    if let Err(undo) = runner.run(target, call.clone(), Command::Del, None, None).await {
        tracing::warn!("undoing the ADD its policy failed: {}", undo.msg);
    }
    crate::attachments::forget(runner.state_dir(), call);
    Err(CniError::from_parts(e.code, format!("network policy: {}", e.msg), e.details))
}

/// Handles one call in this process; `Ok(None)` means success with nothing to print.
pub fn handle(
    command: &str,
    argv0: &str,
    stdin: &[u8],
    vars: impl Fn(&str) -> Option<String>,
) -> Result<Option<serde_json::Value>, CniError> {
    // Where modules, their artifacts and per-attachment state live: read
    // here, once, and passed down.
    let dir = |key, default: &str| vars(key).map(PathBuf::from).unwrap_or_else(|| default.into());
    let modules = ModuleDir::new(dir("WASMCNI_MODULE_DIR", crate::config::DEFAULT_MODULE_DIR));
    let cache = Cache::new(dir("WASMCNI_CACHE_DIR", wasmcni_engine::cache::DEFAULT_CACHE_DIR));
    let state_dir = dir("WASMCNI_STATE_DIR", crate::attachments::DEFAULT_STATE_DIR);
    let request = match prepare(command, argv0, stdin, vars, &modules)? {
        Prepared::Reply(v) => return Ok(Some(v)),
        Prepared::Run(r) => r,
    };
    let early = request.modules(&modules);
    let runner = Runner::new(Host::OneCall, early, state_dir, cache, modules)?;
    tracing::debug!("engine ready");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CniError::io(format!("cannot start the runtime: {e}")))?;
    let outcome = runtime.block_on(request.execute(&runner));
    // The process exits once the answer is printed: dropping the engine,
    // its modules and the runtime first would only delay that answer.
    std::mem::forget(runner);
    std::mem::forget(runtime);
    outcome
}
