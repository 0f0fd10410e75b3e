//! One live helper process, seen from the host, along Sandbox2's seams:
//!
//! * [`spawn`]: preparing the fds, the arena and the request, the
//!   handshake, and taking the seccomp listener;
//! * [`handoff`]: the host's half of a call: post, wake, spin, sleep;
//! * [`monitor`]: answering the seccomp listener's notifications;
//! * [`lock_supervisor`]: letting locks run only on files within the write grants;
//! * [`outcome`]: killing a helper, reaping it, and saying how it ended;
//! * [`remote_memory`]: reading strings out of the helper's memory;
//! * [`confinement`]: the Landlock rules a helper gets.
//!
//! This module holds the [`Helper`] itself and what the rest of the crate
//! asks of it.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ffb_contract::spin::AdaptiveSpin;
use ffb_contract::wire::Status;
use ffb_policy::sandbox::{CompiledFilter, Phase, SandboxPolicy};

use crate::arena::Arena;
use crate::audit::AuditLog;
use crate::error::Error;
use crate::learn::Learned;

mod broker;
mod confinement;
mod handoff;
mod lock_supervisor;
mod monitor;
mod outcome;
mod output;
mod remote_memory;
mod spawn;

use outcome::KillReason;
pub(crate) use output::ExtensionOutput;
/// For the fuzz targets (`crate::fuzzing`).
pub(crate) use remote_memory::read_cstr_of;

/// Everything needed to start a helper.
pub(crate) struct HelperSpec {
    pub shim: PathBuf,
    pub library: String,
    /// Opened before the library, with `RTLD_GLOBAL` (canonical paths).
    pub preload: Vec<String>,
    /// Directories the helper may list but not read beneath (Landlock).
    pub listable: Vec<PathBuf>,
    pub functions: Vec<String>,
    pub policy: Arc<SandboxPolicy>,
    pub filter: Arc<CompiledFilter>,
    pub arena_len: usize,
    pub helper_spin_us: u32,
    pub host_spin: Duration,
    pub env: Vec<(String, String)>,
    /// Where the extension's stdout and stderr go (else /dev/null), and its cap.
    pub output: Option<Arc<ExtensionOutput>>,
    pub load_timeout: Duration,
    pub audit: Option<Arc<AuditLog>>,
    pub learn: Option<Arc<Mutex<Learned>>>,
}

/// The helper's answer to one request, read once from the arena.
pub(crate) struct Response {
    pub status: Status,
    pub ret: u64,
    pub message_len: u32,
}

pub(crate) struct Helper {
    pid: i32,
    pidfd: OwnedFd,
    status_pipe: OwnedFd,
    wake: OwnedFd,
    listener: Option<OwnedFd>,
    arena: Arena,
    seq: u32,
    phase: Phase,
    policy: Arc<SandboxPolicy>,
    library: String,
    /// The signatures the helper resolves while loading, in index order: a
    /// failure it reports names one of these, never its own text.
    functions: Vec<String>,
    /// Spin budget for waits on a helper that was awake.
    spin: AdaptiveSpin,
    /// Spin budget for waits that began by waking the helper.
    wake_spin: AdaptiveSpin,
    /// When the helper was last moved off the host's CPU.
    last_nudge: Option<Instant>,
    killed: Option<KillReason>,
    /// The last thread clone let through, until its thread is seen
    /// (`monitor.rs`): the next clone is counted only after it.
    pending_clone: Option<monitor::PendingClone>,
    /// Set once the helper is known to be gone (and its status consumed).
    ended: Option<Error>,
    audit: Option<Arc<AuditLog>>,
    learn: Option<Arc<Mutex<Learned>>>,
    /// The drain of the helper's capped output, if any: last, so that it is
    /// waited for after `Drop` has killed and reaped the helper.
    _output: Option<output::Drain>,
}

impl Helper {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// Whether the helper is known to have ended.
    pub fn is_gone(&self) -> bool {
        self.ended.is_some()
    }

    /// The syscall (and its arguments, as the kernel reported them) that got
    /// this helper killed, if that is how it ended.
    pub fn violation(&self) -> Option<(i64, [u64; 6])> {
        match self.killed {
            Some(KillReason::Violation { nr, args }) => Some((nr, args)),
            _ => None,
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if self.ended.is_none() {
            self.kill(KillReason::Dropped);
            self.reap();
        }
    }
}
