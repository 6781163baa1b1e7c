//! Source NAT for ipMasq, in an nftables table of our own (`inet wasmcni`),
//! driven through the `nft` tool. Each rule's comment names its network and
//! container so DEL and GC find exactly their own rules.

use crate::cni::error::CniError;
use ipnet::IpNet;
use serde_json::Value;
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

const TABLE: &str = "wasmcni";
const CHAIN: &str = "postrouting";

/// The comment that tags a rule (nftables allows 128 bytes).
pub fn owner_tag(network: &str, container_id: &str) -> String {
    let tag = format!("{network}/{container_id}");
    if tag.len() <= 120 {
        tag
    } else {
        use sha2::Digest;
        format!("{network}/sha256:{}", &hex::encode(sha2::Sha256::digest(container_id))[..32])
    }
}

fn nft(script: &str) -> Result<String, CniError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CniError::io(format!("cannot run nft (is nftables installed?): {e}")))?;
    child.stdin.take().expect("piped").write_all(script.as_bytes()).map_err(|e| CniError::io(format!("nft: {e}")))?;
    let out = child.wait_with_output().map_err(|e| CniError::io(format!("nft: {e}")))?;
    if !out.status.success() {
        return Err(CniError::kernel("nft", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Masquerades traffic from `source` that leaves `exclude` and is not multicast.
pub fn add(tag: &str, source: IpAddr, exclude: IpNet) -> Result<(), CniError> {
    let (fam, multicast) = if source.is_ipv4() { ("ip", "224.0.0.0/4") } else { ("ip6", "ff00::/8") };
    let script = format!(
        "add table inet {TABLE}\n\
         add chain inet {TABLE} {CHAIN} {{ type nat hook postrouting priority srcnat; policy accept; }}\n\
         add rule inet {TABLE} {CHAIN} {fam} saddr {source} {fam} daddr != {{ {exclude}, {multicast} }} masquerade comment \"{tag}\"\n"
    );
    nft(&script).map(|_| ())
}

/// Handles and comments of the rules in our chain (empty when there is no table).
fn rules() -> Result<Vec<(u64, String)>, CniError> {
    let out = Command::new("nft")
        .args(["-j", "list", "chain", "inet", TABLE, CHAIN])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| CniError::io(format!("cannot run nft (is nftables installed?): {e}")))?;
    // No table or chain yet: nothing of ours to find.
    if !out.status.success() {
        return Ok(Vec::new());
    }
    let listing = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&listing).map_err(|e| CniError::io(format!("nft output: {e}")))?;
    let items = json.get("nftables").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok(items
        .iter()
        .filter_map(|i| i.get("rule"))
        .filter_map(|r| Some((r.get("handle")?.as_u64()?, r.get("comment")?.as_str()?.to_owned())))
        .collect())
}

/// Deletes every rule whose tag `doomed` picks. A concurrent DEL may remove
/// a listed rule first, failing the batch: list again and retry.
pub fn delete_where(doomed: impl Fn(&str) -> bool) -> Result<usize, CniError> {
    let mut attempt = 0;
    loop {
        let script: String = rules()?
            .into_iter()
            .filter(|(_, tag)| doomed(tag))
            .map(|(handle, _)| format!("delete rule inet {TABLE} {CHAIN} handle {handle}\n"))
            .collect();
        if script.is_empty() {
            return Ok(0);
        }
        match nft(&script) {
            Ok(_) => return Ok(script.lines().count()),
            Err(e) if attempt >= 2 => return Err(e),
            Err(_) => attempt += 1,
        }
    }
}

/// The network part of a tag.
pub fn tag_network(tag: &str) -> &str {
    tag.split_once('/').map(|(n, _)| n).unwrap_or_default()
}
