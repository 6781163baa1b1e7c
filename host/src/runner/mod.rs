//! Runs a module for one call: finds it (loaded, preloaded or from the
//! cache), builds the store state its role is entitled to, enforces the
//! call's deadline and memory limit, and undoes a failed ADD. `invoke` calls
//! the export of the module's package version; `faults` says in CNI terms
//! what went wrong below.

mod faults;
mod invoke;

pub use faults::engine_error;

use crate::cni::call::Call;
use crate::cni::env::Command;
use crate::cni::error::CniError;
use crate::cni::result::CniResult;
use crate::config::{Limits, ModuleDir};
use crate::delegation::DelegateCap;
use crate::netpol::enforce::Inputs;
use faults::guarded;
use invoke::{Invocation, call_export};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmcni_caps::{DEFAULT_DATA_DIR, Entry, IpamStore, Module, NetlinkCap, Owner, State};
use wasmcni_engine::cache::{self, Cache};
use wasmcni_engine::{Role, limits};
use wasmcni_kernel as kernel;
use wasmcni_kernel::masquerade::Masquerade;
use wasmcni_kernel::netns::Kernel;
use wasmcni_kernel::netns::Netns;
use wasmcni_kernel::netpol::{Filter, Nftables};
use wasmtime::component::Linker;
use wasmtime::{Engine, Store};

pub use invoke::{OverlayPeer, Underlay, Vtep};

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Target {
    pub path: PathBuf,
    pub sha256: Option<String>,
    pub limits: Limits,
    /// The role the caller needs; `None` (a module exec'd directly by a
    /// runtime or another plugin) runs it in the role its world declares.
    pub role: Option<Role>,
}

/// The process a runner lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// One CNI call, then exit.
    OneCall,
    /// The daemon: it outlives every call it serves.
    Daemon,
}

pub struct Runner {
    host: Host,
    engine: Engine,
    linker: Linker<State>,
    /// Modules ready to run, by path. A swap replaces an entry; calls
    /// already running keep the module they started with.
    modules: Mutex<HashMap<PathBuf, Arc<Module>>>,
    /// Modules being loaded on other threads, by path (see `new`).
    preloading: Mutex<HashMap<PathBuf, Preload>>,
    /// One lock per network for IPAM calls: calls in this process queue
    /// here, without blocking a thread, before taking the on-disk lock
    /// (which other processes, e.g. the reference host-local, also take).
    ipam_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// One for the process: its nftables socket is reused by every call.
    masquerade: Arc<Masquerade>,
    /// The node's network policy, in the netns the runner serves.
    netpol: Nftables,
    /// The inputs of the last policy this runner applied; `None` when it
    /// cannot know what is in the kernel (a one-shot call: always apply).
    netpol_applied: Mutex<Option<Inputs>>,
    /// Where per-attachment state lives.
    state_dir: PathBuf,
    /// Where precompiled modules live.
    cache: Cache,
    /// Where named modules are looked up.
    module_dir: ModuleDir,
}

type Preload = std::thread::JoinHandle<Result<cache::Loaded, wasmcni_engine::Error>>;

/// Loads a module on another thread, so that it overlaps other work instead
/// of following it.
fn preload(engine: &Engine, cache: &Cache, path: PathBuf, pin: Option<String>) -> Preload {
    let (engine, cache) = (engine.clone(), cache.clone());
    std::thread::spawn(move || cache.load(&engine, &path, pin.as_deref()))
}

