//! An IPAM module built against the frozen WIT 0.1.0 (wit/compat/0.1.0), with
//! wit-bindgen directly and no SDK, as a module built before 0.2 was. The
//! version-skew tests run it on the current host: the lowest free address
//! of `ipam.subnet`, released by owner.

wit_bindgen::generate!({ world: "ipam", path: "../../../wit/compat/0.1.0" });

use exports::wasmcni::plugin::handler::Guest;
use wasmcni::plugin::ipam_store;
use wasmcni::plugin::log::{Level, emit};
use wasmcni::plugin::types::{Attachment, CniError, CniResult, Invocation, IpConfig};

fn fail(msg: String) -> CniError {
    CniError { code: 7, msg, details: String::new() }
}

fn subnet(inv: &Invocation) -> Result<ipnet::Ipv4Net, CniError> {
    let config: serde_json::Value = serde_json::from_str(&inv.config).map_err(|e| fail(e.to_string()))?;
    let subnet = config.pointer("/ipam/subnet").and_then(|s| s.as_str()).unwrap_or_default();
    subnet.parse().map_err(|_| fail(format!("ipam.subnet {subnet:?} is not an IPv4 CIDR")))
}

struct LegacyIpam;

impl Guest for LegacyIpam {
    fn add(inv: Invocation) -> Result<CniResult, CniError> {
        let net = subnet(&inv)?;
        let gateway = net.hosts().next().ok_or_else(|| fail("subnet too small".into()))?;
        for ip in net.hosts().skip(1) {
            if ipam_store::reserve(&ip.to_string(), &inv.container_id, &inv.ifname, 0)? {
                emit(Level::Info, &format!("legacy-ipam: {ip} for {}", inv.container_id));
                let address = format!("{ip}/{}", net.prefix_len());
                let ip = IpConfig { address, gateway: Some(gateway.to_string()), iface: None };
                return Ok(CniResult { interfaces: vec![], ips: vec![ip], routes: vec![], dns: None });
            }
        }
        Err(CniError { code: 50, msg: format!("{net} is exhausted"), details: String::new() })
    }

    fn del(inv: Invocation) -> Result<(), CniError> {
        ipam_store::release_owner(&inv.container_id, &inv.ifname).map(|_| ())
    }

    fn check(inv: Invocation) -> Result<(), CniError> {
        let owned = ipam_store::leases()?.iter().any(|l| l.container_id == inv.container_id);
        if owned { Ok(()) } else { Err(fail(format!("no lease for {}", inv.container_id))) }
    }

    fn status(inv: Invocation) -> Result<(), CniError> {
        subnet(&inv).map(|_| ())
    }

    fn gc(_inv: Invocation, valid: Vec<Attachment>) -> Result<(), CniError> {
        for lease in ipam_store::leases()? {
            if !valid.iter().any(|a| a.container_id == lease.container_id && a.ifname == lease.ifname) {
                ipam_store::release_owner(&lease.container_id, &lease.ifname)?;
            }
        }
        Ok(())
    }
}

export!(LegacyIpam);
