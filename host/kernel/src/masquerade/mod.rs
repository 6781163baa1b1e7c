//! Source NAT for `ipMasq`, programmed in-process over nfnetlink: no `nft`
//! process per call, O(1) work per container, every kernel change one atomic
//! nftables transaction, and no listing of the ruleset on DEL.
//!
//! # Kernel layout (table `inet wasmcni`)
//!
//! - per network, a nat base chain `masq-<network>` (hook postrouting,
//!   priority srcnat = 100, policy accept);
//! - per network and `exclude` prefix, a set `masq-<network>-<addr>-<len>` of
//!   source addresses (`ipv4_addr` / `ipv6_addr`) and ONE rule in that chain:
//!   `meta nfproto ipv4 ip saddr @set ip daddr != <exclude> ip daddr != 224.0.0.0/4 masquerade`
//!   (ip6 / ff00::/8 for v6). Two prefix compares instead of the anonymous set
//!   `!= { exclude, multicast }`: same match, no interval set to build;
//! - per container, one set element per source address.
//!
//! Names stay readable; one longer than [`MAX_NAME`] becomes its first bytes
//! plus `/` and 16 hex digits of its sha256 (`/` never occurs in an unhashed
//! name, so the two forms cannot collide).
//!
//! # Creating the shared set and rule exactly once, without listing
//!
//! A refused transaction is expensive: the kernel aborts it with an RCU grace
//! period (~10 ms here) under its commit mutex, stalling every other commit;
//! 200 cold-start adders racing on EEXIST took seconds. So `add` never expects
//! a refusal: it looks the set up by name (NFT_MSG_GETSET: a read of one
//! object, no transaction). Missing, it takes its turn at creating that set
//! (flock on `addr/create@<exclude>`, held only then), looks again, and if
//! still missing sends ONE transaction: table + chain (NLM_F_CREATE,
//! idempotent), the set (NLM_F_EXCL) and the rule. EXCL still guarantees one
//! rule against creators that don't take turns (another state dir): their
//! EEXIST means set and rule exist. Then one transaction adds the element
//! (NLM_F_CREATE without EXCL: present already is fine). Steady state: one
//! lookup plus one one-message transaction.
//!
//! # State on disk (`<state_dir>/masquerade/<network>/`)
//!
//! - `<container>:<ifname>`: the attachment's record, one `<source> <exclude>`
//!   line per address, appended (O_APPEND) before the element is added, so a
//!   crash leaves a record and never an untracked element. DEL reads it,
//!   deletes the elements in one transaction and removes it last. Only whole
//!   lines count: a line cut by a crash was never followed by a kernel change.
//!   ifnames cannot contain `:`, so the name splits at its last `:`. A name
//!   too long for a file is `#<sha256>` instead, its first line `owner <name>`.
//! - `addr/<source>@<exclude>`: the claim on a shared element, naming the
//!   attachment that added it last. Elements are keyed by address only, so if
//!   an address is reassigned before its old attachment's DEL runs (IPAM freed
//!   first, DEL retried later), that DEL must leave the new owner's element
//!   alone: it deletes an element only while the claim is its own. Claims are
//!   taken with flock(2) for the few microseconds of one transaction, released
//!   by unlinking while locked (lockers re-open if they locked an unlinked
//!   file); there is no lock across a whole call and none wider than one address.
//!
//! Nothing is fsynced: the kernel ruleset does not survive a reboot either, and
//! after one a stale record deletes elements that are gone, which is fine.
//!
//! Calls for one attachment must not overlap (the host runs them in order);
//! everything else may run concurrently, in threads or processes. The shared
//! chain, sets and rules stay when their last element goes (an empty set
//! costs nothing, and removing them would race with adders).
//!
//! [`Nat`] is the interface: [`Masquerade`] implements it as above,
//! `fake::Nat` in memory.
//!
//! The netlink socket opens lazily, in the network namespace of the thread
//! making the first call, and stays open for the `Masquerade`'s life. Keep one
//! per daemon: on this kernel (6.18) releasing an nfnetlink socket while
//! nftables still has deferred frees pending (every DEL leaves some for one
//! grace period) waits for them under the commit mutex. 200 one-shot DEL
//! processes therefore take ~1.6 s together although each call takes ~0.1 ms;
//! the same 200 DELs from long-lived sockets take ~12 ms. `nft` pays it too.
//!
//! # What netlink-packet-netfilter 0.4 lacks
//!
//! Everything is built from its typed messages and attributes, except the
//! `masq` expression, which has no typed variant: it is sent as
//! `Expressions::Other { "masq", [] }` (masq needs no attributes, so this is
//! exact). nft's set/rule user data (comments, key byte order) is not sent:
//! `nft` infers it from the key type. Replies are read with netlink-packet-core's
//! `NetlinkBuffer`/`ErrorBuffer`.

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_netfilter::nftables::{NfTablesMessage, SetAttribute, SetMessage};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

