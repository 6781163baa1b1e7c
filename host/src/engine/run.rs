//! Running one plugin call: load (cached), check the world, build the store
//! with the role's capabilities and limits, call the export, classify
//! failures, and undo what a failed ADD left on the host.

use super::cache::{self, Cache};
use super::module::{Entry, Module};
use super::world::Role;
use crate::caps::v1::convert;
use crate::caps::{DEFAULT_DATA_DIR, DelegateCap, IpamStore, NetlinkCap, Owner, State};
use crate::caps::{v0, v1};
use crate::cni::admission::Decision;
use crate::cni::call::Call;
use crate::cni::env::Command;
use crate::cni::error::{CniError, Code, Failure};
use crate::cni::requested::Requested;
use crate::cni::result::{CniResult, Route};
use crate::config::{Limits, ModuleDir};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmcni_kernel::ipam_store;
use wasmcni_kernel::masquerade::Masquerade;
use wasmcni_kernel::netns::Netns;
use wasmtime::component::Linker;
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

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
    /// Where per-attachment state lives.
    state_dir: PathBuf,
    /// Where precompiled modules live.
    cache: Cache,
    /// Where named modules are looked up.
    module_dir: ModuleDir,
}

type Preload = std::thread::JoinHandle<Result<cache::Loaded, CniError>>;

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
        let engine = super::new_engine()?;
        let preloading =
            early.into_iter().map(|(path, pin)| (path.clone(), preload(&engine, &cache, path, pin))).collect();
        super::start_ticker(&engine);
        let mut linker = Linker::new(&engine);
        let link_err = |e: wasmtime::Error| CniError::io(format!("cannot link host functions: {e}"));
        super::wasi::add_to_linker(&mut linker).map_err(link_err)?;
        crate::caps::add_to_linker(&mut linker).map_err(link_err)?;
        Ok(Arc::new(Runner {
            host,
            engine,
            linker,
            modules: Mutex::new(HashMap::new()),
            preloading: Mutex::new(preloading),
            ipam_locks: Mutex::new(HashMap::new()),
            masquerade: Arc::new(Masquerade::new(state_dir.clone())),
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
        let module = Module::new(&self.engine, &self.linker, path, loaded.component, loaded.sha256, loaded.metadata)?;
        Ok(Arc::new(module))
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

    /// The module for `target`, loading it on first use.
    fn module(&self, target: &Target) -> Result<Arc<Module>, CniError> {
        let ready = self.modules.lock().expect("not poisoned").get(&target.path).cloned();
        if let Some(m) = ready {
            cache::check_pin(&target.path, &m.sha256, target.sha256.as_deref())?;
            return Ok(m);
        }
        let preloaded = self.preloading.lock().expect("not poisoned").remove(&target.path);
        let loaded = match preloaded.map(|t| t.join()) {
            // Preloaded under the config's pin; recheck against this target's.
            Some(Ok(Ok(l))) if cache::check_pin(&target.path, &l.sha256, target.sha256.as_deref()).is_ok() => l,
            // A cache miss compiles for a while.
            _ => blocking(|| self.cache.load(&self.engine, &target.path, target.sha256.as_deref()))?,
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
                    netns,
                    call.host_links(),
                    self.host == Host::Daemon,
                )?);
                state.delegate = Some(DelegateCap::new(call.clone(), self.clone(), deadline));
            }
            Role::Policy | Role::Routing => {}
            Role::Ipam => {
                let ipam = call.conf.ipam.as_ref();
                let data_dir = ipam.and_then(|i| i.get("dataDir")).and_then(|d| d.as_str()).unwrap_or(DEFAULT_DATA_DIR);
                // Waits (until the deadline) for other processes holding the network's lock.
                state.store = Some(blocking(|| IpamStore::open(Path::new(data_dir), &call.conf.name, deadline))?);
            }
        }
        Ok(state)
    }

    /// What `call` asks for: malformed requests fail an ADD or CHECK with
    /// code 7 before the module runs; the other commands go on without them.
    fn requested(call: &Call, command: Command) -> Result<Requested, CniError> {
        let config = serde_json::from_str(&call.conf.raw).unwrap_or_default();
        match Requested::gather(&call.env.args, &config) {
            Err(e) if matches!(command, Command::Add | Command::Check) => Err(e),
            other => Ok(other.unwrap_or_default()),
        }
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
        let role = module.role(target.role)?;
        match role {
            Role::Policy => {
                return Err(CniError::config(format!(
                    "module {} is a policy: list it under \"policies\" of a plugin's config",
                    module.name
                )));
            }
            Role::Routing => {
                return Err(CniError::config(format!(
                    "module {} is a routing plugin: the daemon runs it (--routing-plugin)",
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
                tracing::warn!("DEL goes on without the container netns: {}", e.msg);
                None
            }),
            (Some(path), Role::Plugin, _) => Netns::open(path)?,
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
            Role::Ipam => Some(
                tokio::time::timeout_at(deadline.into(), network_lock.lock())
                    .await
                    .map_err(|_| ipam_store::busy(&call.conf.name, target.limits.timeout))?,
            ),
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

    /// Asks the policy `target` whether `call`'s ADD may go ahead; `config`
    /// is the policy's own entry of the plugin's `policies`.
    pub async fn admit(&self, target: &Target, call: &Call, config: String) -> Result<Decision, CniError> {
        let deadline = Instant::now() + target.limits.timeout;
        let (module, mut store) = self.capless(target, Role::Policy, deadline)?;
        let inv = Invocation { call, netns_open: call.env.netns.is_some(), config: &config };
        let name = module.name.clone();
        guarded(&module.name, &mut store, target.limits, deadline, async |store| {
            let instance = module.pre.instantiate_async(&mut *store).await?;
            Ok(match &module.entry {
                Entry::Admission(ix) => match inv.v1(Command::Add) {
                    Ok(inv) => {
                        let d = ix.load(&mut *store, &instance)?.call_admit(&mut *store, &inv).await?;
                        convert::decision(d, &name)
                    }
                    Err(e) => Err(e),
                },
                Entry::AdmissionV0_2(ix) => {
                    let d = ix.load(&mut *store, &instance)?.call_admit(&mut *store, &inv.v0()).await?;
                    v0::decision(d, &name)
                }
                _ => Err(CniError::config(format!("module {name} is not a policy"))),
            })
        })
        .await?
    }

    /// Asks the routing plugin `target` for the routes from `local` to its
    /// peers' pods through `underlay`.
    pub async fn node_routes(
        &self,
        target: &Target,
        config: String,
        local: NodeClaim,
        peers: &[NodeClaim],
        underlay: Underlay<'_>,
    ) -> Result<Vec<Route>, CniError> {
        let deadline = Instant::now() + target.limits.timeout;
        let (module, mut store) = self.capless(target, Role::Routing, deadline)?;
        let name = module.name.clone();
        let invalid = |e: CniError| CniError::new(Code::PluginFailure, format!("plugin {name} returned {}", e.msg));
        guarded(&module.name, &mut store, target.limits, deadline, async |store| {
            let instance = module.pre.instantiate_async(&mut *store).await?;
            Ok(match &module.entry {
                Entry::NodeRoutes(ix) => {
                    use crate::caps::bindings::exports::wasmcni::plugin::node_routes as w;
                    let lease = |(ip, subnet): &NodeClaim| convert::node_lease(*ip, *subnet);
                    let peers: Vec<w::NodeLease> = peers.iter().map(lease).collect();
                    let link = w::Underlay {
                        name: underlay.name.to_owned(),
                        addresses: underlay.addresses.iter().map(|a| (*a).into()).collect(),
                    };
                    let guest = ix.load(&mut *store, &instance)?;
                    match guest.call_routes(&mut *store, &config, lease(&local), &peers, &link).await? {
                        Ok(routes) => routes.into_iter().map(convert::route).collect::<Result<_, _>>().map_err(invalid),
                        Err(e) => Err(e.into()),
                    }
                }
                Entry::NodeRoutesV0_2(ix) => {
                    use crate::caps::v0_2::exports::wasmcni::plugin::node_routes as w;
                    let lease =
                        |(ip, subnet): &NodeClaim| w::NodeLease { ip: ip.to_string(), subnet: subnet.to_string() };
                    let peers: Vec<w::NodeLease> = peers.iter().map(lease).collect();
                    let link = w::Underlay {
                        name: underlay.name.to_owned(),
                        addresses: underlay.addresses.iter().map(ToString::to_string).collect(),
                    };
                    let guest = ix.load(&mut *store, &instance)?;
                    match guest.call_routes(&mut *store, &config, &lease(&local), &peers, &link).await? {
                        Ok(routes) => {
                            routes.into_iter().map(Route::try_from).collect::<Result<_, _>>().map_err(invalid)
                        }
                        Err(e) => Err(e.into()),
                    }
                }
                _ => Err(CniError::config(format!("module {name} is not a routing plugin"))),
            })
        })
        .await?
    }

    /// The module for `target`, checked to be of `role`, and a store for one
    /// call that grants it nothing (policies and routing plugins compute).
    fn capless(&self, target: &Target, role: Role, deadline: Instant) -> Result<(Arc<Module>, Store<State>), CniError> {
        let module = self.module(target)?;
        module.role(Some(role))?;
        module.count_call();
        let store = self.store(State::new(module.name.clone(), target.limits.memory_bytes), deadline);
        Ok((module, store))
    }

    /// A store for one call, under the call's memory limit and deadline.
    /// Guest code that is still running after LONG_RUN is moved to the
    /// lowest CPU priority, so a looping module cannot crowd out the calls
    /// that finish in milliseconds; at the deadline it traps. The deadline
    /// is read off the clock, not counted in ticks: a guest thread that
    /// waits long for a CPU sees many ticks pass at once.
    fn store(&self, state: State, deadline: Instant) -> Store<State> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let ticks_to = move |at: Instant| at.saturating_duration_since(Instant::now()).div_duration_f64(super::TICK);
        store.set_epoch_deadline(LONG_RUN_TICKS.min(ticks_to(deadline).ceil() as u64 + 1));
        // Only a thread that is this call's own is reniced, never a shared worker.
        let own_thread = self.host == Host::OneCall || std::thread::current().name() == Some(CALL_THREAD);
        store.epoch_deadline_callback(move |_| {
            let left = ticks_to(deadline);
            if left == 0.0 {
                return Err(Trap::Interrupt.into());
            }
            if own_thread {
                deprioritize_this_thread();
            }
            Ok(UpdateDeadline::Continue(LONG_RUN_TICKS.min(left.ceil() as u64)))
        });
        store
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

/// A node's claim on the cluster network, as a routing plugin gets it: its
/// address on the underlay and the pod subnet it holds.
pub type NodeClaim = (IpAddr, IpNet);

/// The interface routes to other nodes leave through, and its addresses.
#[derive(Debug, Clone, Copy)]
pub struct Underlay<'a> {
    pub name: &'a str,
    pub addresses: &'a [IpNet],
}

/// The arguments of a handler call, built into the record of the module's
/// package version.
struct Invocation<'a> {
    call: &'a Call,
    netns_open: bool,
    config: &'a str,
}

impl Invocation<'_> {
    /// The 1.x record, with the addresses and MAC the call asks for. Only
    /// 1.x modules get those, so only their calls can fail on them.
    fn v1(&self, command: Command) -> Result<crate::caps::bindings::wasmcni::plugin::types::Invocation, CniError> {
        let requested = Runner::requested(self.call, command)?;
        Ok(v1::invocation(self.call, self.netns_open, self.config.to_owned(), requested))
    }

    fn v0(&self) -> crate::caps::v0_2::wasmcni::plugin::types::Invocation {
        v0::invocation(self.call, self.netns_open, self.config.to_owned())
    }
}

/// The name of the threads a daemon runs each call on.
pub const CALL_THREAD: &str = "wasmcni-call";

/// Guest code running longer than this (in epoch ticks) is deprioritized.
const LONG_RUN_TICKS: u64 = 5;

/// Lowers the calling thread (the one running the guest) to nice 19. Its
/// threads are its call's own (a daemon call, or a one-shot process).
fn deprioritize_this_thread() {
    let tid = nix::unistd::gettid().as_raw() as nix::libc::id_t;
    // SAFETY: setpriority only reads its arguments; PRIO_PROCESS with a
    // thread ID changes that thread alone.
    unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, tid, 19) };
}

