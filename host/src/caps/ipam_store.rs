//! IP leases on disk in the reference host-local layout, so the reference
//! host-local and wasmcni read each other's leases:
//! `<dataDir>/<network>/<ip>` holds `<containerID>\r\n<ifname>`,
//! `last_reserved_ip.<rangeSet>` the last address handed out, and `lock` is
//! flock'ed for the whole call.

use crate::cni::error::CniError;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";
const LAST_RESERVED: &str = "last_reserved_ip.";
const LINE_BREAK: &str = "\r\n";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ip: IpAddr,
    pub container_id: String,
    pub ifname: String,
}

pub struct IpamStore {
    dir: PathBuf,
    _lock: Flock<File>,
}

/// The leases in a network's directory, read without its lock (a
/// snapshot for reporting; allocation goes through an open store).
pub fn read_leases(dir: &Path) -> Result<Vec<Lease>, CniError> {
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
        let content = match read_lease(&entry.path()) {
            Ok(c) => c,
            // Released by someone else between listing and reading.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
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

/// A lease file's content. Leases are tiny and a node holds many, so this
/// skips the size probe `fs::read` makes: open, one read, close.
fn read_lease(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 512];
    let n = File::open(path)?.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Rewrites a small file in place. Unlike truncate-and-write, this does not
/// make ext4 flush the file on close (its auto_da_alloc heuristic), which
/// costs more than the rest of the allocation. The lock makes it safe.
fn overwrite(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).create(true).truncate(false).open(path)?;
    f.write_all(content)?;
    f.set_len(content.len() as u64)
}

fn io(what: impl std::fmt::Display, e: impl std::fmt::Display) -> CniError {
    CniError::io(format!("{what}: {e}"))
}

impl IpamStore {
    /// Opens (creating) the network's directory and takes its lock, waiting
    /// for any other wasmcni or reference host-local holding it.
    pub fn open(data_dir: &Path, network: &str) -> Result<IpamStore, CniError> {
        let dir = data_dir.join(network);
        std::fs::create_dir_all(&dir).map_err(|e| io(dir.display(), e))?;
        let lock_path = dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io(lock_path.display(), e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io(lock_path.display(), e))?;
        Ok(IpamStore { dir, _lock: lock })
    }

    pub fn reserve(&self, ip: IpAddr, container_id: &str, ifname: &str, range_set: u32) -> Result<bool, CniError> {
        let path = self.dir.join(ip.to_string());
        let mut f = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(io(path.display(), e)),
        };
        let written = f.write_all(format!("{}{LINE_BREAK}{ifname}", container_id.trim()).as_bytes());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&path);
            return Err(io(path.display(), e));
        }
        let last = self.dir.join(format!("{LAST_RESERVED}{range_set}"));
        overwrite(&last, ip.to_string().as_bytes()).map_err(|e| io(last.display(), e))?;
        Ok(true)
    }

    pub fn last_reserved(&self, range_set: u32) -> Result<Option<IpAddr>, CniError> {
        let path = self.dir.join(format!("{LAST_RESERVED}{range_set}"));
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(s.trim().parse().ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(path.display(), e)),
        }
    }

    /// Every lease; files that are not leases (lock, last_reserved_ip.*) are skipped.
    pub fn list(&self) -> Result<Vec<Lease>, CniError> {
        read_leases(&self.dir)
    }

    /// Frees every lease of (container, ifname). Leases written by old
    /// host-local versions carry only the container ID and match any ifname.
    pub fn release_owner(&self, container_id: &str, ifname: &str) -> Result<Vec<IpAddr>, CniError> {
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

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "wasmcni-store-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn reserve_list_release_in_the_reference_layout() {
        let root = tmp();
        let s = IpamStore::open(&root, "net1").unwrap();
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