mod nft;
use crate::nft::{Failure, Lazy, Op};
use nft::{chain_msg, element_msg, rule_msg, set_msg, table_msg};

pub use crate::nft::MAX_NAME;
use crate::nft::bounded;

pub const TABLE: &str = "wasmcni";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {what} {value:?}")]
    Invalid { what: &'static str, value: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The kernel refused a request (`op`: the message it refused); `source` carries the errno.
    #[error("nftables {op}: {source}")]
    Kernel { op: &'static str, source: io::Error },
    /// The netlink socket itself failed, or the kernel's reply made no sense; the socket is reopened next time.
    #[error("netlink socket ({op}): {source}")]
    Socket { op: &'static str, source: io::Error },
}

impl Error {
    /// The errno of a refused transaction.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

fn invalid(what: &'static str, value: impl Into<String>) -> Error {
    Error::Invalid { what, value: value.into() }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

/// Who a rule is for: identity includes the ifname.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
}

impl Owner {
    /// The record's file name, also what a claim holds: `<container>:<ifname>`.
    pub(crate) fn key(&self) -> Result<String, Error> {
        validate_network(&self.network)?;
        let c = &self.container_id;
        if c.is_empty() || c.contains(['/', '\0', '\n']) {
            return Err(invalid("container id", c));
        }
        let i = &self.ifname;
        // The kernel's rules for interface names (dev_valid_name).
        if i.is_empty()
            || i.len() > 15
            || i == "."
            || i == ".."
            || i.contains(['/', ':', '\0'])
            || i.contains(char::is_whitespace)
        {
            return Err(invalid("ifname", i));
        }
        Ok(format!("{c}:{i}"))
    }
}

/// The longest file name the kernel takes.
const MAX_FILE_NAME: usize = 255;

/// A record's file name: its key, or for a key too long to be a file name `#` and the key's sha256
/// (no `:` in it, so never a key). Such a record starts with an [`OWNER`] line naming the key.
fn record_name(key: &str) -> (String, bool) {
    if key.len() <= MAX_FILE_NAME {
        return (key.to_owned(), false);
    }
    (format!("#{}", hex(&Sha256::digest(key.as_bytes()))), true)
}

const OWNER: &str = "owner ";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn validate_network(n: &str) -> Result<(), Error> {
    let ok = n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if n.is_empty() || n.len() > 255 || n == "." || n == ".." || !ok {
        return Err(invalid("network name", n));
    }
    Ok(())
}

pub fn chain_name(network: &str) -> String {
    bounded(format!("masq-{network}"))
}

/// `:` is not allowed in nft identifiers, `_` never occurs in an address, `-` never in a prefix.
pub fn set_name(network: &str, exclude: IpNet) -> String {
    bounded(format!("masq-{network}-{}-{}", exclude.addr().to_string().replace(':', "_"), exclude.prefix_len()))
}

/// One masqueraded address of an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    source: IpAddr,
    exclude: IpNet,
}

impl Entry {
    fn line(&self) -> String {
        format!("{} {}\n", self.source, self.exclude)
    }
    fn claim_name(&self) -> String {
        format!("{}@{}_{}", self.source, self.exclude.addr(), self.exclude.prefix_len())
    }
}

/// The entries of a record; a last line without its newline was cut by a crash and never acted on.
fn parse_record(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n') && !l.starts_with(OWNER)) {
        let mut words = line.split_whitespace();
        let entry = match (words.next(), words.next(), words.next()) {
            (Some(s), Some(e), None) => {
                s.parse().ok().zip(e.parse().ok()).map(|(source, exclude)| Entry { source, exclude })
            }
            _ => None,
        };
        entries.push(entry.ok_or_else(|| line.trim_end().to_owned())?);
    }
    entries.sort();
    entries.dedup();
    Ok(entries)
}

fn read_record(path: &Path) -> Result<Option<Vec<Entry>>, Error> {
    match fs::read_to_string(path) {
        Ok(text) => {
            parse_record(&text).map(Some).map_err(|line| invalid("record line", format!("{}: {line}", path.display())))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// The key an [`OWNER`] line of a hashed record names.
fn record_owner(path: &Path) -> Result<Option<String>, Error> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().next().and_then(|l| l.strip_prefix(OWNER)).map(str::to_owned)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Creates the hashed record at `path` with its [`OWNER`] line unless it exists: written beside
/// and linked into place, so the record never exists without it.
fn create_hashed_record(path: &Path, key: &str) -> Result<(), Error> {
    let staged = path.with_extension("staged");
    let write = || {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&staged)?
            .write_all(format!("{OWNER}{key}\n").as_bytes())
    };
    write().map_err(io_err(&staged))?;
    let linked = fs::hard_link(&staged, path);
    let _ = fs::remove_file(&staged);
    match linked {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// Appends `entry` unless the record has it. One small O_APPEND write is all or nothing.
fn append_record(path: &Path, entry: Entry) -> Result<(), Error> {
    if read_record(path)?.is_some_and(|entries| entries.contains(&entry)) {
        return Ok(());
    }
    let mut file = OpenOptions::new().append(true).create(true).mode(0o600).open(path).map_err(io_err(path))?;
    file.write_all(entry.line().as_bytes()).map_err(io_err(path))
}

/// An flock'ed file (a claim, or a turn at creating a set); the lock goes with the handle.
struct LockedFile {
    file: File,
    path: PathBuf,
}

impl LockedFile {
    /// Locks the file at `path`, creating it if asked; `None` when there is none.
    fn lock(path: PathBuf, create: bool) -> Result<Option<LockedFile>, Error> {
        loop {
            let file = match OpenOptions::new().read(true).write(true).create(create).mode(0o600).open(&path) {
                Ok(file) => file,
                Err(e) if !create && e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_err(&path)(e)),
            };
            file.lock().map_err(io_err(&path))?;
            // Files are unlinked only under their lock: a live link means `path` is still this file.
            if file.metadata().map_err(io_err(&path))?.nlink() > 0 {
                return Ok(Some(LockedFile { file, path }));
            }
        }
    }
    fn holder(&mut self) -> Result<String, Error> {
        let mut s = String::new();
        self.file.read_to_string(&mut s).map_err(io_err(&self.path))?;
        Ok(s)
    }
    fn set_holder(&mut self, key: &str) -> Result<(), Error> {
        self.file.set_len(0).map_err(io_err(&self.path))?;
        std::os::unix::fs::FileExt::write_all_at(&self.file, key.as_bytes(), 0).map_err(io_err(&self.path))
    }
    /// Removes the claim; dropping `self` afterwards unlocks it.
    fn release(&self) -> Result<(), Error> {
        fs::remove_file(&self.path).map_err(io_err(&self.path))
    }
}

/// Source NAT of attachments' addresses, per (network, container, ifname).
pub trait Nat: Send + Sync {
    /// Masquerade traffic from `source` leaving for anywhere except `exclude` and multicast
    /// (224.0.0.0/4, ff00::/8). Idempotent.
    fn add(&self, owner: &Owner, source: IpAddr, exclude: IpNet) -> crate::Result<()>;

    /// Remove everything `add` did for this owner, except an address another owner has taken
    /// since. Idempotent (nothing there = Ok).
    fn delete(&self, owner: &Owner) -> crate::Result<()>;

    /// Remove this network's entries of every (container, ifname) `keep` refuses.
    fn gc(&self, network: &str, keep: impl Fn(&str, &str) -> bool) -> crate::Result<()>;
}

pub struct Masquerade {
    state_dir: PathBuf,
    nl: Lazy,
}

impl Masquerade {
    pub fn new(state_dir: PathBuf) -> Masquerade {
        Masquerade { state_dir, nl: Lazy::default() }
    }

    fn network_dir(&self, network: &str) -> PathBuf {
        self.state_dir.join("masquerade").join(network)
    }

    fn add_entry(&self, owner: &Owner, source: IpAddr, exclude: IpNet) -> Result<(), Error> {
        let key = owner.key()?;
        if source.is_ipv4() != exclude.addr().is_ipv4() {
            return Err(invalid("exclude (other address family than the source)", exclude.to_string()));
        }
        let entry = Entry { source, exclude: exclude.trunc() };
        let dir = self.network_dir(&owner.network);
        let claims = dir.join("addr");
        fs::create_dir_all(&claims).map_err(io_err(&claims))?;
        let (name, hashed) = record_name(&key);
        let record = dir.join(name);
        if hashed {
            create_hashed_record(&record, &key)?;
        }
        append_record(&record, entry)?;
        let mut claim = LockedFile::lock(claims.join(entry.claim_name()), true)?.expect("created");
        claim.set_holder(&key)?;
        self.add_element(&owner.network, entry, &claims)
    }

    fn add_element(&self, network: &str, entry: Entry, claims: &Path) -> Result<(), Error> {
        let set = set_name(network, entry.exclude);
        // A refused transaction costs the kernel an RCU grace period under its commit mutex, stalling
        // every other commit: look the set up (a read, no transaction) rather than let an add fail.
        if !self.set_exists(&set)? {
            // Creators of one set take turns, so a cold start with many adders aborts nothing.
            let lock = claims.join(format!("create@{}_{}", entry.exclude.addr(), entry.exclude.prefix_len()));
            let _turn = LockedFile::lock(lock, true)?;
            if !self.set_exists(&set)? {
                let chain = chain_name(network);
                let batch = vec![
                    ("add table", NLM_F_CREATE, table_msg()),
                    ("add chain", NLM_F_CREATE, chain_msg(&chain)),
                    ("add set", NLM_F_CREATE | NLM_F_EXCL, set_msg(&set, entry.exclude)),
                    ("add rule", NLM_F_CREATE | NLM_F_APPEND, rule_msg(&chain, &set, entry.exclude)),
                ];
                match self.call(batch, true) {
                    // Created meanwhile by someone not taking turns (another state dir): still one rule.
                    Err(e) if e.errno() == Some(nix::libc::EEXIST) => {}
                    other => other?,
                }
            }
        }
        self.call(vec![("add element", NLM_F_CREATE, element_msg(&set, entry.source, true))], true)
    }

    fn set_exists(&self, set: &str) -> Result<bool, Error> {
        let get = NfTablesMessage::GetSet(SetMessage {
            attributes: vec![SetAttribute::Table(TABLE.into()), SetAttribute::Name(set.into())],
        });
        match self.call(vec![("look up set", 0, get)], false) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(nix::libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// O(1): no listing. A failed delete is an error, never a silent success.
    fn delete_entries(&self, owner: &Owner) -> Result<(), Error> {
        let key = owner.key()?;
        let dir = self.network_dir(&owner.network);
        let record = dir.join(record_name(&key).0);
        let Some(entries) = read_record(&record)? else { return Ok(()) };
        // Claims are locked in sorted order (entries are sorted), so two DELs cannot deadlock.
        let mut mine = Vec::new();
        for entry in entries {
            if let Some(mut claim) = LockedFile::lock(dir.join("addr").join(entry.claim_name()), false)? {
                match claim.holder()? {
                    holder if holder == key => mine.push((entry, claim)),
                    // Created by an add killed before it named itself (under this lock): no element
                    // was added under it, and no one else will ever remove it.
                    holder if holder.is_empty() => claim.release()?,
                    _ => {}
                }
            }
        }
        let elements: Vec<_> = mine
            .iter()
            .map(|(e, _)| ("delete element", 0, element_msg(&set_name(&owner.network, e.exclude), e.source, false)))
            .collect();
        match self.call(elements.clone(), true) {
            // One element (or its set) is gone and that aborted the whole transaction: go one by one.
            Err(e) if e.errno() == Some(nix::libc::ENOENT) => {
                for element in elements {
                    match self.call(vec![element], true) {
                        Err(e) if e.errno() == Some(nix::libc::ENOENT) => {}
                        other => other?,
                    }
                }
            }
            other => other?,
        }
        for (_, claim) in &mine {
            claim.release()?;
        }
        match fs::remove_file(&record) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&record)(e)),
            _ => Ok(()),
        }
    }

    /// Tries every stale attachment and reports the first failure.
    fn collect(&self, network: &str, keep: impl Fn(&str, &str) -> bool) -> Result<(), Error> {
        validate_network(network)?;
        let dir = self.network_dir(network);
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut first_error = None;
        for dirent in listing {
            let dirent = dirent.map_err(io_err(&dir))?;
            if dirent.file_type().map_err(io_err(&dir))?.is_dir() {
                continue;
            }
            let mut name = dirent.file_name().to_string_lossy().into_owned();
            if name.starts_with('#') && !name.ends_with(".staged") {
                match record_owner(&dirent.path())? {
                    Some(key) => name = key,
                    None => continue,
                }
            }
            let Some((container_id, ifname)) = name.rsplit_once(':') else { continue };
            if keep(container_id, ifname) {
                continue;
            }
            let owner =
                Owner { network: network.to_owned(), container_id: container_id.to_owned(), ifname: ifname.to_owned() };
            if let Err(e) = self.delete_entries(&owner) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Sends `msgs` (what each does, its flags, itself), as one atomic transaction if `batch`.
    /// An empty list is a no-op.
    fn call(&self, msgs: Vec<Op>, batch: bool) -> Result<(), Error> {
        self.nl.call(msgs, batch).map_err(|f| match f {
            Failure::Refused { op, errno } => Error::Kernel { op, source: io::Error::from_raw_os_error(errno) },
            Failure::Socket { op, source } => Error::Socket { op, source },
        })
    }
}

impl Nat for Masquerade {
    fn add(&self, owner: &Owner, source: IpAddr, exclude: IpNet) -> crate::Result<()> {
        Ok(self.add_entry(owner, source, exclude)?)
    }

    fn delete(&self, owner: &Owner) -> crate::Result<()> {
        Ok(self.delete_entries(owner)?)
    }

    fn gc(&self, network: &str, keep: impl Fn(&str, &str) -> bool) -> crate::Result<()> {
        Ok(self.collect(network, keep)?)
    }
}

#[cfg(test)]
mod kernel_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(c: &str, i: &str) -> Owner {
        Owner { network: "cbr0".into(), container_id: c.into(), ifname: i.into() }
    }

    #[test]
    fn names_are_readable_bounded_and_distinct() {
        assert_eq!(chain_name("cbr0"), "masq-cbr0");
        assert_eq!(set_name("cbr0", "10.88.0.0/16".parse().unwrap()), "masq-cbr0-10.88.0.0-16");
        assert_eq!(set_name("cbr0", "fd00:88::/64".parse().unwrap()), "masq-cbr0-fd00_88__-64");
        let long = "n".repeat(300);
        let (a, b) = (chain_name(&long), chain_name(&format!("{long}x")));
        assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME && a != b && a.contains('/'), "{a} {b}");
        assert_eq!(a, chain_name(&long), "deterministic");
        let net = "x".repeat(50);
        assert_ne!(set_name(&net, "10.0.0.0/8".parse().unwrap()), set_name(&net, "10.0.0.0/9".parse().unwrap()));
        assert!(set_name(&net, "fd00::/8".parse().unwrap()).len() <= MAX_NAME);
    }

    #[test]
    fn owners_are_validated() {
        assert_eq!(owner("abc-1", "eth0").key().unwrap(), "abc-1:eth0");
        assert_eq!(owner("a:b", "eth0").key().unwrap(), "a:b:eth0", "splits at the last ':'");
        for (c, i) in [
            ("", "eth0"),
            ("a/b", "eth0"),
            ("a", ""),
            ("a", "e:0"),
            ("a", "e 0"),
            ("a", "0123456789abcdef"),
            ("a", ".."),
        ] {
            assert!(owner(c, i).key().is_err(), "{c:?} {i:?}");
        }
        assert_eq!(owner(&"c".repeat(600), "eth0").key().unwrap().len(), 605, "any length");
        for n in ["", "..", "a/b", "a b", "ünï"] {
            assert!(Owner { network: n.into(), ..owner("a", "eth0") }.key().is_err(), "{n:?}");
        }
    }

    #[test]
    fn records_append_dedup_and_ignore_a_cut_last_line() {
        let dir = std::env::temp_dir().join(format!("wcnft-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c:eth0");
        let v4 = Entry { source: "10.88.0.5".parse().unwrap(), exclude: "10.88.0.0/16".parse().unwrap() };
        let v6 = Entry { source: "fd00::5".parse().unwrap(), exclude: "fd00::/64".parse().unwrap() };
        assert_eq!(read_record(&path).unwrap(), None);
        append_record(&path, v4).unwrap();
        append_record(&path, v4).unwrap();
        append_record(&path, v6).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);
        // A crash mid-line: "/1" would be a valid but wrong prefix, so it must not count.
        fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"10.88.0.6 10.88.0.0/1").unwrap();
        assert_eq!(read_record(&path).unwrap(), Some(vec![v4, v6]));
        fs::write(&path, "garbage here\n").unwrap();
        assert!(matches!(read_record(&path), Err(Error::Invalid { .. })));
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(v6.claim_name(), "fd00::5@fd00::_64");
    }

    #[test]
    fn delete_removes_a_claim_its_killed_add_left_unnamed() {
        let state = std::env::temp_dir().join(format!("wcnft-unnamed-{}", std::process::id()));
        let dir = state.join("masquerade/cbr0");
        fs::create_dir_all(dir.join("addr")).unwrap();
        let entry = Entry { source: "10.88.0.5".parse().unwrap(), exclude: "10.88.0.0/16".parse().unwrap() };
        append_record(&dir.join("c1:eth0"), entry).unwrap();
        fs::write(dir.join("addr").join(entry.claim_name()), "").unwrap();
        // No element is owned, so nothing is sent to the kernel.
        Masquerade::new(state.clone()).delete(&owner("c1", "eth0")).unwrap();
        let left: Vec<_> = fs::read_dir(dir.join("addr")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty() && !dir.join("c1:eth0").exists(), "{left:?}");
        fs::remove_dir_all(state).unwrap();
    }

    #[test]
    fn claims_hold_a_key_and_vanish_on_release() {
        let dir = std::env::temp_dir().join(format!("wcnft-claim-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("10.0.0.1@10.0.0.0_8");
        assert!(LockedFile::lock(path.clone(), false).unwrap().is_none());
        let mut claim = LockedFile::lock(path.clone(), true).unwrap().unwrap();
        claim.set_holder("a-long-container-id:eth0").unwrap();
        claim.set_holder("b:eth0").unwrap();
        drop(claim);
        let mut claim = LockedFile::lock(path.clone(), false).unwrap().unwrap();
        assert_eq!(claim.holder().unwrap(), "b:eth0");
        claim.release().unwrap();
        drop(claim);
        assert!(!path.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
