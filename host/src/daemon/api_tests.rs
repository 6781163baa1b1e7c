//! The daemon's HTTP handlers, served in-process against a runner with no
//! modules (no root, no kernel): health, VERSION, metrics, the token, the
//! refusals a bad request gets, and draining.

use super::api::{AppState, router};
use super::budget::Budget;
use crate::config::ModuleDir;
use crate::runner::{Host, Runner};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;
use wasmcni_engine::cache::Cache;

/// A scratch directory for the daemon's state, cache and modules.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("wasmcni-api-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("modules")).unwrap();
        Scratch(dir)
    }

    fn state(&self) -> Arc<AppState> {
        let (cache, modules) = (Cache::new(self.0.join("cache")), ModuleDir::new(self.0.join("modules")));
        let runner = Runner::new(Host::Daemon, Vec::new(), self.0.join("state"), cache, modules);
        Arc::new(AppState::new(runner.unwrap(), self.0.join("modules"), Budget::for_fds(1024, 8), &self.0))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn cni(command: &str, stdin: &str) -> Request<Body> {
    let env = json!({"CNI_COMMAND": command, "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/none",
        "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"});
    let body = json!({"command": command, "argv0": "wasmcni", "env": env, "stdin": stdin});
    Request::post("/v1/cni")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_version_are_served_without_modules_and_counted() {
    let scratch = Scratch::new("health");
    let app = router(scratch.state(), None);
    let (status, body) = send(&app, get("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((health["status"].as_str(), health["modules"].as_u64()), (Some("ok"), Some(0)));

    let (status, body) = send(&app, cni("VERSION", r#"{"cniVersion": "1.0.0"}"#)).await;
    assert_eq!(status, StatusCode::OK);
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["exit_code"], 0);
    let version: Value = serde_json::from_str(reply["stdout"].as_str().unwrap()).unwrap();
    assert!(version["supportedVersions"].as_array().unwrap().contains(&json!("1.1.0")), "{version}");

    let (_, metrics) = send(&app, get("/metrics")).await;
    assert!(
        metrics.contains(r#"wasmcni_requests_total{command="VERSION",plugin="",outcome="success"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_s_own_error_is_its_cni_error_in_the_reply() {
    let scratch = Scratch::new("cnierr");
    let app = router(scratch.state(), None);
    let (status, body) = send(&app, cni("ADD", "{not json")).await;
    assert_eq!(status, StatusCode::OK, "the call was served; its answer is the error");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["exit_code"], 1);
    let err: Value = serde_json::from_str(reply["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(err["code"], 6, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_every_endpoint() {
    let scratch = Scratch::new("token");
    let app = router(scratch.state(), Some("0123456789abcdef".into()));
    assert_eq!(send(&app, get("/healthz")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&app, cni("VERSION", "{}")).await.0, StatusCode::UNAUTHORIZED);
    let authorized = Request::get("/healthz").header(header::AUTHORIZATION, "Bearer 0123456789abcdef");
    assert_eq!(send(&app, authorized.body(Body::empty()).unwrap()).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_their_status() {
    let scratch = Scratch::new("bad");
    let app = router(scratch.state(), None);
    let garbage = Request::post("/v1/cni").header(header::CONTENT_TYPE, "application/json").body(Body::from("nope"));
    assert!(send(&app, garbage.unwrap()).await.0.is_client_error());
    let put =
        |name: &str, bytes: &'static [u8]| Request::put(format!("/v1/plugins/{name}")).body(Body::from(bytes)).unwrap();
    assert_eq!(send(&app, put("..", b"x")).await.0, StatusCode::BAD_REQUEST);
    let (status, body) = send(&app, put("ipam", b"not a component")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(!scratch.0.join("modules/ipam.wasm").exists(), "a refused upload was written");
    assert_eq!(send(&app, get("/v1/networks/bad%20name/leases")).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(send(&app, get("/nope")).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_daemon_refuses_calls_and_says_so() {
    let scratch = Scratch::new("drain");
    let state = scratch.state();
    let app = router(state.clone(), None);
    state.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(send(&app, cni("VERSION", "{}")).await.0, StatusCode::SERVICE_UNAVAILABLE);
    let (_, body) = send(&app, get("/healthz")).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["status"], "draining");
}
