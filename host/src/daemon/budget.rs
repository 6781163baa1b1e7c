//! What the daemon may spend: file descriptors (the soft limit raised to the
//! hard one at start, then shared between connections and calls) and calls
//! in flight. A call over budget gets code 11 before anything is created;
//! DEL and GC wait for a slot instead, since a runtime never retries a
//! refused DEL.

use crate::cni::env::Command;
use crate::cni::error::{CniError, Code};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors one call holds at most: netns, its worker's netlink
/// sockets, link watches, the nftables socket, lease files.
const FDS_PER_CALL: u64 = 8;
/// Descriptors kept for the daemon itself (listeners, modules, cache, etcd).
const RESERVED_FDS: u64 = 64;
/// How long an ADD, CHECK or STATUS waits for a slot before it is refused.
const QUEUE_WAIT: Duration = Duration::from_secs(1);

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit in force.
pub fn raise_nofile() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return 1024 };
    if soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
        return soft;
    }
    hard
}

#[derive(Debug)]
pub struct Budget {
    calls: Arc<Semaphore>,
    pub max_calls: usize,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Budget {
    /// Half of the descriptors (beyond the reserve) go to connections, half
    /// to calls, and at most `max_calls` calls run at once.
    pub fn for_fds(nofile: u64, max_calls: usize) -> Budget {
        let half = nofile.saturating_sub(RESERVED_FDS) / 2;
        let max_calls = max_calls.min((half / FDS_PER_CALL) as usize).max(1);
        Budget { calls: Arc::new(Semaphore::new(max_calls)), max_calls, max_connections: (half as usize).max(1) }
    }

    /// A slot for one call, held until the call ends (also if its shim goes).
    pub async fn admit(&self, command: Command, deadline: Duration) -> Result<OwnedSemaphorePermit, CniError> {
        let wait = if matches!(command, Command::Del | Command::Gc) { deadline } else { QUEUE_WAIT };
        match tokio::time::timeout(wait, self.calls.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(CniError::new(
                Code::TryAgainLater,
                format!("the daemon is running {} calls, its limit; try again later", self.max_calls),
            )),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.max_calls - self.calls.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fd_limit_bounds_calls_and_connections() {
        let b = Budget::for_fds(1024, 256);
        assert_eq!((b.max_calls, b.max_connections), (60, 480));
        assert!((b.max_calls as u64) * FDS_PER_CALL + b.max_connections as u64 + RESERVED_FDS <= 1024);
        assert_eq!(Budget::for_fds(1 << 20, 256).max_calls, 256);
        assert_eq!(Budget::for_fds(10, 256).max_calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn over_budget_an_add_is_refused_with_11_and_a_del_waits_its_turn() {
        let b = Arc::new(Budget::for_fds(RESERVED_FDS + 2 * FDS_PER_CALL, 256));
        assert_eq!(b.max_calls, 1);
        let held = b.admit(Command::Add, Duration::from_secs(120)).await.unwrap();
        assert_eq!(b.admit(Command::Add, Duration::from_secs(120)).await.unwrap_err().code, 11);
        let waiting = tokio::spawn({
            let b = b.clone();
            async move { b.admit(Command::Del, Duration::from_secs(120)).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!waiting.is_finished(), "the DEL was refused instead of queued");
        drop(held);
        waiting.await.unwrap().unwrap();
        assert_eq!(b.in_flight(), 0);
    }
}
