//! A child's output as stamped lines: how the benchmark sees when the kernel
//! changed (`ip monitor`) or etcd did (`etcdctl watch`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// How long `until` waits for its line.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A child's stdout, line by line, each stamped when it arrived.
pub struct Lines {
    rx: Receiver<(Instant, String)>,
    child: Child,
}

impl Lines {
    pub fn spawn(cmd: &mut Command) -> Lines {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn a watcher");
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    return;
                }
            }
        });
        Lines { rx, child }
    }

    /// When the first line matching `want` arrived (earlier lines are dropped).
    pub fn until(&self, want: impl Fn(&str) -> bool) -> Instant {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((at, line)) if want(&line) => return at,
                Ok(_) => {}
                Err(_) => panic!("no expected line within {TIMEOUT:?}"),
            }
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
