//! Per-call memory limit that remembers whether it was hit, so an
//! out-of-memory trap is reported as such.

use wasmtime::ResourceLimiter;

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
