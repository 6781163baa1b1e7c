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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;

    fn request() -> CniRequest {
        CniRequest { command: "ADD".into(), argv0: "wasmcni".into(), env: Default::default(), stdin: "{}".into() }
    }

    /// A socket in a scratch directory that answers one connection with
    /// `response` (raw HTTP), or closes it unanswered when that is empty.
    fn daemon(tag: &str, response: String) -> (std::path::PathBuf, std::thread::JoinHandle<()>) {
        let dir = std::env::temp_dir().join(format!("wasmcni-client-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("d.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let served = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(response.as_bytes());
        });
        (socket, served)
    }

    fn http(status: &str, body: &str) -> String {
        format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
    }

    #[test]
    fn a_reply_is_returned_whole() {
        let (socket, served) =
            daemon("ok", http("200 OK", r#"{"stdout": "{\"cniVersion\":\"1.0.0\"}", "exit_code": 0}"#));
        let reply = forward(&socket, &request(), Duration::from_secs(5)).unwrap();
        assert_eq!((reply.stdout.as_str(), reply.exit_code), (r#"{"cniVersion":"1.0.0"}"#, 0));
        served.join().unwrap();
    }

    #[test]
    fn no_daemon_and_a_draining_one_are_unavailable_and_a_failing_one_is_broken() {
        let missing = std::env::temp_dir().join("wasmcni-client-none.sock");
        let err = forward(&missing, &request(), Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, ForwardError::Unavailable(_)), "{err}");

        let (socket, served) = daemon("draining", http("503 Service Unavailable", "draining"));
        let err = forward(&socket, &request(), Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, ForwardError::Unavailable(_)), "{err}");
        served.join().unwrap();

        let (socket, served) = daemon("failing", http("500 Internal Server Error", "boom"));
        let err = forward(&socket, &request(), Duration::from_secs(5)).unwrap_err();
        assert!(matches!(&err, ForwardError::Broken(m) if m.contains("boom")), "{err}");
        served.join().unwrap();
    }

    #[test]
    fn a_daemon_that_hangs_up_mid_call_is_broken() {
        let (socket, served) = daemon("hangup", String::new());
        let err = forward(&socket, &request(), Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, ForwardError::Broken(_)), "{err}");
        served.join().unwrap();
    }
}
