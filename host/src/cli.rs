//! The command line when not exec'd as a CNI plugin.

use crate::cni::version;
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wasmcni_engine::cache::Cache;
use wasmcni_engine::{new_engine, world};

#[derive(Parser)]
#[command(
    name = "wasmcni",
    version,
    about = "A CNI plugin whose networking logic runs as sandboxed WebAssembly components.\n\
Exec'd by a container runtime with CNI_COMMAND set, it speaks the CNI protocol."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// Where compiled modules are kept.
    #[arg(long, global = true, env = "WASMCNI_CACHE_DIR", default_value = wasmcni_engine::cache::DEFAULT_CACHE_DIR)]
    cache_dir: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the versions of wasmcni, the CNI spec and the WIT package.
    Version,
    /// Compile modules into the cache ahead of time (a .wasm file or a directory of them).
    Precompile { path: PathBuf },
    /// Install the binary, its `wasm-<name>` links and the first-party modules.
    Install {
        #[arg(long, default_value = "/opt/cni/bin")]
        bin_dir: PathBuf,
        #[arg(long, default_value = crate::config::DEFAULT_MODULE_DIR)]
        module_dir: PathBuf,
        /// Where the built modules are (default: `modules/` beside the binary).
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Show a module's world, WIT version, imports and exports.
    Inspect { module: PathBuf },
    /// Create a plugin project: its tests pass and it builds to a component.
    New {
        name: String,
        #[arg(long, value_enum)]
        kind: crate::scaffold::Kind,
        #[arg(long, value_enum, default_value = "rust")]
        lang: crate::scaffold::Lang,
        /// Where to create it (default: ./<name>).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The wasmcni-sdk directory (default: this binary's checkout's, else the
        /// SDK it carries, unpacked under $XDG_CACHE_HOME/wasmcni).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Check a module against the CNI contract in throwaway network
    /// namespaces (root needed) and print a pass/fail table; exits non-zero
    /// on any failure.
    Test {
        module: PathBuf,
        /// A JSON object merged into the module's own config (for an IPAM
        /// module, its `ipam` section; for a policy, its `policies` entry).
        #[arg(long, value_parser = json_object)]
        config: Option<serde_json::Map<String, serde_json::Value>>,
        /// Test a network plugin chained after the first-party bridge, with
        /// the bridge's result as its prevResult.
        #[arg(long)]
        chained: bool,
        /// Where the first-party modules the run uses (bridge, host-local) are.
        #[arg(long, env = "WASMCNI_MODULE_DIR", default_value = crate::config::DEFAULT_MODULE_DIR)]
        module_dir: PathBuf,
    },
    /// Print the network policy rules a netpol module computes for the pods
    /// of a directory of manifests (NetworkPolicy, Namespace, Pod; YAML or JSON).
    Netpol {
        /// The module: a name in --module-dir, or a path.
        #[arg(long, default_value = "k8s-networkpolicy")]
        module: String,
        #[arg(long, env = "WASMCNI_MODULE_DIR", default_value = crate::config::DEFAULT_MODULE_DIR)]
        module_dir: PathBuf,
        /// The directory of manifests.
        #[arg(long)]
        manifests: PathBuf,
        /// The pods this node serves (`namespace/name`, comma-separated; all by default).
        #[arg(long, value_delimiter = ',')]
        local: Vec<String>,
    },
    /// Serve CNI calls from warm modules over an HTTP API on a unix socket.
    Daemon {
        #[arg(long, default_value = "/run/wasmcni/wasmcni.sock")]
        socket: PathBuf,
        /// Also listen on TCP (needs --token-file).
        #[arg(long)]
        tcp: Option<std::net::SocketAddr>,
        /// File holding the bearer token the TCP API requires.
        #[arg(long)]
        token_file: Option<PathBuf>,
        #[arg(long, env = "WASMCNI_MODULE_DIR", default_value = crate::config::DEFAULT_MODULE_DIR)]
        module_dir: PathBuf,
        /// How often the module directory is checked for replaced files.
        #[arg(long, default_value_t = 1000)]
        watch_interval_ms: u64,
        /// Calls in flight at most; more get "try again later" (11), except
        /// DEL and GC, which wait. The open-file limit may lower it.
        #[arg(long, default_value_t = 256)]
        max_calls: usize,
        /// Where per-attachment state lives (masquerade records, networks served).
        #[arg(long, env = "WASMCNI_STATE_DIR", default_value = crate::attachments::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        #[command(flatten)]
        cluster: Box<ClusterArgs>,
    },
}

/// Cluster mode: claim this node's pod subnet and route to the other nodes'.
#[derive(clap::Args)]
struct ClusterArgs {
    /// etcd endpoints (comma-separated URLs) holding the node subnet leases.
    #[arg(long, value_delimiter = ',', requires_all = ["node_ip", "underlay_iface"])]
    etcd_endpoints: Vec<String>,
    /// A static peers file instead of etcd (network and node → subnet).
    #[arg(long, conflicts_with = "etcd_endpoints", requires_all = ["node_ip", "underlay_iface"])]
    peers_file: Option<PathBuf>,
    /// This node's address on the underlay.
    #[arg(long)]
    node_ip: Option<std::net::IpAddr>,
    /// This node's IPv6 address on the underlay, for a dual-stack network
    /// (`EnableIPv6` in its config).
    #[arg(long)]
    node_ipv6: Option<std::net::Ipv6Addr>,
    /// The interface routes to other nodes leave through.
    #[arg(long)]
    underlay_iface: Option<String>,
    #[arg(long, default_value = "/wasmcni/network")]
    etcd_prefix: String,
    /// Where this node's subnet is written, flannel style.
    #[arg(long, default_value = "/run/wasmcni/subnet.env")]
    subnet_file: PathBuf,
    /// The TTL of this node's claim: how long a node that stopped keeps its routes elsewhere.
    #[arg(long, default_value_t = 30)]
    lease_ttl_secs: u64,
    /// The routing module (name or absolute path): host-gw (routes on the
    /// underlay), vxlan (an overlay through a VTEP the daemon owns), or any
    /// routing or overlay-routing module; and its JSON config.
    #[arg(long, default_value = "host-gw")]
    routing_plugin: String,
    #[arg(long, default_value = "{}")]
    routing_config: String,
    /// FLANNEL_IPMASQ in subnet.env.
    #[arg(long)]
    ip_masq: bool,
}

impl ClusterArgs {
    fn options(self) -> Option<crate::cluster::Options> {
        if self.etcd_endpoints.is_empty() && self.peers_file.is_none() {
            return None;
        }
        Some(crate::cluster::Options {
            etcd_endpoints: self.etcd_endpoints,
            peers_file: self.peers_file,
            node_ip: self.node_ip?,
            node_ipv6: self.node_ipv6,
            underlay: self.underlay_iface?,
            etcd_prefix: self.etcd_prefix,
            subnet_file: self.subnet_file,
            lease_ttl: std::time::Duration::from_secs(self.lease_ttl_secs),
            routing_plugin: self.routing_plugin,
            routing_config: self.routing_config,
            ip_masq: self.ip_masq,
        })
    }
}

pub fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasmcni: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let cache = Cache::new(cli.cache_dir.clone());
    match cli.command {
        Cmd::Version => {
            println!("wasmcni {}", env!("CARGO_PKG_VERSION"));
            println!("CNI spec versions: {}", version::SUPPORTED.join(", "));
            println!("WIT package: {}@{}.{}", world::PACKAGE, world::WIT_VERSION.0, world::WIT_VERSION.1);
            Ok(())
        }
        Cmd::Precompile { path } => precompile(&cache, &path),
        Cmd::Inspect { module } => inspect(&cache, &module),
        Cmd::Install { bin_dir, module_dir, from } => install(&cache, &bin_dir, &module_dir, from),
        Cmd::New { name, kind, lang, dir, sdk } => {
            let root = crate::scaffold::create(&name, kind, lang, dir, sdk)?;
            println!("created {}: see its README.md", root.display());
            Ok(())
        }
        Cmd::Test { module, config, chained, module_dir } => {
            let config = config.unwrap_or_default();
            let opts = crate::conformance::Options { module, config, chained, module_dir, cache_dir: cli.cache_dir };
            if !crate::conformance::run(opts)? {
                bail!("the module failed conformance checks");
            }
            Ok(())
        }
        Cmd::Netpol { module, module_dir, manifests, local } => {
            crate::netpol::print(cache, module_dir, &module, manifests, &local)
        }
        Cmd::Daemon { socket, tcp, token_file, module_dir, watch_interval_ms, max_calls, state_dir, cluster } => {
            let opts = crate::daemon::Options {
                socket,
                tcp,
                token_file,
                module_dir,
                watch_interval: std::time::Duration::from_millis(watch_interval_ms),
                max_calls,
                state_dir,
                cache_dir: cli.cache_dir,
                cluster: cluster.options(),
            };
            // Netlink requests run synchronously inside the kernel's sendmsg
            // (a veth deletion waits there for RCU), so a worker can stall for
            // tens of ms: keep enough workers that other calls go on meanwhile.
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2) * 8;
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
            runtime.block_on(crate::daemon::serve(opts))
        }
    }
}

