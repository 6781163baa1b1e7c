//! sysctl reads and writes under /proc/sys/net. Which keys and values a
//! plugin may use is the capabilities' concern (`wasmcni_scope::sysctl`).

use wasmcni_cni::error::CniError;

fn path(key: &str) -> String {
    format!("/proc/sys/net/{key}")
}

pub fn write(key: &str, value: &str) -> Result<(), CniError> {
    std::fs::write(path(key), value).map_err(|e| CniError::kernel(format!("sysctl net/{key}={value}"), e))
}

pub fn read(key: &str) -> Result<String, CniError> {
    std::fs::read_to_string(path(key))
        .map(|s| s.trim().to_owned())
        .map_err(|e| CniError::kernel(format!("sysctl net/{key}"), e))
}
