//! The shim: forwards a CNI call to the daemon over its unix socket.

use super::protocol::{CniReply, CniRequest};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::path::Path;
use std::time::Duration;

/// Why a forward did not produce a reply.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Nothing answered on the socket: the call never reached a daemon.
    #[error("no daemon at {0}")]
    Unavailable(String),
    /// The daemon took the call but did not finish it (it may have acted).
    #[error("the daemon failed during the call: {0}")]
    Broken(String),
}

async fn send(socket: &Path, body: Vec<u8>) -> Result<CniReply, ForwardError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| ForwardError::Unavailable(format!("{}: {e}", socket.display())))?;
    let broken = |e: &dyn std::fmt::Display| ForwardError::Broken(e.to_string());
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| broken(&e))?;
    tokio::spawn(conn);
    let request = hyper::Request::post("/v1/cni")
        .header(hyper::header::HOST, "wasmcni")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| broken(&e))?;
    let response = sender.send_request(request).await.map_err(|e| broken(&e))?;
    let status = response.status();
    let bytes = response.into_body().collect().await.map_err(|e| broken(&e))?.to_bytes();
    let text = || format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes));
    // 503: a draining daemon refused the call before acting on it.
    if status == hyper::StatusCode::SERVICE_UNAVAILABLE {
        return Err(ForwardError::Unavailable(text()));
    }
    if !status.is_success() {
        return Err(ForwardError::Broken(text()));
    }
    serde_json::from_slice(&bytes).map_err(|e| broken(&e))
}

/// Sends `request` to the daemon on `socket` and waits up to `deadline`.
pub fn forward(socket: &Path, request: &CniRequest, deadline: Duration) -> Result<CniReply, ForwardError> {
    let body = serde_json::to_vec(request).expect("plain struct");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ForwardError::Unavailable(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        tokio::time::timeout(deadline, send(socket, body))
            .await
            .unwrap_or_else(|_| Err(ForwardError::Broken(format!("no answer within {} s", deadline.as_secs()))))
    })
}
