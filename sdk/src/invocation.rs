//! Reading what the runtime passed: the plugin's config JSON and CNI_ARGS.
//! (The addresses and MAC it asked for come typed, in `inv.requested`.)

use crate::Error;
use serde::de::DeserializeOwned;

/// Parses the plugin's config; a malformed field is the runtime's error 7.
pub fn parse_config<T: DeserializeOwned>(json: &str) -> Result<T, Error> {
    serde_json::from_str(json).map_err(|e| Error::config(format!("invalid plugin config: {e}")))
}

/// The value of `key` in CNI_ARGS (`K1=V1;K2=V2`, already split by the host).
pub fn arg<'a, I>(args: I, key: &str) -> Option<&'a str>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    args.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// The pod's Kubernetes namespace (CNI_ARGS `K8S_POD_NAMESPACE`), if the
/// runtime passed one.
pub fn pod_namespace(inv: &crate::bindings::wasmcni::plugin::types::Invocation) -> Option<&str> {
    arg(inv.args.iter().map(|a| (a.key.as_str(), a.value.as_str())), "K8S_POD_NAMESPACE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arg_finds_a_key() {
        let args = [("IgnoreUnknown", "1"), ("IP", "10.1.1.1")];
        assert_eq!(arg(args.iter().map(|(k, v)| (*k, *v)), "IP"), Some("10.1.1.1"));
        assert_eq!(arg(args.iter().map(|(k, v)| (*k, *v)), "MAC"), None);
    }
}
