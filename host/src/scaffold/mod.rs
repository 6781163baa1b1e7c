//! `wasmcni new`: a plugin crate that builds to wasm32-wasip2 and whose
//! generated tests pass, with a README on building, testing and deploying.
//! The SDK it depends on is the one given, the checkout's, or the one this
//! binary carries (`sdk`).

pub mod sdk;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// An IPAM policy over the SDK's range IPAM (the `ipam` world).
    Ipam,
    /// A chained network plugin (the `cni-plugin` world).
    Cni,
    /// A policy run before a plugin's ADD (the `policy` world).
    Policy,
    /// Network policy rules from NetworkPolicy objects (the `netpol` world).
    Netpol,
}

const CARGO_TOML: &str = include_str!("template/Cargo.toml.in");
const IPAM_LIB: &str = include_str!("template/ipam.rs.in");
const CNI_LIB: &str = include_str!("template/cni.rs.in");
const POLICY_LIB: &str = include_str!("template/policy.rs.in");
const NETPOL_LIB: &str = include_str!("template/netpol.rs.in");
const README: &str = include_str!("template/README.md.in");

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.len() <= 40
}

/// The SDK of the checkout this binary was built in (`<repo>/target/<profile>/wasmcni`).
fn default_sdk() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let sdk = exe.parent()?.parent()?.parent()?.join("sdk");
    sdk.join("Cargo.toml").is_file().then_some(sdk)
}

pub fn create(name: &str, kind: Kind, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> Result<PathBuf> {
    if !valid_name(name) {
        bail!("{name:?} is not a valid plugin name: lowercase letters, digits and '-', starting with a letter");
    }
    let sdk = match sdk.or_else(default_sdk) {
        Some(dir) => dir,
        None => {
            let cache = sdk::default_cache().context("no HOME or XDG_CACHE_HOME to unpack the SDK in: pass --sdk")?;
            sdk::unpack(&cache)?
        }
    };
    let sdk = sdk.canonicalize().with_context(|| format!("reading {}", sdk.display()))?;
    let root = dir.unwrap_or_else(|| PathBuf::from(name));
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    let (world, lib, usage) = match kind {
        Kind::Ipam => {
            ("ipam", IPAM_LIB, "goes in a plugin's `ipam` section: `\"ipam\": {\"type\": \"wasm-{{name}}\", ...}`")
        }
        Kind::Cni => {
            ("cni-plugin", CNI_LIB, "goes after the main plugin in a conflist: `{\"type\": \"wasm-{{name}}\"}`")
        }
        Kind::Policy => (
            "policy",
            POLICY_LIB,
            "is listed in a plugin's `policies`, which run before its ADD: `\"policies\": [{\"plugin\": \"{{name}}\", \"deny\": [\"sandbox\"]}]`",
        ),
        Kind::Netpol => (
            "netpol",
            NETPOL_LIB,
            "computes the rules `wasmcni netpol --module {{name}} --manifests DIR` prints for a directory of manifests",
        ),
    };
    let fill = |t: &str| {
        t.replace("{{usage}}", usage)
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{world}}", world)
            .replace("{{sdk}}", &sdk.display().to_string())
    };
    write(&root.join("Cargo.toml"), &fill(CARGO_TOML))?;
    write(&root.join("src/lib.rs"), &fill(lib))?;
    write(&root.join("README.md"), &fill(README))?;
    Ok(root)
}

fn write(path: &Path, content: &str) -> Result<()> {
    std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
    std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))
}
