//! The HTTP API (JSON, under /v1) and the state it serves from.

use super::budget::Budget;
use super::metrics::{CommandLabels, Metrics, NetworkLabels, PluginLabels, RequestLabels};
use super::ordering::Attachments;
use super::protocol::{CniReply, CniRequest};
use crate::cni::error::{CniError, Failure};
use crate::cni::{self, Prepared, version};
use crate::runner::Runner;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};
use tower_http::timeout::TimeoutLayer;
use wasmcni_caps::{DEFAULT_DATA_DIR, read_leases};
use wasmcni_engine::module_name;

pub struct AppState {
    pub runner: Arc<Runner>,
    pub module_dir: PathBuf,
    pub metrics: Metrics,
    /// Set on SIGTERM: new calls are refused while in-flight ones finish.
    pub draining: AtomicBool,
    /// Held while a module is being swapped, by the API or the directory
    /// watcher, so the two never both swap in the same file.
    pub swapping: tokio::sync::Mutex<()>,
    budget: Budget,
    /// Whose turn it is on each attachment (API calls and live rule updates).
    pub(super) attachments: Arc<Attachments>,
    /// Lease directory of every network served, for /leases and /metrics;
    /// kept in `networks_file` so a restarted daemon still knows them.
    networks: std::sync::Mutex<HashMap<String, PathBuf>>,
    networks_file: PathBuf,
}

impl AppState {
    pub fn new(runner: Arc<Runner>, module_dir: PathBuf, budget: Budget, state_dir: &std::path::Path) -> AppState {
        let networks_file = state_dir.join("networks.json");
        let networks =
            std::fs::read(&networks_file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        AppState {
            runner,
            module_dir,
            metrics: Metrics::new(),
            draining: AtomicBool::new(false),
            swapping: tokio::sync::Mutex::new(()),
            budget,
            attachments: Arc::default(),
            networks: std::sync::Mutex::new(networks),
            networks_file,
        }
    }

    /// Remembers where `network` keeps its leases (on disk when that is news).
    fn served(&self, network: &str, leases: PathBuf) {
        let mut networks = self.networks.lock().expect("not poisoned");
        if networks.get(network) == Some(&leases) {
            return;
        }
        networks.insert(network.to_owned(), leases);
        let tmp = self.networks_file.with_extension("json.tmp");
        let saved = self.networks_file.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| {
            std::fs::write(&tmp, serde_json::to_vec(&*networks).expect("plain map"))?;
            std::fs::rename(&tmp, &self.networks_file)
        });
        if let Err(e) = saved {
            tracing::warn!("recording the networks served in {}: {e}", self.networks_file.display());
        }
    }
}

/// A 4xx/5xx with a JSON body.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

const CNI_BODY_LIMIT: usize = 1 << 20;
const MODULE_BODY_LIMIT: usize = 64 << 20;
const REQUEST_DEADLINE: Duration = Duration::from_secs(120);

pub fn router(state: Arc<AppState>, token: Option<String>) -> Router {
    let api = Router::new()
        .route("/v1/cni", post(cni_call).layer(DefaultBodyLimit::max(CNI_BODY_LIMIT)))
        .route("/v1/plugins", get(list_plugins))
        .route("/v1/plugins/{name}", put(put_plugin).layer(DefaultBodyLimit::max(MODULE_BODY_LIMIT)))
        .route("/v1/networks/{name}/leases", get(leases))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_DEADLINE))
        .with_state(state);
    match token {
        Some(token) => api.layer(middleware::from_fn(move |req: Request, next: Next| {
            let authorized = bearer_matches(req.headers().get(header::AUTHORIZATION), &token);
            async move {
                if authorized {
                    next.run(req).await
                } else {
                    ApiError(StatusCode::UNAUTHORIZED, "a valid bearer token is required".into()).into_response()
                }
            }
        })),
        None => api,
    }
}

/// `Authorization: Bearer <token>`, the scheme in any case (RFC 7235), the
/// token compared in constant time.
fn bearer_matches(header: Option<&axum::http::HeaderValue>, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some((scheme, given)) = header.and_then(|v| v.to_str().ok()).and_then(|v| v.split_once(' ')) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
}

