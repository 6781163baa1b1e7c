//! Attachments whose plugin reads its `rules` from a `rulesFile`, recorded on
//! ADD and forgotten on DEL, so that the daemon can apply a changed file to
//! running containers: that plugin alone runs DEL with the rules it last
//! applied, then ADD with the new ones, in the container's netns. Containers
//! not attached through wasmcni have no record and are never touched.

use crate::cni::call::Call;
use crate::cni::{Prepared, prepare};
use crate::config::rules_file;
use crate::engine::Runner;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Default directory of the records; `WASMCNI_STATE_DIR` overrides it.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/wasmcni";

#[derive(Debug, Serialize, Deserialize)]
struct Attachment {
    container_id: String,
    ifname: String,
    netns: String,
    args: String,
    cni_path: String,
    /// The plugin's config as the runtime sent it (with `rulesFile`).
    config: Value,
    /// The rules last applied.
    rules: Value,
}

/// The directory of per-attachment state, read once at the edge.
pub fn state_dir() -> PathBuf {
    std::env::var_os("WASMCNI_STATE_DIR").map(PathBuf::from).unwrap_or_else(|| DEFAULT_STATE_DIR.into())
}

fn dir() -> PathBuf {
    state_dir().join("attachments")
}

fn record_path(call: &Call) -> PathBuf {
    dir().join(&call.conf.name).join(format!("{}-{}.json", call.env.container_id, call.env.ifname))
}

/// The config of a call whose plugin reads a rules file.
fn live(call: &Call) -> Option<Value> {
    call.conf.rules_file.as_ref()?;
    serde_json::from_str::<Value>(&call.conf.raw).ok()
}

/// Records a successful ADD of a plugin that reads a rules file.
pub fn record(call: &Call) {
    let (Some(config), Some(netns)) = (live(call), call.env.netns.clone()) else { return };
    let attachment = Attachment {
        container_id: call.env.container_id.clone(),
        ifname: call.env.ifname.clone(),
        netns,
        args: call.env.args_raw.clone(),
        cni_path: call.env.path.join(":"),
        rules: config.get("rules").cloned().unwrap_or(Value::Null),
        config,
    };
    let path = record_path(call);
    let written = std::fs::create_dir_all(path.parent().expect("in a directory"))
        .and_then(|()| std::fs::write(&path, serde_json::to_vec(&attachment).expect("serializable")));
    if let Err(e) = written {
        tracing::warn!("recording {} for live rule updates: {e}", path.display());
    }
}

/// Forgets an attachment on DEL.
pub fn forget(call: &Call) {
    if live(call).is_some() {
        let _ = std::fs::remove_file(record_path(call));
    }
}

fn records() -> Vec<PathBuf> {
    let networks = std::fs::read_dir(dir()).into_iter().flatten().flatten();
    networks.flat_map(|n| std::fs::read_dir(n.path()).into_iter().flatten().flatten()).map(|e| e.path()).collect()
}

/// Applies every changed rules file to the attachments that read it.
pub async fn refresh(runner: &Arc<Runner>) {
    for path in records() {
        if let Err(e) = refresh_one(runner, &path).await {
            tracing::error!("applying changed rules ({}): {}", path.display(), e.msg);
        }
    }
}

async fn refresh_one(runner: &Arc<Runner>, path: &Path) -> Result<(), crate::cni::error::CniError> {
    let Ok(a) = std::fs::read(path).map(|b| serde_json::from_slice::<Attachment>(&b)) else { return Ok(()) };
    let a = a.map_err(|e| crate::cni::error::CniError::io(format!("corrupt record: {e}")))?;
    if !Path::new(&a.netns).exists() {
        tracing::info!("container {} is gone: forgetting it", a.container_id);
        let _ = std::fs::remove_file(path);
        return Ok(());
    }
    let file = a.config["rulesFile"].as_str().unwrap_or_default();
    let rules = rules_file::read(Path::new(file))?;
    if rules == a.rules {
        return Ok(());
    }
    tracing::info!("rules in {file} changed: applying them to container {} ({})", a.container_id, a.ifname);
    let mut old = a.config.clone();
    old.as_object_mut().map(|o| o.remove("rulesFile"));
    old["rules"] = a.rules.clone();
    run(runner, &a, "DEL", &old).await?;
    // The DEL forgot the record; the ADD writes it again with the new rules.
    run(runner, &a, "ADD", &a.config).await
}

async fn run(
    runner: &Arc<Runner>,
    a: &Attachment,
    command: &str,
    config: &Value,
) -> Result<(), crate::cni::error::CniError> {
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