impl Runner {
    /// `early`: modules the caller will run (a one-shot call's plugin and
    /// IPAM); each loads on a thread of its own while the rest is set up.
    /// `state_dir`: where per-attachment records live (masquerade's among
    /// them); `cache`: where precompiled modules live; `module_dir`: where
    /// named modules are looked up.
    pub fn new(
        host: Host,
        early: Vec<(PathBuf, Option<String>)>,
        state_dir: PathBuf,
        cache: Cache,
        module_dir: ModuleDir,
    ) -> Result<Arc<Runner>, CniError> {
        let engine = wasmcni_engine::new_engine().map_err(engine_error)?;
        let preloading =
            early.into_iter().map(|(path, pin)| (path.clone(), preload(&engine, &cache, path, pin))).collect();
        wasmcni_engine::start_ticker(&engine);
        let mut linker = Linker::new(&engine);
        let link_err = |e: wasmtime::Error| CniError::io(format!("cannot link host functions: {e}"));
        wasmcni_caps::add_to_linker(&mut linker).map_err(link_err)?;
        Ok(Arc::new(Runner {
            host,
            engine,
            linker,
            modules: Mutex::new(HashMap::new()),
            preloading: Mutex::new(preloading),
            ipam_locks: Mutex::new(HashMap::new()),
            masquerade: Arc::new(Masquerade::new(state_dir.clone())),
            netpol: Nftables::default(),
            // A daemon starts as before policy: it leaves the kernel alone until a pod is policed.
            netpol_applied: Mutex::new((host == Host::Daemon).then(Inputs::new)),
            state_dir,
            cache,
            module_dir,
        }))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn module_dir(&self) -> &ModuleDir {
        &self.module_dir
    }

    /// Links a compiled component for `path`, refusing one that fits no
    /// world; nothing is served from it until `replace`.
    pub fn link(&self, path: &Path, loaded: cache::Loaded) -> Result<Arc<Module>, CniError> {
        let (engine, linker) = (&self.engine, &self.linker);
        let module = Module::new(engine, linker, path, loaded.component, loaded.sha256, loaded.metadata, Entry::find)
            .map_err(engine_error)?;
        Ok(Arc::new(module))
    }

    /// Where the node's network policy is enforced.
    pub fn netpol(&self) -> &dyn Filter {
        &self.netpol
    }

    /// The inputs of the last network policy pass applied (see `netpol::enforce`).
    pub fn netpol_applied(&self) -> &Mutex<Option<Inputs>> {
        &self.netpol_applied
    }

    /// Where per-attachment state lives (masquerade records, attachment records).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Makes `module` the one served for its path; calls already running
    /// finish on the module they started with. Returns the one replaced.
    pub fn replace(&self, module: Arc<Module>) -> Option<Arc<Module>> {
        self.modules.lock().expect("not poisoned").insert(module.path.clone(), module)
    }

    /// The module served for `path`, if loaded.
    pub fn served(&self, path: &Path) -> Option<Arc<Module>> {
        self.modules.lock().expect("not poisoned").get(path).cloned()
    }

    /// Every module ready to run.
    pub fn modules(&self) -> Vec<Arc<Module>> {
        self.modules.lock().expect("not poisoned").values().cloned().collect()
    }

    /// The role `target`'s module runs in: the one it names, else its world's.
    pub fn role_of(&self, target: &Target) -> Result<Role, CniError> {
        self.module(target)?.role(target.role).map_err(engine_error)
    }

    /// The module for `target`, loading it on first use.
    fn module(&self, target: &Target) -> Result<Arc<Module>, CniError> {
        let ready = self.modules.lock().expect("not poisoned").get(&target.path).cloned();
        if let Some(m) = ready {
            cache::check_pin(&target.path, &m.sha256, target.sha256.as_deref()).map_err(engine_error)?;
            return Ok(m);
        }
        let preloaded = self.preloading.lock().expect("not poisoned").remove(&target.path);
        let loaded = match preloaded.map(|t| t.join()) {
            // Preloaded under the config's pin; recheck against this target's.
            Some(Ok(Ok(l))) if cache::check_pin(&target.path, &l.sha256, target.sha256.as_deref()).is_ok() => l,
            // A cache miss compiles for a while.
            _ => blocking(|| self.cache.load(&self.engine, &target.path, target.sha256.as_deref()))
                .map_err(engine_error)?,
        };
        if loaded.compiled {
            tracing::info!("compiled {} (cache miss)", target.path.display());
        }
        let module = self.link(&target.path, loaded)?;
        self.replace(module.clone());
        Ok(module)
    }

    /// Builds the store state `role` is entitled to.
    fn state(
        self: &Arc<Self>,
        module: &Module,
        target: &Target,
        role: Role,
        call: &Arc<Call>,
        netns: Option<Netns>,
        deadline: Instant,
    ) -> Result<State, CniError> {
        let mut state = State::new(module.name.clone(), target.limits.memory_bytes);
        match role {
            Role::Plugin => {
                let owner = Owner {
                    network: call.conf.name.clone(),
                    container_id: call.env.container_id.clone(),
                    ifname: call.env.ifname.clone(),
                };
                state.netlink = Some(NetlinkCap::new(
                    owner,
                    self.masquerade.clone(),
                    Kernel::host(),
                    netns.map(Arc::new),
                    call.host_links(),
                    self.host == Host::Daemon,
                ));
                state.delegate = Some(Box::new(DelegateCap::new(call.clone(), self.clone(), deadline)));
            }
            Role::Policy | Role::Routing | Role::Overlay | Role::Netpol => {}
            Role::Ipam => {
                let ipam = call.conf.ipam.as_ref();
                let data_dir = ipam.and_then(|i| i.get("dataDir")).and_then(|d| d.as_str()).unwrap_or(DEFAULT_DATA_DIR);
                // Waits (until the deadline) for other processes holding the network's lock.
                state.store = Some(
                    blocking(|| IpamStore::open(Path::new(data_dir), &call.conf.name, deadline))
                        .map_err(CniError::from)?,
                );
            }
        }
        Ok(state)
    }

    /// Runs `command` of `target` for `call`; a delegated call passes its
    /// caller's deadline as `within`, and ends before it.
    pub async fn run(
        self: &Arc<Self>,
        target: &Target,
        call: Arc<Call>,
        command: Command,
        valid: Option<Vec<(String, String)>>,
        within: Option<Instant>,
    ) -> Result<Option<CniResult>, CniError> {
        let module = self.module(target)?;
        tracing::debug!(plugin = %module.name, "loaded");
        let role = module.role(target.role).map_err(engine_error)?;
        match role {
            Role::Policy => {
                return Err(CniError::config(format!(
                    "module {} is a policy: list it under \"policies\" of a plugin's config",
                    module.name
                )));
            }
            Role::Routing | Role::Overlay => {
                return Err(CniError::config(format!(
                    "module {} is a routing plugin: the daemon runs it (--routing-plugin)",
                    module.name
                )));
            }
            Role::Netpol => {
                return Err(CniError::config(format!(
                    "module {} is a network policy module: it computes rules, it does not attach containers",
                    module.name
                )));
            }
            Role::Plugin | Role::Ipam => {}
        }
        module.count_call();
        // Everything this call waits for (locks, files, guest code) ends by then.
        let deadline = deadline_within(target.limits.timeout, within);
        let netns = match (&call.env.netns, role, command) {
            // DEL needs no netns: what is left without it is host-side.
            (Some(path), Role::Plugin, Command::Del) => Netns::open(path).unwrap_or_else(|e| {
                tracing::warn!("DEL goes on without the container netns: {e}");
                None
            }),
            (Some(path), Role::Plugin, _) => Netns::open(path).map_err(CniError::from)?,
            _ => None,
        };
        if netns.is_none() && matches!(command, Command::Add | Command::Check) && role == Role::Plugin {
            return Err(CniError::env(format!(
                "CNI_NETNS {:?} does not exist",
                call.env.netns.as_deref().unwrap_or("")
            )));
        }
        let inv = Invocation { call: &call, netns_open: netns.is_some(), config: &call.conf.raw };
        let network_lock =
            self.ipam_locks.lock().expect("not poisoned").entry(call.conf.name.clone()).or_default().clone();
        let _serialized = match role {
            Role::Ipam => {
                Some(tokio::time::timeout_at(deadline.into(), network_lock.lock()).await.map_err(|_| {
                    kernel::Error::Busy { network: call.conf.name.clone(), waited: target.limits.timeout }
                })?)
            }
            _ => None,
        };
        let state = self.state(&module, target, role, &call, netns, deadline)?;
        let mut store = self.store(state, deadline);
        let outcome = guarded(&module.name, &mut store, target.limits, deadline, async |store| {
            call_export(&module, store, command, inv, valid).await
        })
        .await;
        let result = outcome.and_then(|r| r);
        if result.is_err() && command == Command::Add {
            store.data_mut().undo().await;
        }
        if self.host == Host::OneCall && target.role.is_none() {
            // The process exits once this answer is printed; freeing the
            // instance first would only delay it. A delegated call's store
            // is dropped: it holds the IPAM lock.
            std::mem::forget(store);
        }
        result
    }

    /// The module for `target`, checked to be of `role`, and a store for one
    /// call that grants it nothing (policies and routing plugins compute).
    fn capless(&self, target: &Target, role: Role, deadline: Instant) -> Result<(Arc<Module>, Store<State>), CniError> {
        let module = self.module(target)?;
        module.role(Some(role)).map_err(engine_error)?;
        module.count_call();
        let store = self.store(State::new(module.name.clone(), target.limits.memory_bytes), deadline);
        Ok((module, store))
    }

    /// A store for one call, under the call's memory limit and deadline.
    /// Only a thread that is this call's own has long-running guest code
    /// reniced, never a shared worker.
    fn store(&self, state: State, deadline: Instant) -> Store<State> {
        let own_thread = self.host == Host::OneCall || std::thread::current().name() == Some(CALL_THREAD);
        limits::store(&self.engine, state, deadline, own_thread)
    }
}

/// When a call given `timeout` ends. A delegated call ends a little before
/// its caller (`within`), so the caller has time to answer with the
/// delegate's error (say, code 11 for a busy lease store) rather than time
/// out itself.
fn deadline_within(timeout: Duration, within: Option<Instant>) -> Instant {
    let own = Instant::now() + timeout;
    match within {
        Some(caller) => {
            let left = caller.saturating_duration_since(Instant::now());
            own.min(caller - (left / 5).min(REPLY_RESERVE))
        }
        None => own,
    }
}

/// The most of a caller's remaining time kept back for its own answer.
const REPLY_RESERVE: Duration = Duration::from_millis(100);

/// The name of the threads a daemon runs each call on.
pub const CALL_THREAD: &str = "wasmcni-call";

/// Runs blocking work off the daemon's async workers (in a one-shot call,
/// with its single-threaded runtime, it simply runs).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