fn reply(result: Result<Option<Value>, CniError>, cni_version: &str) -> CniReply {
    match result {
        Ok(Some(v)) => CniReply { exit_code: 0, stdout: v.to_string() },
        Ok(None) => CniReply { exit_code: 0, stdout: String::new() },
        Err(e) => CniReply { exit_code: 1, stdout: e.to_json(cni_version).to_string() },
    }
}

async fn cni_call(
    State(state): State<Arc<AppState>>,
    body: Result<Json<CniRequest>, JsonRejection>,
) -> Result<Json<CniReply>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError(e.status(), e.body_text()))?;
    if state.draining.load(Ordering::SeqCst) {
        return Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, "the daemon is shutting down".into()));
    }
    let started = Instant::now();
    let version = cni::error_version(req.stdin.as_bytes());
    let vars = |k: &str| req.env.get(k).cloned();
    let prepared = cni::prepare(&req.command, &req.argv0, req.stdin.as_bytes(), vars, state.runner.module_dir());
    let result = match prepared {
        Ok(Prepared::Reply(v)) => record(&state, &req.command, String::new(), started, Ok(Some(v))),
        Err(e) => record(&state, &req.command, String::new(), started, Err(e)),
        Ok(Prepared::Run(request)) => {
            let network = request.call.conf.name.clone();
            let data_dir = request.call.conf.ipam.as_ref().and_then(|i| i.get("dataDir")).and_then(Value::as_str);
            state.served(&network, PathBuf::from(data_dir.unwrap_or(DEFAULT_DATA_DIR)).join(&network));
            run_call(&state, &req.command, started, request).await
        }
    };
    Ok(Json(reply(result, &version)))
}

/// Counts a call's outcome and latency, and passes its result on.
fn record(
    state: &AppState,
    command: &str,
    plugin: String,
    started: Instant,
    result: Result<Option<Value>, CniError>,
) -> Result<Option<Value>, CniError> {
    let outcome = match &result {
        Ok(_) => "success".to_owned(),
        Err(e) => format!("error-{}", e.code),
    };
    if let Err(CniError { failure: Some(f), .. }) = &result {
        let family = if *f == Failure::Timeout { &state.metrics.timeouts } else { &state.metrics.traps };
        family.get_or_create(&PluginLabels { plugin: plugin.clone() }).inc();
    }
    let command = command.to_owned();
    state.metrics.requests.get_or_create(&RequestLabels { command: command.clone(), plugin, outcome }).inc();
    state.metrics.latency.get_or_create(&CommandLabels { command }).observe(started.elapsed().as_secs_f64());
    result
}

/// Runs one call within the budget, after the calls on its attachment that
/// came first. Calls on one network meet only there and where the spec needs
/// a lock (the IPAM store, see Runner), so ADDs and DELs of others overlap.
/// The outcome is counted on the call's thread, so also for a call whose
/// client went away.
async fn run_call(
    state: &Arc<AppState>,
    command: &str,
    started: Instant,
    request: cni::Request,
) -> Result<Option<Value>, CniError> {
    let plugin = module_name(&request.target.path);
    let slot = match state.budget.admit(request.command, REQUEST_DEADLINE).await {
        Ok(slot) => slot,
        Err(e) => return record(state, command, plugin, started, Err(e)),
    };
    let env = &request.call.env;
    let key = (request.call.conf.name.clone(), env.container_id.clone(), env.ifname.clone());
    let turn = state.attachments.turn(key).await;
    // On a thread of its own: guest code never holds up the API's workers
    // (a looping module spins there until its deadline, niced), and a shim
    // that goes away (or the HTTP deadline) cannot cancel a call halfway,
    // skipping its undo. The slot and the turn are held until it ends.
    let (state, command, runtime) = (state.clone(), command.to_owned(), tokio::runtime::Handle::current());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name(crate::runner::CALL_THREAD.into()).spawn({
        let (state, command, plugin) = (state.clone(), command.clone(), plugin.clone());
        move || {
            let result = runtime.block_on(request.execute(&state.runner));
            drop((turn, slot));
            let _ = done_tx.send(record(&state, &command, plugin, started, result));
        }
    });
    if let Err(e) = spawned {
        return record(&state, &command, plugin, started, Err(CniError::from_io("starting the call's thread", &e)));
    }
    done_rx.await.unwrap_or_else(|_| Err(CniError::io("the call's thread failed")))
}

