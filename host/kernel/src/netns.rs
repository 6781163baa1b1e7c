//! The container's network namespace: opened once by the host, then used to
//! bind netlink sockets and sysctl writes to it from a worker thread that
//! joined it. setns(2) affects only the calling thread, so the runtime's
//! threads stay put; one worker serves the whole call.

use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::sync::mpsc;
use wasmcni_cni::error::{CniError, Code};

type Job = Box<dyn FnOnce() + Send>;

/// An open netns handle.
#[derive(Debug)]
pub struct Netns {
    file: File,
    /// The worker inside the netns: started when the handle is opened, so
    /// that it is ready by the first use; it exits when this handle is dropped.
    worker: Mutex<Worker>,
}

#[derive(Debug)]
struct Worker {
    jobs: mpsc::Sender<Job>,
    /// Whether it joined the netns; waited for on first use.
    joined: Option<mpsc::Receiver<Result<(), CniError>>>,
}

impl Netns {
    /// Opens CNI_NETNS (inside a tokio runtime, so that sockets the worker
    /// opens register there); `None` when it no longer exists (a DEL after
    /// the container is gone). Opened without blocking (a FIFO or a device
    /// would hang the call) and checked to be a network namespace.
    pub fn open(path: &str) -> Result<Option<Netns>, CniError> {
        use std::os::unix::fs::OpenOptionsExt;
        let opened = std::fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NONBLOCK).open(path);
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(open_error(path, &e)),
        };
        if !is_network_namespace(&file) {
            return Err(CniError::env(format!("CNI_NETNS {path} is not a network namespace")));
        }
        let worker = Mutex::new(start_worker(&file)?);
        Ok(Some(Netns { file, worker }))
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// The worker's queue, once it has joined the netns.
    fn worker(&self) -> Result<mpsc::Sender<Job>, CniError> {
        let mut worker = self.worker.lock().expect("not poisoned");
        if let Some(joined) = worker.joined.take() {
            joined.recv().map_err(|_| CniError::io("netns worker did not start"))??;
        }
        Ok(worker.jobs.clone())
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
    spawn_in(ns, || {
        rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Link]).map(|(conn, _, events)| (conn, events))
    })
}

fn open_error(path: &str, e: &std::io::Error) -> CniError {
    let e = CniError::from_io(format!("cannot open CNI_NETNS {path}"), e);
    if e.code == Code::IoFailure { CniError::env(e.msg) } else { e }
}

// NS_GET_NSTYPE: which kind of namespace an nsfs file is.
nix::ioctl_none!(ns_get_nstype, 0xb7, 0x3);

/// Whether `file` is a namespace file (nsfs) of a network namespace.
fn is_network_namespace(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    let nsfs = nix::sys::statfs::fstatfs(file).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC);
    // SAFETY: the ioctl takes no argument and only reads the fd's namespace type.
    nsfs && unsafe { ns_get_nstype(file.as_raw_fd()) }.is_ok_and(|t| t == CloneFlags::CLONE_NEWNET.bits())
}

fn start_worker(netns: &File) -> Result<Worker, CniError> {
    let file = netns.try_clone().map_err(|e| CniError::io(format!("netns handle: {e}")))?;
    let rt = tokio::runtime::Handle::current();
    let (jobs, rx) = mpsc::channel::<Job>();
    let (joined_tx, joined) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let _guard = rt.enter();
        let result = setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| CniError::kernel("cannot enter the container netns", e));
        let ok = result.is_ok();
        let _ = joined_tx.send(result);
        if ok {
            for job in rx {
                job();
            }
        }
    });
    Ok(Worker { jobs, joined: Some(joined) })
}

/// A netlink connection whose socket lives in `ns` (or the host's netns).
pub fn connect(ns: Option<&Netns>) -> Result<rtnetlink::Handle, CniError> {
    spawn_in(ns, || rtnetlink::new_connection().map(|(conn, handle, _)| (conn, handle)))
}

type Connection = rtnetlink::proto::Connection<rtnetlink::packet_route::RouteNetlinkMessage>;

/// Opens a netlink connection with `open` inside `ns` (or the host's netns),
/// so its socket belongs there, and drives it on the current runtime.
fn spawn_in<T: Send + 'static>(
    ns: Option<&Netns>,
    open: fn() -> std::io::Result<(Connection, T)>,
) -> Result<T, CniError> {
    let open = move || open().map_err(|e| CniError::from_io("netlink socket", &e));
    let (conn, opened) = match ns {
        Some(ns) => ns.run(open)?,
        None => open()?,
    };
    tokio::spawn(conn);
    Ok(opened)
}
