//! Modules from the module directory: loaded at start, reloaded when a file
//! is replaced, and staged from uploads. A module that does not compile or
//! fits no world is rejected and the one before keeps serving. The same tick
//! applies changed rules files to the attachments that read them, and the
//! node's network policy when its inputs (manifests, etcd objects, pods,
//! the module) changed.

use super::api::AppState;
use crate::cni::error::CniError;
use crate::config::Limits;
use crate::netpol::enforce::enforce;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmcni_caps::Module;
use wasmcni_engine::cache;
use wasmtime::component::Component;

/// Compiles and links an uploaded module, then writes it to `path` (where
/// one-shot calls find it) and its artifact to the cache. Nothing is served
/// from it until the caller swaps it in.
pub fn stage(state: &AppState, path: &Path, bytes: &[u8]) -> Result<Arc<Module>, CniError> {
    let engine = state.runner.engine();
    let sha256 = hex::encode(Sha256::digest(bytes));
    let component =
        Component::from_binary(engine, bytes).map_err(|e| CniError::config(format!("not a valid component: {e:#}")))?;
    let metadata = wasmcni_engine::metadata::read(bytes);
    let loaded = cache::Loaded { component: component.clone(), sha256: sha256.clone(), metadata, compiled: true };
    let module = state.runner.link(path, loaded)?;
    if let Err(e) = state.runner.cache().store_artifact(engine, &sha256, &component, module.info.metadata.as_ref()) {
        tracing::warn!("{e}");
    }
    let tmp = path.with_extension("wasm.upload");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| CniError::io(format!("cannot write {}: {e}", path.display())))?;
    Ok(module)
}

fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "wasm")).collect()
}

/// Loads every module file that is new or changed since `seen`.
pub async fn scan(state: &Arc<AppState>, seen: &mut HashMap<PathBuf, String>) {
    let _swapping = state.swapping.lock().await;
    for path in wasm_files(&state.module_dir) {
        let Some(stamp) = cache::file_stamp(&path) else { continue };
        if seen.get(&path) == Some(&stamp) {
            continue;
        }
        seen.insert(path.clone(), stamp);
        let (engine, cache) = (state.runner.engine().clone(), state.runner.cache().clone());
        let p = path.clone();
        let loaded = tokio::task::spawn_blocking(move || cache.load(&engine, &p, None)).await;
        let old = state.runner.served(&path);
        let linked = match loaded {
            Ok(Ok(l)) if old.as_ref().is_some_and(|o| o.sha256 == l.sha256) => continue,
            Ok(Ok(l)) => state.runner.link(&path, l),
            Ok(Err(e)) => Err(crate::runner::engine_error(e)),
            Err(e) => Err(CniError::io(e.to_string())),
        };
        match (linked, old) {
            (Ok(module), None) => {
                tracing::info!(module = %module.name, sha256 = %module.sha256, "loaded");
                state.runner.replace(module);
            }
            (Ok(module), Some(old)) => {
                tracing::info!(module = %module.name, from = %old.sha256, to = %module.sha256, "module file replaced: swapped");
                state.runner.replace(module);
                state.metrics.swap(true);
            }
            (Err(e), old) => {
                tracing::warn!(
                    "{} rejected, {}: {}",
                    path.display(),
                    if old.is_some() { "the previous version keeps serving" } else { "not loaded" },
                    e.msg
                );
                state.metrics.swap(false);
            }
        }
    }
}

pub async fn run(state: Arc<AppState>, every: Duration, mut seen: HashMap<PathBuf, String>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rejected = crate::attachments::Rejected::new();
    let mut policed = Policed::default();
    loop {
        tick.tick().await;
        scan(&state, &mut seen).await;
        crate::attachments::refresh(&state.runner, &state.attachments, &mut rejected).await;
        policed.pass(&state).await;
    }
}

/// What the watcher's network policy passes remember (the inputs last
/// applied are the runner's).
#[derive(Default)]
struct Policed {
    /// The last failure, reported once until it changes.
    failing: Option<String>,
}

impl Policed {
    async fn pass(&mut self, state: &AppState) {
        let limits = Limits::default();
        let deadline = Instant::now() + limits.timeout;
        match enforce(&state.runner, limits, deadline).await {
            Ok(applied) => {
                if applied {
                    state.metrics.netpol_update(true);
                }
                self.failing = None;
            }
            Err(e) => {
                if self.failing.as_ref() != Some(&e.msg) {
                    tracing::error!("network policy not updated: {}", e.msg);
                    state.metrics.netpol_update(false);
                }
                self.failing = Some(e.msg);
            }
        }
    }
}
