//! The container's network namespace: opened once by the host, then used to
//! bind netlink sockets and sysctl writes to it from a worker thread that
//! joined it. setns(2) affects only the calling thread, so the runtime's
//! threads stay put; one worker serves the whole call.

use crate::cni::error::CniError;
use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

/// An open netns handle.
#[derive(Debug)]
pub struct Netns {
    file: File,
    /// The worker inside the netns, started on first use; it exits when
    /// this handle is dropped.
    worker: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Netns {
    /// Opens CNI_NETNS; `None` when it no longer exists (a DEL after the
    /// container is gone).
    pub fn open(path: &str) -> Result<Option<Netns>, CniError> {
        match File::open(path) {
            Ok(file) => Ok(Some(Netns { file, worker: Mutex::new(None) })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CniError::env(format!("cannot open CNI_NETNS {path}: {e}"))),
        }
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// The worker's queue, starting the worker (inside the current tokio
    /// runtime's context, so sockets it opens register there) if needed.
    fn worker(&self) -> Result<mpsc::Sender<Job>, CniError> {
        let mut slot = self.worker.lock().expect("not poisoned");
        if let Some(tx) = slot.as_ref() {
            return Ok(tx.clone());
        }
        let file = self.file.try_clone().map_err(|e| CniError::io(format!("netns handle: {e}")))?;
        let rt = tokio::runtime::Handle::current();
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let _guard = rt.enter();
            let joined = setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| CniError::kernel("cannot enter the container netns", e));
            let ok = joined.is_ok();
            let _ = ready_tx.send(joined);
            if ok {
                for job in rx {
                    job();
                }
            }
        });
        ready_rx.recv().map_err(|_| CniError::io("netns worker did not start"))??;
        *slot = Some(tx.clone());
        Ok(tx)
    }

    /// Runs `f` inside this netns, on its worker.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, CniError> + Send + 'static,
    ) -> Result<T, CniError> {
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        self.worker()?
            .send(Box::new(move || {
                let _ = done_tx.send(f());
            }))
            .map_err(|_| CniError::io("netns worker is gone"))?;
        done_rx.recv().unwrap_or_else(|_| Err(CniError::io("netns worker failed")))
    }
}

/// Link notifications (RTM_NEWLINK, RTM_DELLINK) from `ns` (or the host's netns).
pub type LinkEvents = futures::channel::mpsc::UnboundedReceiver<(
    rtnetlink::packet_core::NetlinkMessage<rtnetlink::packet_route::RouteNetlinkMessage>,
    rtnetlink::sys::SocketAddr,
)>;

/// Subscribes to link notifications in `ns` (or the host's netns); only
/// changes after this returns are seen.
pub fn link_events(ns: Option<&Netns>) -> Result<LinkEvents, CniError> {
    let open = || {
        let (conn, _, events) = rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Link])
            .map_err(|e| CniError::kernel("netlink socket", e))?;
        Ok((conn, events))
    };
    let (conn, events) = match ns {
        Some(ns) => ns.run(open)?,
        None => open()?,
    };
    tokio::spawn(conn);
    Ok(events)
}

/// A netlink connection whose socket lives in `ns` (or the host's netns).
pub fn connect(ns: Option<&Netns>) -> Result<rtnetlink::Handle, CniError> {
    let open = || {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| CniError::kernel("netlink socket", e))?;
        Ok((conn, handle))
    };
    let (conn, handle) = match ns {
        Some(ns) => ns.run(open)?,
        None => open()?,
    };
    tokio::spawn(conn);
    Ok(handle)
}
