//! The daemon's lifecycle: load the modules, listen on the unix socket (mode
//! 0600) and optionally on TCP behind a bearer token, watch the module
//! directory, and on SIGTERM finish in-flight calls, refuse new ones, exit.

use super::api::{self, AppState};
use super::{listen, watch};
use crate::config::ModuleDir;
use crate::runner::{Host, Runner};
use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use wasmcni_engine::cache::Cache;

pub struct Options {
    pub socket: PathBuf,
    pub tcp: Option<SocketAddr>,
    pub token_file: Option<PathBuf>,
    pub module_dir: PathBuf,
    pub watch_interval: Duration,
    /// Calls in flight at most (the open-file limit may lower it).
    pub max_calls: usize,
    /// Per-attachment state, and the networks this daemon has served.
    pub state_dir: PathBuf,
    /// Compiled modules.
    pub cache_dir: PathBuf,
    /// Cluster mode: this node's subnet and the routes to the others.
    pub cluster: Option<crate::cluster::Options>,
}

fn read_token(path: &std::path::Path) -> Result<String> {
    let token = std::fs::read_to_string(path).with_context(|| format!("reading token file {}", path.display()))?;
    let token = token.trim().to_owned();
    if token.len() < 16 {
        bail!("the token in {} is shorter than 16 characters", path.display());
    }
    Ok(token)
}

fn bind_unix(path: &std::path::Path) -> Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!("removed a stale socket at {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    // Created with mode 0600 from the start: no window where others can connect.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = tokio::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    listener.with_context(|| format!("listening on {}", path.display()))
}

async fn terminated(state: Arc<AppState>) {
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight calls, refusing new ones");
    state.draining.store(true, std::sync::atomic::Ordering::SeqCst);
}

pub async fn serve(opts: Options) -> Result<()> {
    let token = match (&opts.tcp, &opts.token_file) {
        (Some(_), Some(file)) => Some(read_token(file)?),
        (Some(_), None) => bail!("--tcp needs --token-file: the TCP API is never served without a bearer token"),
        (None, _) => None,
    };
    let nofile = super::budget::raise_nofile();
    let budget = super::budget::Budget::for_fds(nofile, opts.max_calls);
    tracing::info!(
        "open-file limit {nofile}: up to {} calls and {} connections at once",
        budget.max_calls,
        budget.max_connections
    );
    let max_connections = budget.max_connections;
    let modules = ModuleDir::new(opts.module_dir.clone());
    let runner =
        Runner::new(Host::Daemon, Vec::new(), opts.state_dir.clone(), Cache::new(opts.cache_dir.clone()), modules)?;
    let state = Arc::new(AppState::new(runner, opts.module_dir.clone(), budget, &opts.state_dir));
    let mut seen = std::collections::HashMap::new();
    watch::scan(&state, &mut seen).await;
    tokio::spawn(watch::run(state.clone(), opts.watch_interval, seen));
    if let Some(cluster) = opts.cluster {
        crate::cluster::start(state.runner.clone(), cluster, state.metrics.cluster.clone())
            .await
            .context("cluster mode")?;
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let unix = bind_unix(&opts.socket)?;
    tracing::info!("serving on {}", opts.socket.display());
    let mut servers = tokio::task::JoinSet::new();
    let app = api::router(state.clone(), None);
    servers.spawn(listen::serve(unix, app, max_connections, stopped()));
    if let (Some(addr), Some(token)) = (opts.tcp, token) {
        let tcp = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
        tracing::info!("serving on tcp {addr} (bearer token required)");
        let app = api::router(state.clone(), Some(token));
        servers.spawn(listen::serve(tcp, app, max_connections, stopped()));
    }
    terminated(state).await;
    let _ = stop_tx.send(true);
    while let Some(done) = servers.join_next().await {
        done.context("serving")?;
    }
    let _ = std::fs::remove_file(&opts.socket);
    Ok(())
}
