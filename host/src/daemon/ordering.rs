//! Calls for one attachment (network, container ID, ifname) run one at a
//! time, in arrival order: a runtime that gave up on an ADD kills the shim
//! and sends DEL, and that DEL must not interleave with the ADD still running
//! here; it waits for it (the ADD then finished or undid itself) and cleans up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

pub type Key = (String, String, String);

#[derive(Default)]
pub struct Attachments {
    queues: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

/// This call's turn on its attachment; the next call's starts when it drops.
pub struct Turn {
    attachments: Arc<Attachments>,
    key: Key,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Attachments {
    /// Waits for the calls on `key` that arrived earlier (tokio's mutex is fair: FIFO).
    pub async fn turn(self: &Arc<Self>, key: Key) -> Turn {
        let queue = self.queues.lock().expect("not poisoned").entry(key.clone()).or_default().clone();
        let guard = queue.lock_owned().await;
        Turn { attachments: self.clone(), key, guard: Some(guard) }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.queues.lock().expect("not poisoned").len()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut queues = self.attachments.queues.lock().expect("not poisoned");
        drop(self.guard.take());
        // Nobody waiting (only the map holds the queue): forget it.
        if queues.get(&self.key).is_some_and(|q| Arc::strong_count(q) == 1) {
            queues.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(c: &str) -> Key {
        ("net".into(), c.into(), "eth0".into())
    }

    #[tokio::test(start_paused = true)]
    async fn calls_on_one_attachment_run_in_arrival_order_and_others_do_not_wait() {
        let a = Arc::new(Attachments::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let add = a.turn(key("c1")).await;
        let mut waiting = Vec::new();
        for name in ["DEL", "DEL again"] {
            let (a, order) = (a.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = a.turn(key("c1")).await;
                order.lock().unwrap().push(name);
            }));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Another container is not held up by c1's ADD.
        drop(tokio::time::timeout(Duration::from_millis(1), a.turn(key("c2"))).await.expect("c2 went ahead"));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(order.lock().unwrap().is_empty(), "a DEL ran while the ADD was in flight");
        order.lock().unwrap().push("ADD done");
        drop(add);
        for w in waiting {
            w.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["ADD done", "DEL", "DEL again"]);
        assert_eq!(a.len(), 0, "finished attachments are forgotten");
    }
}
