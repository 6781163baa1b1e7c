//! Network namespaces. [`Netns`] is the container's: opened once by the
//! host, then used to bind netlink sockets and sysctl writes to it from a
//! worker thread that joined it. setns(2) affects only the calling thread,
//! so the runtime's threads stay put; one worker serves the whole call.
//!
//! [`Namespace`] is what wasmcni does in one namespace (links, addresses,
//! routes, sysctls); [`Kernel`] does it in the kernel, `fake::Net` in memory.

use crate::addr::Addresses;
use crate::link::{Links, VethParams};
use crate::route::Routes;
use crate::sysctl::Sysctl;
use crate::{Error, Result};
use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

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
    joined: Option<mpsc::Receiver<Result<()>>>,
}

impl Netns {
    /// Opens CNI_NETNS (inside a tokio runtime, so that sockets the worker
    /// opens register there); `None` when it no longer exists (a DEL after
    /// the container is gone). Opened without blocking (a FIFO or a device
    /// would hang the call) and checked to be a network namespace.
    pub fn open(path: &str) -> Result<Option<Netns>> {
        use std::os::unix::fs::OpenOptionsExt;
        let opened = std::fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NONBLOCK).open(path);
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::OpenNetns { path: path.to_owned(), source }),
        };
        if !is_network_namespace(&file) {
            return Err(Error::NotNetns { path: path.to_owned() });
        }
        let worker = Mutex::new(start_worker(&file)?);
        Ok(Some(Netns { file, worker }))
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// The worker's queue, once it has joined the netns.
    fn worker(&self) -> Result<mpsc::Sender<Job>> {
        let mut worker = self.worker.lock().expect("not poisoned");
        if let Some(joined) = worker.joined.take() {
            joined.recv().map_err(|_| Error::NetnsWorker("did not start"))??;
        }
        Ok(worker.jobs.clone())
    }

    /// Runs `f` inside this netns, on its worker.
    pub(crate) fn run<T: Send + 'static>(&self, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        self.worker()?
            .send(Box::new(move || {
                let _ = done_tx.send(f());
            }))
            .map_err(|_| Error::NetnsWorker("is gone"))?;
        done_rx.recv().unwrap_or(Err(Error::NetnsWorker("failed")))
    }
}

/// Link notifications (RTM_NEWLINK, RTM_DELLINK) from `ns` (or the host's netns).
pub(crate) type LinkEvents = futures::channel::mpsc::UnboundedReceiver<(
    rtnetlink::packet_core::NetlinkMessage<rtnetlink::packet_route::RouteNetlinkMessage>,
    rtnetlink::sys::SocketAddr,
)>;

/// Subscribes to link notifications in `ns` (or the host's netns); only
/// changes after this returns are seen.
pub(crate) fn link_events(ns: Option<&Netns>) -> Result<LinkEvents> {
    spawn_in(ns, || {
        rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Link]).map(|(conn, _, events)| (conn, events))
    })
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

fn start_worker(netns: &File) -> Result<Worker> {
    let file = netns.try_clone().map_err(Error::NetnsHandle)?;
    let rt = tokio::runtime::Handle::current();
    let (jobs, rx) = mpsc::channel::<Job>();
    let (joined_tx, joined) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let _guard = rt.enter();
        let result = setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(Error::EnterNetns);
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
fn connect(ns: Option<&Netns>) -> Result<rtnetlink::Handle> {
    spawn_in(ns, || rtnetlink::new_connection().map(|(conn, handle, _)| (conn, handle)))
}

type Connection = rtnetlink::proto::Connection<rtnetlink::packet_route::RouteNetlinkMessage>;

/// Opens a netlink connection with `open` inside `ns` (or the host's netns),
/// so its socket belongs there, and drives it on the current runtime.
fn spawn_in<T: Send + 'static>(ns: Option<&Netns>, open: fn() -> std::io::Result<(Connection, T)>) -> Result<T> {
    let open = move || open().map_err(|source| Error::Io { what: "netlink socket".into(), source });
    let (conn, opened) = match ns {
        Some(ns) => ns.run(open)?,
        None => open()?,
    };
    tokio::spawn(conn);
    Ok(opened)
}

/// One network namespace: its links, addresses, routes and sysctls. A value
/// stands for one namespace; a veth joins two.
pub trait Namespace: Links + Addresses + Routes + Sysctl + Sized {
    /// A namespace other than the host's, as opened: an open [`Netns`] for
    /// the kernel; for the fake, the fake namespace itself.
    type Netns: Send + Sync;

    /// The namespace `netns`, reached from here.
    fn connect(netns: &Self::Netns) -> Self;

    /// Creates a veth pair: its first end here, born up, and its peer born
    /// inside `peer`, down.
    fn create_veth(&self, peer: &Self::Netns, p: &VethParams<'_>) -> impl Future<Output = Result<()>> + Send;
}

/// A namespace as the kernel has it: rtnetlink requests over a socket that
/// lives there, sysctls under its /proc/sys/net.
#[derive(Debug)]
pub struct Kernel {
    /// None: the process's own netns (the host's).
    netns: Option<Arc<Netns>>,
    /// Connected on first use, so a call that only touches sysctls opens no socket.
    handle: tokio::sync::OnceCell<rtnetlink::Handle>,
}

impl Kernel {
    /// The host's netns, where the process runs.
    pub fn host() -> Kernel {
        Kernel { netns: None, handle: tokio::sync::OnceCell::new() }
    }

    /// The netlink connection, opened in this namespace on first use (inside a tokio runtime).
    pub(crate) async fn handle(&self) -> Result<&rtnetlink::Handle> {
        self.handle.get_or_try_init(|| async { connect(self.netns.as_deref()) }).await
    }

    pub(crate) fn netns(&self) -> Option<&Netns> {
        self.netns.as_deref()
    }
}

impl Namespace for Kernel {
    type Netns = Arc<Netns>;

    fn connect(netns: &Arc<Netns>) -> Kernel {
        Kernel { netns: Some(netns.clone()), handle: tokio::sync::OnceCell::new() }
    }

    async fn create_veth(&self, peer: &Arc<Netns>, p: &VethParams<'_>) -> Result<()> {
        crate::link::create_veth(self.handle().await?, peer.file(), p).await
    }
}
