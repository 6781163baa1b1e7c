//! A record of every attachment wasmcni added, written by the front door on
//! a successful ADD and removed on DEL (like libcni's cache): what the
//! runtime passed (container, ifname, netns, CNI_ARGS, CNI_PATH, the
//! plugin's config as received) and the result. Whatever needs to act on
//! running containers later reads these, rather than hooking into ADD and
//! DEL: the daemon re-applies a changed `rulesFile` to the attachments whose
//! config names one, running that plugin alone, DEL with the rules it last
//! applied, then ADD with the new ones, in the container's netns, in the
//! attachment's turn (never interleaved with the runtime's own calls);
//! network policy reads them for the pods this node serves.
//! Containers not attached through wasmcni have no record and are never
//! touched.
//!
//! Layout: `<state_dir>/attachments/<network>/<type>/<digest>.json`, the
//! digest of (container ID, ifname), so any ID fits a file name; written
//! whole (staged, then renamed). A record is removed by DEL, by GC when the
//! runtime no longer lists its attachment, and by the daemon once its netns
//! is gone. Records of older releases (`<network>/<container>-<ifname>.json`,
//! kept only for a `rulesFile`) are read and removed the same way.

use crate::cni::call::Call;
use crate::cni::error::CniError;
use crate::cni::result::CniResult;
use crate::cni::{Prepared, prepare};
use crate::config::rules_file;
use crate::daemon::ordering::Attachments;
use crate::runner::Runner;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;
use std::collections::HashMap;
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
    #[serde(default)]
    result: Option<CniResult>,
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("attachments")
}

/// The directory of one network's records of one plugin type. A type that
/// is not a plain file name (it comes from the config) is named by digest.
fn kind_dir(state_dir: &Path, network: &str, kind: &str) -> PathBuf {
    let plain = crate::config::valid_module_name(kind);
    let kind = if plain { kind.to_owned() } else { hex::encode(sha2::Sha256::digest(kind))[..32].to_owned() };
    dir(state_dir).join(network).join(kind)
}

fn record_path(state_dir: &Path, call: &Call) -> PathBuf {
    let digest = sha2::Sha256::digest(format!("{}/{}", call.env.container_id, call.env.ifname));
    kind_dir(state_dir, &call.conf.name, &call.conf.kind).join(format!("{}.json", &hex::encode(digest)[..32]))
}

/// Where an older release kept the record (it fits only short IDs).
fn legacy_path(state_dir: &Path, call: &Call) -> PathBuf {
    dir(state_dir).join(&call.conf.name).join(format!("{}-{}.json", call.env.container_id, call.env.ifname))
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
    write(&record_path(state_dir, call), &serde_json::to_vec(&attachment).expect("serializable"));
}

/// Writes a record whole; a failure costs only the live updates.
fn write(path: &Path, bytes: &[u8]) {
    // A name of this process's own: two runtimes' calls may race here.
    let staged = path.with_extension(format!("staged{}", std::process::id()));
    let written = std::fs::create_dir_all(path.parent().expect("in a directory"))
        .and_then(|()| std::fs::write(&staged, bytes))
        .and_then(|()| std::fs::rename(&staged, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&staged);
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

fn remove(path: &Path) {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => tracing::warn!("forgetting an attachment: {e}"),
        _ => {}
    }
}

/// Forgets an attachment on DEL.
pub fn forget(state_dir: &Path, call: &Call) {
    remove(&record_path(state_dir, call));
    remove(&legacy_path(state_dir, call));
}

/// GC: forgets this network's records of this plugin whose attachment the
/// runtime no longer lists in `valid`.
pub fn collect(state_dir: &Path, call: &Call, valid: &[(String, String)]) {
    for path in json_files(&kind_dir(state_dir, &call.conf.name, &call.conf.kind)) {
        if let Some(a) = read(&path)
            && !valid.iter().any(|(id, ifname)| *id == a.container_id && *ifname == a.ifname)
        {
            remove(&path);
        }
    }
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path());
    entries.filter(|p| p.extension().is_some_and(|e| e == "json")).collect()
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect()
}

