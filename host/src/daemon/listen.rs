//! Serving the API on a listener with budgets: at most `max_connections`
//! connections at once (the rest wait in the kernel's listen backlog rather
//! than costing descriptors), a connection that sends no complete request
//! header within IDLE is closed (idle keep-alives and slow clients alike),
//! and none lives past LIFETIME.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

const IDLE: Duration = Duration::from_secs(5);
/// Longer than any call may take (the API's own deadline is 120 s).
const LIFETIME: Duration = Duration::from_secs(150);

/// Something connections come from: the unix socket or TCP.
pub trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl Future<Output = std::io::Result<Self::Io>> + Send;
}

impl Accept for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    async fn accept(&self) -> std::io::Result<Self::Io> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

impl Accept for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept(&self) -> std::io::Result<Self::Io> {
        tokio::net::TcpListener::accept(self).await.map(|(s, _)| s)
    }
}

/// Serves `app` until `stopped` resolves, then waits (up to LIFETIME) for
/// the connections still open to finish.
pub async fn serve(listener: impl Accept, app: Router, max_connections: usize, stopped: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut stopped = std::pin::pin!(stopped);
    loop {
        let slot = tokio::select! {
            () = &mut stopped => break,
            slot = slots.clone().acquire_owned() => slot.expect("never closed"),
        };
        let io = tokio::select! {
            () = &mut stopped => break,
            io = listener.accept() => io,
        };
        let io = match io {
            Ok(io) => io,
            Err(e) => {
                // Out of descriptors, most likely: let some connections end first.
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(IDLE)
                .serve_connection(TokioIo::new(io), service);
            let _ = tokio::time::timeout(LIFETIME, conn).await;
            drop(slot);
        });
    }
    let _ = tokio::time::timeout(LIFETIME, slots.acquire_many(max_connections as u32)).await;
}
