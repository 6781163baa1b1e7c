//! IP leases on disk in the reference host-local layout, so the reference
//! host-local and wasmcni read each other's leases:
//! `<dataDir>/<network>/<ip>` holds `<containerID>\r\n<ifname>`,
//! `last_reserved_ip.<rangeSet>` the last address handed out, and `lock` is
//! flock'ed for the whole call. [`Leases`] is what a call does with an open
//! store; `fake::Leases` keeps them in memory.

use crate::flock::Refused;
use crate::{Error, Result};
use nix::fcntl::Flock;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";
const LAST_RESERVED: &str = "last_reserved_ip.";
const LINE_BREAK: &str = "\r\n";
/// Where a lease is written before it is linked into place.
const STAGED: &str = ".lease.staged";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ip: IpAddr,
    pub container_id: String,
    pub ifname: String,
}

/// The leases of one network, held for the call.
pub trait Leases: Send + Sync {
    /// Takes `ip` for (container, ifname) unless someone holds it; false if someone does.
    fn reserve(&self, ip: IpAddr, container_id: &str, ifname: &str, range_set: u32) -> Result<bool>;

    /// The address range set `range_set` handed out last.
    fn last_reserved(&self, range_set: u32) -> Result<Option<IpAddr>>;

    /// Every lease, by address.
    fn list(&self) -> Result<Vec<Lease>>;

    /// Frees every lease of (container, ifname), and those that name the
    /// container only (written by old host-local versions); the addresses freed.
    fn release_owner(&self, container_id: &str, ifname: &str) -> Result<Vec<IpAddr>>;
}

pub struct IpamStore {
    dir: PathBuf,
    _lock: Flock<File>,
}

/// The leases in a network's directory, read without its lock (a
/// snapshot for reporting; allocation goes through an open store). Only
/// regular files named like an address are leases: anything else (a
/// directory, a FIFO, a symlink) is skipped, as the reference does.
pub fn read_leases(dir: &Path) -> Result<Vec<Lease>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir.display(), e)),
    };
    let mut leases = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io(dir.display(), e))?;
        let Some(ip) = entry.file_name().to_str().and_then(|n| n.parse::<IpAddr>().ok()) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            tracing::warn!("{} is not a lease file: skipped", entry.path().display());
            continue;
        }
        let content = match read_small(&entry.path()) {
            Ok(Some(c)) => c,
            // Released by someone else between listing and reading, or replaced by a non-file.
            Ok(None) => continue,
            Err(e) => return Err(io(entry.path().display(), e)),
        };
        let mut lines = content.lines().map(str::trim);
        let container_id = lines.next().unwrap_or_default().to_owned();
        let ifname = lines.next().unwrap_or_default().to_owned();
        leases.push(Lease { ip, container_id, ifname });
    }
    leases.sort_by_key(|l| l.ip);
    Ok(leases)
}

/// A small state file's whole content; `None` when it is gone or not a
/// regular file. Opened without blocking and without following a symlink,
/// so a FIFO or device put in its place cannot hang the call.
fn read_small(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let flags = nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW;
    let mut file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let mut content = String::new();
    file.read_to_string(&mut content)?;
    Ok(Some(content))
}

/// Rewrites a small file in place. Unlike truncate-and-write, this does not
/// make ext4 flush the file on close (its auto_da_alloc heuristic), which
/// costs more than the rest of the allocation. The lock makes it safe.
fn overwrite(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path)?;
    f.write_all(content)?;
    f.set_len(content.len() as u64)
}

fn io(what: impl std::fmt::Display, source: std::io::Error) -> Error {
    Error::Io { what: what.to_string(), source }
}

impl IpamStore {
    /// Opens (creating) the network's directory and takes its lock, waiting
    /// until `deadline` for any other wasmcni or reference host-local holding it.
    /// A store still locked at `deadline` is [`Error::Busy`].
    pub fn open(data_dir: &Path, network: &str, deadline: Instant) -> Result<IpamStore> {
        let dir = data_dir.join(network);
        std::fs::create_dir_all(&dir).map_err(|e| io(dir.display(), e))?;
        let lock_path = dir.join("lock");
        let lock = crate::flock::exclusive(&lock_path, deadline).map_err(|r| match r {
            Refused::Busy(waited) => Error::Busy { network: network.to_owned(), waited },
            Refused::Io(e) => io(lock_path.display(), e),
        })?;
        Ok(IpamStore { dir, _lock: lock })
    }
}

