//! sysctls under /proc/sys/net: the [`Sysctl`] trait and the kernel's. Which
//! keys and values a plugin may use is the capabilities' concern
//! (`wasmcni_scope::sysctl`).

use crate::netns::Kernel;
use crate::{Error, Result};

/// A namespace's sysctls, by key relative to /proc/sys/net (`ipv4/ip_forward`).
pub trait Sysctl: Send + Sync {
    /// The value, trimmed.
    fn sysctl(&self, key: &str) -> Result<String>;

    fn set_sysctl(&self, key: &str, value: &str) -> Result<()>;
}

fn path(key: &str) -> String {
    format!("/proc/sys/net/{key}")
}

fn write(key: &str, value: &str) -> Result<()> {
    std::fs::write(path(key), value).map_err(|source| Error::Sysctl {
        key: key.to_owned(),
        value: Some(value.to_owned()),
        source,
    })
}

fn read(key: &str) -> Result<String> {
    std::fs::read_to_string(path(key)).map(|s| s.trim().to_owned()).map_err(|source| Error::Sysctl {
        key: key.to_owned(),
        value: None,
        source,
    })
}

/// /proc/sys/net shows the netns of the thread that opens it: a container's
/// is read and written on its worker.
impl Sysctl for Kernel {
    fn sysctl(&self, key: &str) -> Result<String> {
        match self.netns() {
            None => read(key),
            Some(ns) => {
                let key = key.to_owned();
                ns.run(move || read(&key))
            }
        }
    }

    fn set_sysctl(&self, key: &str, value: &str) -> Result<()> {
        match self.netns() {
            None => write(key, value),
            Some(ns) => {
                let (key, value) = (key.to_owned(), value.to_owned());
                ns.run(move || write(&key, &value))
            }
        }
    }
}