fn plugin_json(m: &wasmcni_caps::Module) -> Value {
    json!({
        "name": m.name,
        "path": m.path,
        "sha256": m.sha256,
        "world": m.info.world_name(),
        "witVersion": m.info.wit_version,
        "loadedAt": m.loaded_at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default(),
        "calls": m.calls(),
    })
}

async fn list_plugins(State(state): State<Arc<AppState>>) -> Json<Value> {
    let mut modules = state.runner.modules();
    modules.sort_by(|a, b| a.name.cmp(&b.name));
    Json(Value::Array(modules.iter().map(|m| plugin_json(m)).collect()))
}

/// Uploads a module: compiled and checked first, then written to the module
/// directory and swapped in; a module that fails is rejected and the old
/// one keeps serving.
async fn put_plugin(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    if name.len() > 64 || !crate::config::valid_module_name(&name) {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("invalid module name {name:?}")));
    }
    let path = state.module_dir.join(format!("{name}.wasm"));
    let _swapping = state.swapping.lock().await;
    let staged = tokio::task::spawn_blocking({
        let state = state.clone();
        let path = path.clone();
        move || super::watch::stage(&state, &path, &body)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match staged {
        Ok(module) => {
            let info = plugin_json(&module);
            let old = state.runner.replace(module);
            state.metrics.swap(true);
            tracing::info!(module = %name, from = ?old.map(|m| m.sha256.clone()), "module swapped by API");
            Ok(Json(info))
        }
        Err(e) => {
            state.metrics.swap(false);
            tracing::warn!(module = %name, "upload rejected: {}", e.msg);
            Err(ApiError(StatusCode::BAD_REQUEST, e.msg))
        }
    }
}

async fn leases(State(state): State<Arc<AppState>>, Path(network): Path<String>) -> Result<Json<Value>, ApiError> {
    crate::cni::env::validate_network_name(&network).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.msg))?;
    let known = state.networks.lock().expect("not poisoned").get(&network).cloned();
    let dir = known.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR).join(&network));
    let leases = read_leases(&dir).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let list: Vec<Value> = leases
        .iter()
        .map(|l| json!({"ip": l.ip.to_string(), "containerID": l.container_id, "ifname": l.ifname}))
        .collect();
    Ok(Json(json!({ "network": network, "leases": list })))
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let status = if state.draining.load(Ordering::SeqCst) { "draining" } else { "ok" };
    let body = json!({
        "status": status,
        "modules": state.runner.modules().len(),
        "cniVersions": version::SUPPORTED,
        "callsInFlight": state.budget.in_flight(),
        "maxCalls": state.budget.max_calls,
    });
    Json(body).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let networks: Vec<(String, PathBuf)> =
        state.networks.lock().expect("not poisoned").iter().map(|(n, d)| (n.clone(), d.clone())).collect();
    for (network, dir) in networks {
        let count = read_leases(&dir).map(|l| l.len()).unwrap_or_default();
        state.metrics.leases.get_or_create(&NetworkLabels { network }).set(count as i64);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_exact() {
        let token = "0123456789abcdef";
        let ok = |v: &str| bearer_matches(Some(&HeaderValue::from_str(v).unwrap()), token);
        assert!(ok("Bearer 0123456789abcdef"));
        assert!(ok("bearer 0123456789abcdef"));
        assert!(ok("BEARER 0123456789abcdef"));
        assert!(!ok("Bearer 0123456789abcde"));
        assert!(!ok("Bearer 0123456789abcdefX"));
        assert!(!ok("Basic 0123456789abcdef"));
        assert!(!ok("0123456789abcdef"));
        assert!(!bearer_matches(None, token));
    }
}
