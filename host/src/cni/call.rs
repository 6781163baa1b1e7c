//! One CNI call: its validated environment and its config.

use super::env::CniEnv;
use crate::config::NetConf;

#[derive(Debug)]
pub struct Call {
    pub env: CniEnv,
    pub conf: NetConf,
}

impl Call {
    /// Host-side interfaces listed in prevResult: plugins may touch them.
    pub fn prev_host_links(&self) -> Vec<String> {
        self.conf
            .prev_result
            .iter()
            .flat_map(|r| r.interfaces.iter())
            .filter(|i| i.sandbox.is_none())
            .map(|i| i.name.clone())
            .collect()
    }
}
