//! The crate's one error type, and the one place it becomes a CNI error:
//! each variant keeps what was attempted and the cause, and its CNI code
//! and message are decided in the one `From<Error> for CniError` below.

use crate::masquerade;
use ipnet::IpNet;
use std::io;
use std::time::Duration;
use wasmcni_cni::error::{CniError, Code};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// rtnetlink refused or failed a request; `op` says what was asked
    /// ("get link eth0", "add 10.0.0.2/24 to eth0", ...).
    #[error("{op}: {source}")]
    Netlink { op: String, source: rtnetlink::Error },
    /// No link of that name.
    #[error("link {0}: no such link")]
    NoSuchLink(String),
    /// The kernel answered EEXIST where that is a refusal: a veth whose name
    /// is taken, a route that is already there.
    #[error("{op}: {what}")]
    Exists { op: String, what: Existing, source: rtnetlink::Error },
    /// A link has the bridge's name but is something else.
    #[error("{name} exists but is not a bridge (it is {kind:?})")]
    NotABridge { name: String, kind: String },
    /// A link has the VTEP's name but is not a VXLAN device.
    #[error("{name} exists but is not a VXLAN device (it is {kind:?})")]
    NotAVtep { name: String, kind: String },
    /// A route no netlink message can carry (a gateway of the other family);
    /// `reason` is rtnetlink's, whose error type is not public.
    #[error("invalid route to {dst}: {reason}")]
    InvalidRoute { dst: IpNet, reason: String },
    /// Reading (`value` None) or writing net/`key` under /proc/sys failed.
    #[error("sysctl net/{key}{}: {source}", value.as_ref().map(|v| format!("={v}")).unwrap_or_default())]
    Sysctl { key: String, value: Option<String>, source: io::Error },
    /// A file or socket could not be used; `what` names it.
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    /// CNI_NETNS exists but could not be opened.
    #[error("cannot open CNI_NETNS {path}: {source}")]
    OpenNetns { path: String, source: io::Error },
    /// CNI_NETNS is not a network namespace.
    #[error("CNI_NETNS {path} is not a network namespace")]
    NotNetns { path: String },
    /// The netns could not be handed to its worker thread.
    #[error("netns handle: {0}")]
    NetnsHandle(#[source] io::Error),
    /// The worker thread inside the netns could not join it.
    #[error("cannot enter the container netns: {0}")]
    EnterNetns(#[source] nix::errno::Errno),
    /// The worker thread inside the netns stopped: it "did not start", "is gone" or "failed".
    #[error("netns worker {0}")]
    NetnsWorker(&'static str),
    /// A request running on its own task did not finish (it panicked or was cancelled).
    #[error("{op}: {source}")]
    Task { op: String, source: tokio::task::JoinError },
    /// No randomness for a new bridge's MAC.
    #[error("no randomness for a bridge MAC: {0}")]
    Random(#[source] getrandom::Error),
    /// A network's lease store stayed locked by someone else until the deadline.
    #[error("the lease store of network {network} stayed locked for {} ms; try again later", waited.as_millis())]
    Busy { network: String, waited: Duration },
    #[error(transparent)]
    Masquerade(#[from] masquerade::Error),
    /// The kernel refused the network policy transaction at message `op`.
    #[error("network policy: nftables {op}: {source}")]
    Nftables { op: &'static str, source: io::Error },
}

/// What an [`Error::Exists`] found already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// A link named like the veth end to create.
    Link,
    /// A route to the same destination, table and metric.
    Route,
}

impl std::fmt::Display for Existing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Existing::Link => "a link with that name already exists (is the container already attached?)",
            Existing::Route => "a route to that destination already exists",
        })
    }
}

impl Error {
    /// The errno behind the error, when the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink { source, .. } | Error::Exists { source, .. } => netlink_errno(source),
            Error::Sysctl { source, .. }
            | Error::Io { source, .. }
            | Error::OpenNetns { source, .. }
            | Error::NetnsHandle(source) => source.raw_os_error(),
            Error::EnterNetns(errno) => Some(*errno as i32),
            Error::Masquerade(e) => e.errno(),
            Error::Nftables { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// The errno of a refusal the kernel sent back (netlink error codes are negative).
pub(crate) fn netlink_errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) if m.raw_code() != 0 => Some(-m.raw_code()),
        _ => None,
    }
}