/// Every record: `<network>/<type>/*.json`, and an older release's `<network>/*.json`.
fn records(state_dir: &Path) -> Vec<PathBuf> {
    let networks = subdirs(&dir(state_dir));
    let current = networks.iter().flat_map(|n| subdirs(n)).flat_map(|k| json_files(&k));
    current.chain(networks.iter().flat_map(|n| json_files(n))).collect()
}

fn read(path: &Path) -> Option<Attachment> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// What a record tells network policy about an attachment.
pub struct Recorded {
    /// CNI_ARGS as the runtime passed them (the pod's namespace and name).
    pub args: String,
    /// The plugin's config (its `networkPolicy`).
    pub config: Value,
    pub result: Option<CniResult>,
}

/// Every attachment recorded in `state_dir`.
pub fn recorded(state_dir: &Path) -> Vec<Recorded> {
    let all = records(state_dir).into_iter().filter_map(|p| read(&p));
    all.map(|a| Recorded { args: a.args, config: a.config, result: a.result }).collect()
}

/// Rules that failed to apply, by record: not tried again (nor reported
/// again) until the file changes.
pub type Rejected = HashMap<PathBuf, Value>;

/// Applies every changed rules file to the attachments that read it, each
/// in its attachment's turn: never interleaved with a runtime's ADD or DEL.
pub async fn refresh(runner: &Arc<Runner>, turns: &Arc<Attachments>, rejected: &mut Rejected) {
    for path in records(runner.state_dir()) {
        if let Err(e) = refresh_one(runner, turns, &path, rejected).await {
            tracing::error!("applying changed rules ({}): {}", path.display(), e.msg);
        }
    }
    rejected.retain(|path, _| path.exists());
}

async fn refresh_one(
    runner: &Arc<Runner>,
    turns: &Arc<Attachments>,
    path: &Path,
    rejected: &mut Rejected,
) -> Result<(), CniError> {
    let Ok(bytes) = std::fs::read(path) else { return Ok(()) };
    let a: Attachment = serde_json::from_slice(&bytes).map_err(|e| CniError::io(format!("corrupt record: {e}")))?;
    if !Path::new(&a.netns).exists() {
        tracing::info!("container {} is gone: forgetting it", a.container_id);
        remove(path);
        return Ok(());
    }
    let Some(file) = a.config["rulesFile"].as_str() else { return Ok(()) };
    let rules = rules_file::read(Path::new(file))?;
    if a.rules.as_ref() == Some(&rules) {
        rejected.remove(path);
        return Ok(());
    }
    if rejected.get(path) == Some(&rules) {
        return Ok(());
    }
    let network = a.config["name"].as_str().unwrap_or_default().to_owned();
    let _turn = turns.turn((network, a.container_id.clone(), a.ifname.clone())).await;
    // A runtime's DEL may have had the turn first: then there is nothing to update.
    if std::fs::read(path).ok().as_deref() != Some(&bytes[..]) {
        return Ok(());
    }
    tracing::info!("rules in {file} changed: applying them to container {} ({})", a.container_id, a.ifname);
    let mut old = a.config.clone();
    old.as_object_mut().map(|o| o.remove("rulesFile"));
    old["rules"] = a.rules.clone().unwrap_or(Value::Null);
    run(runner, &a, "DEL", &old).await?;
    let Err(e) = run(runner, &a, "ADD", &a.config).await else {
        rejected.remove(path);
        return Ok(());
    };
    // The new rules do not apply (a failed ADD undoes itself): the old ones
    // go back, and so does the record as it was. Once they are back, the new
    // rules wait for the file to change, reported once, here; if they could
    // not be put back, the next tick tries again.
    let restored = run(runner, &a, "ADD", &old).await;
    write(path, &bytes);
    let kept = match restored {
        Ok(()) => {
            rejected.insert(path.to_owned(), rules);
            format!("the rules it had are kept until {file} changes")
        }
        Err(r) => format!("putting back the rules it had failed too, trying again: {}", r.msg),
    };
    Err(CniError::from_parts(e.code, format!("{}; {kept}", e.msg), e.details))
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
    match prepare(command, "wasmcni", config.to_string().as_bytes(), vars, runner.module_dir())? {
        Prepared::Run(request) => request.execute(runner).await.map(|_| ()),
        Prepared::Reply(_) => Ok(()),
    }
}
