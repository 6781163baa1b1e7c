//! A record of every attachment wasmcni added, written by the front door on
//! a successful ADD and removed on DEL (like libcni's cache): what the
//! runtime passed (container, ifname, netns, CNI_ARGS, CNI_PATH, the
//! plugin's config as received) and the result. Whatever needs to act on
//! running containers later reads these, rather than hooking into ADD and
//! DEL: the daemon re-applies a changed `rulesFile` to the attachments whose
//! config names one, running that plugin alone, DEL with the rules it last
//! applied, then ADD with the new ones, in the container's netns.
//! Containers not attached through wasmcni have no record and are never
//! touched.
//!
//! Layout: `<state_dir>/attachments/<network>/<type>/<digest>.json`, the
//! digest of (container ID, ifname), so any ID fits a file name; written
//! whole (staged, then renamed).

use crate::cni::call::Call;
use crate::cni::error::CniError;
use crate::cni::result::CniResult;
use crate::cni::{Prepared, prepare};
use crate::config::rules_file;
use crate::engine::Runner;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Default directory of the per-attachment state; `WASMCNI_STATE_DIR` overrides it.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/wasmcni";

#[derive(Debug, Serialize, Deserialize)]
struct Attachment {
    container_id: String,
    ifname: String,
    netns: String,
    args: String,
    cni_path: String,
    /// The plugin's config as the runtime sent it (with `rulesFile`, not its rules).
    config: Value,
    /// The rules last applied (read from `rulesFile`), when the config names one.
    rules: Option<Value>,
    /// What the ADD returned, in the model.
    result: Option<CniResult>,
}

/// The directory of per-attachment state, read once, at the edge.
pub fn state_dir() -> PathBuf {
    std::env::var_os("WASMCNI_STATE_DIR").map(PathBuf::from).unwrap_or_else(|| DEFAULT_STATE_DIR.into())
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("attachments")
}

fn record_path(state_dir: &Path, call: &Call) -> PathBuf {
    let digest = sha2::Sha256::digest(format!("{}/{}", call.env.container_id, call.env.ifname));
    dir(state_dir).join(&call.conf.name).join(&call.conf.kind).join(format!("{}.json", &hex::encode(digest)[..32]))
}

/// Records a successful ADD.
pub fn record(state_dir: &Path, call: &Call, result: Option<&CniResult>) {
    let Some(netns) = call.env.netns.clone() else { return };
    let config: Value = serde_json::from_str(&call.conf.raw).unwrap_or_default();
    let attachment = Attachment {
        container_id: call.env.container_id.clone(),
        ifname: call.env.ifname.clone(),
        netns,
        args: call.env.args_raw.clone(),
        cni_path: call.env.path.join(":"),
        rules: call.conf.rules_file.as_ref().and_then(|_| config.get("rules").cloned()),
        config: original(config),
        result: result.cloned(),
    };
    let path = record_path(state_dir, call);
    let staged = path.with_extension("staged");
    let written = std::fs::create_dir_all(path.parent().expect("in a directory"))
        .and_then(|()| std::fs::write(&staged, serde_json::to_vec(&attachment).expect("serializable")))
        .and_then(|()| std::fs::rename(&staged, &path));
    if let Err(e) = written {
        tracing::warn!("recording attachment {}: {e}", path.display());
    }
}

/// The config as the runtime wrote it: the rules a `rulesFile` resolved to
/// are the record's `rules`, not part of it.
fn original(mut config: Value) -> Value {
    if config.get("rulesFile").is_some()
        && let Some(o) = config.as_object_mut()
    {
        o.remove("rules");
    }
    config
}

/// Forgets an attachment on DEL.
pub fn forget(state_dir: &Path, call: &Call) {
    match std::fs::remove_file(record_path(state_dir, call)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => tracing::warn!("forgetting an attachment: {e}"),
        _ => {}
    }
}

fn records(state_dir: &Path) -> Vec<PathBuf> {
    let listed = |p: &Path| std::fs::read_dir(p).into_iter().flatten().flatten().map(|e| e.path()).collect::<Vec<_>>();
    listed(&dir(state_dir))
        .iter()
        .flat_map(|network| listed(network))
        .flat_map(|kind| listed(&kind))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

/// Applies every changed rules file to the attachments that read it.
pub async fn refresh(runner: &Arc<Runner>) {
    for path in records(runner.state_dir()) {
        if let Err(e) = refresh_one(runner, &path).await {
            tracing::error!("applying changed rules ({}): {}", path.display(), e.msg);
        }
    }
}

async fn refresh_one(runner: &Arc<Runner>, path: &Path) -> Result<(), CniError> {
    let Ok(a) = std::fs::read(path).map(|b| serde_json::from_slice::<Attachment>(&b)) else { return Ok(()) };
    let a = a.map_err(|e| CniError::io(format!("corrupt record: {e}")))?;
    let Some(file) = a.config["rulesFile"].as_str() else { return Ok(()) };
    if !Path::new(&a.netns).exists() {
        tracing::info!("container {} is gone: forgetting it", a.container_id);
        let _ = std::fs::remove_file(path);
        return Ok(());
    }
    let rules = rules_file::read(Path::new(file))?;
    if a.rules.as_ref() == Some(&rules) {
        return Ok(());
    }
    tracing::info!("rules in {file} changed: applying them to container {} ({})", a.container_id, a.ifname);
    let mut old = a.config.clone();
    old.as_object_mut().map(|o| o.remove("rulesFile"));
    old["rules"] = a.rules.clone().unwrap_or(Value::Null);
    run(runner, &a, "DEL", &old).await?;
    // The DEL forgot the record; the ADD writes it again with the new rules.
    run(runner, &a, "ADD", &a.config).await
}

async fn run(runner: &Arc<Runner>, a: &Attachment, command: &str, config: &Value) -> Result<(), CniError> {
    let vars = |k: &str| match k {
        "CNI_CONTAINERID" => Some(a.container_id.clone()),
        "CNI_NETNS" => Some(a.netns.clone()),
        "CNI_IFNAME" => Some(a.ifname.clone()),
        "CNI_ARGS" => Some(a.args.clone()),
        "CNI_PATH" => Some(a.cni_path.clone()),
        _ => None,
    };
    match prepare(command, "wasmcni", config.to_string().as_bytes(), vars)? {
        Prepared::Run(request) => request.execute(runner).await.map(|_| ()),
        Prepared::Reply(_) => Ok(()),
    }
}