impl Leases for IpamStore {
    /// The lease is written beside it and linked into place, so it appears
    /// whole: a process killed halfway never leaves an empty lease no DEL can free.
    fn reserve(&self, ip: IpAddr, container_id: &str, ifname: &str, range_set: u32) -> Result<bool> {
        let path = self.dir.join(ip.to_string());
        // One writer at a time (the lock): a name of its own is enough.
        let staged = self.dir.join(STAGED);
        let content = format!("{}{LINE_BREAK}{ifname}", container_id.trim());
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&staged)
            .and_then(|mut f| f.write_all(content.as_bytes()))
            .map_err(|e| io(staged.display(), e))?;
        let linked = std::fs::hard_link(&staged, &path);
        let _ = std::fs::remove_file(&staged);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(io(path.display(), e)),
        }
        let last = self.dir.join(format!("{LAST_RESERVED}{range_set}"));
        overwrite(&last, ip.to_string().as_bytes()).map_err(|e| io(last.display(), e))?;
        Ok(true)
    }

    fn last_reserved(&self, range_set: u32) -> Result<Option<IpAddr>> {
        let path = self.dir.join(format!("{LAST_RESERVED}{range_set}"));
        match read_small(&path) {
            Ok(s) => Ok(s.and_then(|s| s.trim().parse().ok())),
            Err(e) => Err(io(path.display(), e)),
        }
    }

    /// Files that are not leases (lock, last_reserved_ip.*) are skipped.
    fn list(&self) -> Result<Vec<Lease>> {
        read_leases(&self.dir)
    }

    fn release_owner(&self, container_id: &str, ifname: &str) -> Result<Vec<IpAddr>> {
        let mut freed = Vec::new();
        for lease in self.list()? {
            let ours = lease.container_id == container_id.trim() && (lease.ifname == ifname || lease.ifname.is_empty());
            if ours {
                let path = self.dir.join(lease.ip.to_string());
                match std::fs::remove_file(&path) {
                    Ok(()) => freed.push(lease.ip),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(path.display(), e)),
                }
            }
        }
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "wasmcni-store-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn odd_entries_are_skipped_long_ids_kept_and_leases_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tmp();
        let s = IpamStore::open(&root, "net1", soon()).unwrap();
        let long_id = "c".repeat(600);
        assert!(s.reserve("10.0.0.2".parse().unwrap(), &long_id, "eth0", 0).unwrap());
        let mode = std::fs::metadata(root.join("net1/10.0.0.2")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::create_dir(root.join("net1/10.0.0.3")).unwrap();
        nix::unistd::mkfifo(&root.join("net1/10.0.0.4"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("net1/10.0.0.5")).unwrap();
        // A FIFO as last_reserved_ip must not hang the allocation either.
        std::fs::remove_file(root.join("net1/last_reserved_ip.0")).unwrap();
        nix::unistd::mkfifo(&root.join("net1/last_reserved_ip.0"), nix::sys::stat::Mode::from_bits_truncate(0o600))
            .unwrap();
        assert_eq!(s.last_reserved(0).unwrap(), None);
        let leases = s.list().unwrap();
        assert_eq!(leases.len(), 1, "{leases:?}");
        assert_eq!(leases[0].container_id, long_id);
        assert_eq!(s.release_owner(&long_id, "eth0").unwrap().len(), 1);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_lock_held_elsewhere_is_waited_for_until_the_deadline_only() {
        let root = tmp();
        let held = IpamStore::open(&root, "net1", soon()).unwrap();
        // flock locks belong to the open file: a second open conflicts like another process.
        let started = Instant::now();
        let err = IpamStore::open(&root, "net1", Instant::now() + Duration::from_millis(100)).err().unwrap();
        assert!(matches!(err, Error::Busy { .. }), "{err:?}");
        assert_eq!(wasmcni_cni::error::CniError::from(err).code, 11);
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(held);
        assert!(IpamStore::open(&root, "net1", soon()).is_ok());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn reserve_list_release_in_the_reference_layout() {
        let root = tmp();
        let s = IpamStore::open(&root, "net1", soon()).unwrap();
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(s.reserve(ip, "c1", "eth0", 0).unwrap());
        assert!(!s.reserve(ip, "c2", "eth0", 0).unwrap());
        assert_eq!(std::fs::read_to_string(root.join("net1/10.0.0.2")).unwrap(), "c1\r\neth0");
        assert_eq!(std::fs::read_to_string(root.join("net1/last_reserved_ip.0")).unwrap(), "10.0.0.2");
        assert_eq!(s.last_reserved(0).unwrap(), Some(ip));
        assert_eq!(s.last_reserved(1).unwrap(), None);
        // An old-format lease (ID only) belongs to that container on any ifname.
        std::fs::write(root.join("net1/10.0.0.3"), "c1").unwrap();
        assert_eq!(s.list().unwrap().len(), 2);
        assert_eq!(s.release_owner("c1", "eth1").unwrap(), vec!["10.0.0.3".parse::<IpAddr>().unwrap()]);
        assert_eq!(s.release_owner("c1", "eth0").unwrap(), vec![ip]);
        assert!(s.release_owner("c1", "eth0").unwrap().is_empty());
        assert!(s.list().unwrap().is_empty());
        std::fs::remove_dir_all(root).unwrap();
    }
}
