//! IPAM delegation: runs the calling plugin's `ipam` section, in-process when
//! it names a Wasm module, otherwise by exec'ing `$CNI_PATH/<type>` as the
//! spec's delegation rules say. Remembers a successful ADD so a failing
//! plugin's ADD can be rolled back with an IPAM DEL.

use crate::cni::call::Call;
use crate::cni::env::Command;
use crate::cni::error::CniError;
use crate::cni::exec;
use crate::cni::result::CniResult;
use crate::config::ModuleSource;
use crate::runner::{Runner, Target};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Instant;
use wasmcni_engine::Role;

pub struct DelegateCap {
    call: Arc<Call>,
    runner: Arc<Runner>,
    /// The delegating call's deadline: an IPAM call ends before it.
    deadline: Instant,
    added: bool,
}

impl DelegateCap {
    pub fn new(call: Arc<Call>, runner: Arc<Runner>, deadline: Instant) -> DelegateCap {
        DelegateCap { call, runner, deadline, added: false }
    }

    async fn delegate(
        &mut self,
        command: Command,
        valid: Option<Vec<(String, String)>>,
        within: Option<Instant>,
    ) -> Result<Option<CniResult>, CniError> {
        let ipam = self
            .call
            .conf
            .ipam
            .as_ref()
            .ok_or_else(|| CniError::config("the plugin asked for IPAM but the config has no \"ipam\" section"))?;
        // Marked before it runs: an ADD cut short may still have taken a lease.
        if command == Command::Add {
            self.added = true;
        }
        let out = match self.runner.module_dir().resolve_ipam(ipam)? {
            ModuleSource::Wasm { path, sha256 } => {
                let target = Target { path, sha256, limits: self.call.conf.ipam_limits, role: Some(Role::Ipam) };
                Box::pin(self.runner.run(&target, self.call.clone(), command, valid, within)).await?
            }
            ModuleSource::Exec { kind } => exec::delegate(&kind, command, &self.call).await?,
        };
        Ok(out)
    }
}

impl wasmcni_caps::Delegate for DelegateCap {
    fn run(
        &mut self,
        command: Command,
        valid: Option<Vec<(String, String)>>,
    ) -> BoxFuture<'_, Result<Option<CniResult>, CniError>> {
        let within = self.deadline;
        Box::pin(self.delegate(command, valid, Some(within)))
    }

    /// IPAM DEL after a failed ADD, with a budget of its own (the ADD may
    /// have failed at its deadline); errors are logged, the ADD's error wins.
    fn undo(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            if std::mem::take(&mut self.added)
                && let Err(e) = self.delegate(Command::Del, None, None).await
            {
                tracing::warn!("undo: IPAM DEL failed: {e}");
            }
        })
    }
}
