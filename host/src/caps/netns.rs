//! The container's network namespace: opened once by the host, then used to
//! bind netlink sockets and sysctl writes to it from a short-lived thread.
//! setns(2) affects only the calling thread, so the runtime's threads stay put.

use crate::cni::error::CniError;
use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::os::fd::AsFd;

/// An open netns handle.
#[derive(Debug)]
pub struct Netns {
    file: File,
}

impl Netns {
    /// Opens CNI_NETNS; `None` when it no longer exists (a DEL after the
    /// container is gone).
    pub fn open(path: &str) -> Result<Option<Netns>, CniError> {
        match File::open(path) {
            Ok(file) => Ok(Some(Netns { file })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CniError::env(format!("cannot open CNI_NETNS {path}: {e}"))),
        }
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Runs `f` on a fresh thread that has joined this netns, inside the
    /// current tokio runtime's context (so sockets it opens register there).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> Result<T, CniError> + Send) -> Result<T, CniError> {
        let rt = tokio::runtime::Handle::current();
        std::thread::scope(|s| {
            s.spawn(|| {
                let _guard = rt.enter();
                setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| CniError::kernel("cannot enter the container netns", e))?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(CniError::io("netns worker thread panicked")))
        })
    }
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
