//! The limits one call runs under: a memory cap that remembers whether it
//! was hit, and a deadline that stops guest code (and the host calls it
//! waits on), deprioritizing guest code that runs long.

use std::time::Instant;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};

/// Per-call memory limit that remembers whether it was hit, so an
/// out-of-memory trap is reported as such.
pub struct MemoryLimiter {
    max_bytes: usize,
    pub hit: bool,
}

impl MemoryLimiter {
    pub fn new(max_bytes: usize) -> Self {
        MemoryLimiter { max_bytes, hit: false }
    }

    pub fn max_mib(&self) -> usize {
        self.max_bytes >> 20
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            // Trap rather than let the guest see a failed grow and limp on.
            wasmtime::bail!("memory limit of {} MiB exceeded", self.max_mib());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Store data that carries a call's memory limiter.
pub trait Limited: Send + 'static {
    fn limiter(&mut self) -> &mut MemoryLimiter;
}

/// Why a call into a module did not return.
#[derive(Debug)]
pub enum Fault {
    /// It ran past its deadline (guest code, or a host call it waited on).
    TimedOut,
    /// It asked for more memory than its limit (in MiB).
    OutOfMemory { max_mib: usize },
    /// It trapped.
    Trap(wasmtime::Error),
}

/// Guest code running longer than this (in epoch ticks) is deprioritized.
const LONG_RUN_TICKS: u64 = 5;

/// A store for one call, under the call's memory limit and deadline.
/// Guest code that is still running after LONG_RUN_TICKS is moved to the
/// lowest CPU priority when `own_thread` (the thread is this call's alone,
/// never a shared worker), so a looping module cannot crowd out the calls
/// that finish in milliseconds; at the deadline it traps. The deadline is
/// read off the clock, not counted in ticks: a guest thread that waits long
/// for a CPU sees many ticks pass at once.
pub fn store<T: Limited>(engine: &Engine, data: T, deadline: Instant, own_thread: bool) -> Store<T> {
    let mut store = Store::new(engine, data);
    store.limiter(|s| s.limiter());
    let ticks_to = move |at: Instant| at.saturating_duration_since(Instant::now()).div_duration_f64(super::TICK);
    store.set_epoch_deadline(LONG_RUN_TICKS.min(ticks_to(deadline).ceil() as u64 + 1));
    store.epoch_deadline_callback(move |_| {
        let left = ticks_to(deadline);
        if left == 0.0 {
            return Err(Trap::Interrupt.into());
        }
        if own_thread {
            deprioritize_this_thread();
        }
        Ok(UpdateDeadline::Continue(LONG_RUN_TICKS.min(left.ceil() as u64)))
    });
    store
}

/// Lowers the calling thread (the one running the guest) to nice 19.
fn deprioritize_this_thread() {
    let tid = nix::unistd::gettid().as_raw() as nix::libc::id_t;
    // SAFETY: setpriority only reads its arguments; PRIO_PROCESS with a
    // thread ID changes that thread alone.
    unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, tid, 19) };
}

/// Runs a call into a module until `deadline`: the epoch deadline stops
/// guest code, and this one also stops a host call the guest is waiting on.
pub async fn guarded<T: Limited, R>(
    store: &mut Store<T>,
    deadline: Instant,
    f: impl AsyncFnOnce(&mut Store<T>) -> wasmtime::Result<R>,
) -> Result<R, Fault> {
    let outcome = tokio::time::timeout_at((deadline + super::TICK * 10).into(), f(&mut *store)).await;
    match outcome {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) if store.data_mut().limiter().hit => {
            Err(Fault::OutOfMemory { max_mib: store.data_mut().limiter().max_mib() })
        }
        Ok(Err(trap)) if matches!(trap.downcast_ref::<Trap>(), Some(Trap::Interrupt)) => Err(Fault::TimedOut),
        Ok(Err(trap)) => Err(Fault::Trap(trap)),
        Err(_) => Err(Fault::TimedOut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Data(MemoryLimiter);

    impl Limited for Data {
        fn limiter(&mut self) -> &mut MemoryLimiter {
            &mut self.0
        }
    }

    #[test]
    fn the_limiter_refuses_growth_past_its_cap_and_remembers_it() {
        let mut l = MemoryLimiter::new(2 << 20);
        assert!(l.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!l.hit);
        assert!(l.memory_growing(0, 3 << 20, None).is_err());
        assert!(l.hit);
        assert_eq!(l.max_mib(), 2);
    }

    #[tokio::test]
    async fn a_host_wait_past_the_deadline_is_a_timeout_and_a_failure_is_a_trap() {
        let engine = crate::new_engine().unwrap();
        let deadline = Instant::now() + Duration::from_millis(20);
        let mut store = store(&engine, Data(MemoryLimiter::new(1 << 20)), deadline, false);
        let slow = guarded(&mut store, deadline, async |_| {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        });
        assert!(matches!(slow.await, Err(Fault::TimedOut)));
        let failed = guarded(&mut store, deadline, async |_| -> wasmtime::Result<()> { wasmtime::bail!("boom") });
        assert!(matches!(failed.await, Err(Fault::Trap(e)) if e.to_string() == "boom"));
        store.data_mut().0.hit = true;
        let oom = guarded(&mut store, deadline, async |_| -> wasmtime::Result<()> { wasmtime::bail!("grow") });
        assert!(matches!(oom.await, Err(Fault::OutOfMemory { max_mib: 1 })));
    }
}