fn wasm_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    Ok(files)
}

fn precompile(cache: &Cache, path: &Path) -> Result<()> {
    let engine = new_engine()?;
    let files = wasm_files(path)?;
    if files.is_empty() {
        bail!("no .wasm modules in {}", path.display());
    }
    for file in files {
        let loaded = cache.load(&engine, &file, None)?;
        let state = if loaded.compiled { "compiled" } else { "cached" };
        println!("{state} {} sha256:{}", file.display(), loaded.sha256);
    }
    Ok(())
}

fn inspect(cache: &Cache, module: &Path) -> Result<()> {
    let engine = new_engine()?;
    let loaded = cache.load(&engine, module, None)?;
    let mut info = world::describe(&engine, &loaded.component);
    info.metadata = loaded.metadata;
    let mut out = serde_json::to_value(&info)?;
    out["sha256"] = loaded.sha256.into();
    out["path"] = module.display().to_string().into();
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn json_object(s: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    serde_json::from_str(s).map_err(|e| format!("not a JSON object: {e}"))
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Replaces `dest` by rename, so a runtime never execs a half-written module.
fn copy_atomically(src: &Path, dest: &Path) -> Result<()> {
    let tmp = dest.with_extension("wasm.tmp");
    std::fs::copy(src, &tmp).with_context(|| format!("copying {}", src.display()))?;
    std::fs::rename(&tmp, dest).with_context(|| format!("installing {}", dest.display()))
}

fn install(cache: &Cache, bin_dir: &Path, module_dir: &Path, from: Option<PathBuf>) -> Result<()> {
    let exe = std::env::current_exe().context("locating this binary")?;
    // A build tree keeps its modules beside the binary; an installed tree
    // is reinstalled from its own module dir.
    let from = match from {
        Some(f) => f,
        None => Some(exe.parent().context("binary has no directory")?.join("modules"))
            .filter(|d| d.is_dir())
            .unwrap_or_else(|| module_dir.to_owned()),
    };
    let modules = wasm_files(&from).with_context(|| "finding modules to install (use --from)")?;
    std::fs::create_dir_all(bin_dir)?;
    std::fs::create_dir_all(module_dir)?;
    let target = bin_dir.join("wasmcni");
    let tmp = bin_dir.join(".wasmcni.tmp");
    // Written in one go, the binary sits in the page cache in large folios,
    // so each exec maps its code in far fewer page faults than after a
    // chunked copy (measured: 1.5 ms less per one-shot ADD here).
    let bytes = std::fs::read(&exe).with_context(|| format!("reading {}", exe.display()))?;
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, &target)?;
    println!("installed {}", target.display());
    let engine = new_engine()?;
    for m in modules {
        let name = m.file_stem().context("module without a name")?.to_string_lossy().into_owned();
        let dest = module_dir.join(format!("{name}.wasm"));
        // Copying a file onto itself would truncate it.
        if !same_file(&m, &dest) {
            copy_atomically(&m, &dest)?;
        }
        let loaded = cache.load(&engine, &dest, None)?;
        // Only what a runtime execs gets a `wasm-<name>`; the daemon runs a
        // routing plugin, and policies are named in a plugin's config.
        let role = world::describe(&engine, &loaded.component).declared_role();
        if !matches!(role, world::Role::Plugin | world::Role::Ipam) {
            println!("installed {} ({} module)", dest.display(), role.world());
            continue;
        }
        let link = bin_dir.join(format!("wasm-{name}"));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("wasmcni", &link)?;
        println!("installed {} and {}", dest.display(), link.display());
    }
    Ok(())
}