impl From<Error> for CniError {
    fn from(e: Error) -> Self {
        match e {
            // The kernel refused (or there was nothing to act on): code 102.
            Error::Netlink { .. }
            | Error::NoSuchLink(_)
            | Error::Exists { .. }
            | Error::Sysctl { .. }
            | Error::EnterNetns(_)
            | Error::Nftables { .. } => CniError::new(Code::Kernel, e.to_string()),
            Error::NotABridge { .. } | Error::NotAVtep { .. } | Error::InvalidRoute { .. } => {
                CniError::config(e.to_string())
            }
            // Out of descriptors or memory is "try again later" (11); other I/O failures are 5.
            Error::Io { what, source } => CniError::from_io(what, &source),
            // A netns path that cannot be opened is the runtime's mistake (4), unless the node is short of resources.
            Error::OpenNetns { ref path, ref source } => {
                let io = CniError::from_io(format!("cannot open CNI_NETNS {path}"), source);
                if io.code == Code::IoFailure { CniError::env(io.msg) } else { io }
            }
            Error::NotNetns { .. } => CniError::env(e.to_string()),
            Error::NetnsHandle(_) | Error::NetnsWorker(_) | Error::Task { .. } | Error::Random(_) => {
                CniError::io(e.to_string())
            }
            Error::Busy { .. } => CniError::new(Code::TryAgainLater, e.to_string()),
            Error::Masquerade(m) => match &m {
                masquerade::Error::Invalid { .. } => CniError::config(format!("masquerade: {m}")),
                masquerade::Error::Io { source, .. } | masquerade::Error::Socket { source, .. } => {
                    CniError::from_io("masquerade", source)
                }
                masquerade::Error::Kernel { .. } => CniError::kernel("masquerade", &m),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroI32;

    fn refused(errno: i32) -> rtnetlink::Error {
        let mut m = rtnetlink::packet_core::ErrorMessage::default();
        m.code = NonZeroI32::new(-errno);
        rtnetlink::Error::NetlinkError(m)
    }

    fn cni(e: Error) -> (u32, String) {
        let e = CniError::from(e);
        (e.code, e.msg)
    }

    #[test]
    fn each_variant_keeps_the_code_and_message_callers_rely_on() {
        let io = |errno| io::Error::from_raw_os_error(errno);
        let (code, msg) = cni(Error::Netlink { op: "set eth0 up".into(), source: refused(nix::libc::ENODEV) });
        assert_eq!(
            (code, msg.as_str()),
            (102, "set eth0 up: Received a netlink error message No such device (os error 19)")
        );
        assert_eq!(cni(Error::NoSuchLink("eth0".into())), (102, "link eth0: no such link".into()));
        let e = Error::Exists { op: "add route to 10.0.0.0/8".into(), what: Existing::Route, source: refused(17) };
        assert_eq!(e.errno(), Some(nix::libc::EEXIST));
        assert_eq!(cni(e), (102, "add route to 10.0.0.0/8: a route to that destination already exists".into()));
        let e = Error::NotABridge { name: "d0".into(), kind: "veth".into() };
        assert_eq!(cni(e), (7, "d0 exists but is not a bridge (it is \"veth\")".into()));
        let e = Error::Sysctl { key: "ipv4/ip_forward".into(), value: Some("1".into()), source: io(nix::libc::EACCES) };
        assert_eq!(cni(e).0, 102);
        let e = Error::Sysctl { key: "ipv4/x".into(), value: None, source: io(nix::libc::ENOENT) };
        assert_eq!(cni(e).1, "sysctl net/ipv4/x: No such file or directory (os error 2)");
        assert_eq!(cni(Error::Io { what: "/x".into(), source: io(nix::libc::EMFILE) }).0, 11);
        assert_eq!(cni(Error::Io { what: "/x".into(), source: io(nix::libc::EACCES) }).0, 5);
        let open = |errno| Error::OpenNetns { path: "/run/netns/x".into(), source: io(errno) };
        assert_eq!(cni(open(nix::libc::EACCES)).0, 4);
        assert_eq!(cni(open(nix::libc::ENFILE)).0, 11);
        assert_eq!(
            cni(Error::NotNetns { path: "/tmp".into() }),
            (4, "CNI_NETNS /tmp is not a network namespace".into())
        );
        assert_eq!(cni(Error::NetnsHandle(io(nix::libc::EMFILE))).0, 5);
        assert_eq!(cni(Error::NetnsWorker("is gone")), (5, "netns worker is gone".into()));
        assert_eq!(cni(Error::EnterNetns(nix::errno::Errno::EPERM)).0, 102);
        let busy = Error::Busy { network: "n".into(), waited: Duration::from_millis(100) };
        assert_eq!(cni(busy), (11, "the lease store of network n stayed locked for 100 ms; try again later".into()));
        let m = masquerade::Error::Invalid { what: "ifname", value: "a b".into() };
        assert_eq!(cni(m.into()), (7, "masquerade: invalid ifname \"a b\"".into()));
        let m = masquerade::Error::Kernel { op: "add rule", source: io(nix::libc::EPERM) };
        assert_eq!(cni(m.into()).0, 102);
        let m = masquerade::Error::Io { path: "/x".into(), source: io(nix::libc::ENOMEM) };
        assert_eq!(cni(m.into()).0, 11);
    }
}
