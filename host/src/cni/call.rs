//! One CNI call: its validated environment and its config.

use super::env::CniEnv;
use crate::config::NetConf;

#[derive(Debug)]
pub struct Call {
    pub env: CniEnv,
    pub conf: NetConf,
}

impl Call {
    /// The host links a plugin may touch without creating them: those the
    /// config declares and the host-side interfaces prevResult lists.
    pub fn host_links(&self) -> Vec<String> {
        let listed = self.conf.prev_result.iter().flat_map(|r| r.interfaces.iter()).filter(|i| i.sandbox.is_none());
        self.conf.host_links.iter().cloned().chain(listed.map(|i| i.name.clone())).collect()
    }
}