/// Runs a call into a module, turning a trap, a timeout or running out of
/// memory into the CNI error that names the plugin and the reason.
async fn guarded<R>(
    name: &str,
    store: &mut Store<State>,
    limits: Limits,
    deadline: Instant,
    f: impl AsyncFnOnce(&mut Store<State>) -> wasmtime::Result<R>,
) -> Result<R, CniError> {
    // The epoch deadline stops guest code; this one also stops a host call
    // the guest is waiting on.
    let outcome = tokio::time::timeout_at((deadline + super::TICK * 10).into(), f(&mut *store)).await;
    tracing::debug!(plugin = %name, "returned");
    match outcome {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(trap)) => Err(classify(trap, name, store.data(), limits)),
        Err(_) => Err(timed_out(name, limits)),
    }
}

/// Runs blocking work off the daemon's async workers (in a one-shot call,
/// with its single-threaded runtime, it simply runs).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

type Returned = Result<Option<CniResult>, CniError>;

/// Calls `command` on a handler of any served WIT version; `$result`
/// converts what its ADD returns into the model.
macro_rules! call_handler {
    ($guest:expr, $store:expr, $command:expr, $inv:expr, $valid:expr, $result:expr) => {{
        let (h, store, inv) = ($guest, $store, $inv);
        Ok(match $command {
            Command::Add => match h.call_add(&mut *store, inv).await? {
                Ok(r) => $result(r).map(Some),
                Err(e) => Err(e.into()),
            },
            Command::Del => h.call_del(&mut *store, inv).await?.map(|()| None).map_err(Into::into),
            Command::Check => h.call_check(&mut *store, inv).await?.map(|()| None).map_err(Into::into),
            Command::Status => h.call_status(&mut *store, inv).await?.map(|()| None).map_err(Into::into),
            Command::Gc => h.call_gc(&mut *store, inv, &$valid).await?.map(|()| None).map_err(Into::into),
            Command::Version => unreachable!("VERSION is answered by the host"),
        })
    }};
}

