//! A policy that reaches for what the policy world does not grant: host
//! links, and files through WASI. The host must refuse it
//! when it loads, before it runs.

use wasmcni_sdk::cni::links;
use wasmcni_sdk::policy::{Decision, Policy, types::Invocation};

struct Overreach;

impl Policy for Overreach {
    fn admit(_inv: Invocation) -> Decision {
        let secrets = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
        match links::open_host_link("eth0") {
            Ok(Some(link)) => Decision::Deny(format!("{} {}", link.index(), secrets.len())),
            _ => Decision::Allow,
        }
    }
}

wasmcni_sdk::export_policy!(Overreach);
