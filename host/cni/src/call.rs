//! One CNI call: its validated environment and its config.

use super::env::CniEnv;
use crate::netconf::NetConf;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_links_and_prev_result_s_host_interfaces_are_in_scope_and_container_ones_are_not() {
        let raw = br#"{"cniVersion": "1.0.0", "name": "n", "type": "x", "bridge": "br9", "hostLinks": ["eth1"],
                 "prevResult": {"cniVersion": "1.0.0",
                   "interfaces": [{"name": "vethA"}, {"name": "eth0", "sandbox": "/run/netns/c"}]}}"#;
        let value = crate::netconf::decode(raw).unwrap();
        let conf = NetConf::from_value(&value, String::from_utf8(raw.to_vec()).unwrap()).unwrap();
        let call = Call { env: CniEnv::default(), conf };
        assert_eq!(call.host_links(), ["br9", "eth1", "vethA"]);
    }
}