async fn call_export(
    module: &Module,
    store: &mut Store<State>,
    command: Command,
    inv: Invocation<'_>,
    valid: Option<Vec<(String, String)>>,
) -> wasmtime::Result<Returned> {
    let instance = module.pre.instantiate_async(&mut *store).await?;
    tracing::debug!("instantiated");
    let valid = valid.unwrap_or_default();
    match &module.entry {
        Entry::Handler(ix) => {
            use crate::caps::bindings::wasmcni::plugin::types::Attachment;
            let valid: Vec<Attachment> =
                valid.into_iter().map(|(container_id, ifname)| Attachment { container_id, ifname }).collect();
            let inv = match inv.v1(command) {
                Ok(inv) => inv,
                Err(e) => return Ok(Err(e)),
            };
            call_handler!(ix.load(&mut *store, &instance)?, store, command, &inv, valid, convert::result)
        }
        Entry::HandlerV0_2(ix) => {
            let (inv, valid) = (inv.v0(), v0::attachments(valid));
            call_handler!(ix.load(&mut *store, &instance)?, store, command, &inv, valid, v0::result)
        }
        Entry::HandlerV0_1(ix) => {
            let (inv, valid) = (inv.v0(), v0::attachments(valid));
            call_handler!(ix.load(&mut *store, &instance)?, store, command, &inv, valid, v0::result)
        }
        _ => unreachable!("run() refuses policies and routing plugins"),
    }
}

fn timed_out(plugin: &str, limits: Limits) -> CniError {
    CniError::new(Code::PluginFailure, format!("plugin {plugin} timed out after {} ms", limits.timeout.as_millis()))
        .with_failure(Failure::Timeout)
}

fn classify(err: wasmtime::Error, plugin: &str, state: &State, limits: Limits) -> CniError {
    if state.limiter.hit {
        return CniError::new(
            Code::PluginFailure,
            format!("plugin {plugin} exceeded its memory limit of {} MiB", state.limiter.max_mib()),
        )
        .with_failure(Failure::OutOfMemory);
    }
    if matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return timed_out(plugin, limits);
    }
    CniError::new(Code::PluginFailure, format!("plugin {plugin} trapped: {err}"))
        .with_details(format!("{err:?}"))
        .with_failure(Failure::Trap)
}
