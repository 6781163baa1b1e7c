//! An exclusive flock(2) on a lock file, waited for until a deadline: how
//! wasmcni's processes (and the reference host-local) take turns on state
//! they share on disk.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Why the lock was not taken.
#[derive(Debug)]
pub enum Refused {
    /// Someone else still held it at the deadline, after this long.
    Busy(Duration),
    Io(std::io::Error),
}

/// Opens (creating) `path` and locks it, polling until `deadline`: a
/// blocking flock could not be given up when the call's time is over.
pub fn exclusive(path: &Path, deadline: Instant) -> Result<Flock<File>, Refused> {
    let started = Instant::now();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(Refused::Io)?;
    let mut pause = Duration::from_millis(1);
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() + pause < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
                file = f;
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Err(Refused::Busy(started.elapsed())),
            Err((_, e)) => return Err(Refused::Io(e.into())),
        }
    }
}
