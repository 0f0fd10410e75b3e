//! What the host sends the fork server to get a helper, and the reply.
//!
//! The request travels as one JSON record on the fork server's
//! `SOCK_SEQPACKET` socket, with [`SPAWN_FDS`] fds attached
//! ([`crate::sys::send_with_fds`]); the reply is a [`SpawnReply`] with a
//! pidfd attached.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::artefacts::{CompiledFilter, Identity, LandlockSpec, Limits, Namespace};

/// The layout and protocol version of this crate. Host and helper must come
/// from the same build: a mismatch is refused at spawn, never guessed at.
pub const WIRE_VERSION: u32 = 9;

/// What the host asks the fork server for. Sent as JSON with the helper's fds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnRequest {
    /// [`WIRE_VERSION`] of the host that sent it.
    pub wire_version: u32,
    /// Library path or soname, passed to `dlopen`.
    pub library: String,
    /// Libraries opened before `library`, in order, with `RTLD_GLOBAL`, so
    /// that their symbols resolve the undefined symbols of everything loaded
    /// after them: libpython for the Python host, whose extension modules
    /// (dlopened by the interpreter later) rely on that global scope.
    pub preload: Vec<String>,
    /// Signatures to resolve before serving, in function-index order.
    pub functions: Vec<String>,
    /// The compiled seccomp program.
    pub filter: CompiledFilter,
    /// Resource limits.
    pub limits: Limits,
    /// Arena length in bytes.
    pub arena_len: u64,
    /// How long the helper spins for a request before it sleeps, in microseconds.
    pub spin_us: u32,
    /// The helper's whole environment (the host's is not inherited).
    pub env: Vec<(String, String)>,
    /// Landlock rules, applied before the library loads. `None` (learn mode)
    /// or an empty spec (a policy that does not confine): no Landlock.
    pub landlock: Option<LandlockSpec>,
    /// Namespaces to enter first, before the rlimits, Landlock and the
    /// filter (the fork server creates a pid namespace with the helper).
    pub namespaces: Vec<Namespace>,
    /// Namespaces the host adds to every helper on its own (an IPC
    /// namespace; a user namespace first on a host without
    /// `CAP_SYS_ADMIN`), entered with the policy's. Defence in depth: where
    /// the kernel refuses them, the helper enters the policy's alone.
    pub baseline_namespaces: Vec<Namespace>,
    /// Run as this user and group.
    pub run_as: Option<Identity>,
    /// Make the helper non-dumpable (`PR_SET_DUMPABLE` 0) once it no longer
    /// needs to write its own `/proc/self` files: then no other process
    /// without `CAP_SYS_PTRACE` (another helper, say) can open its
    /// `/proc/PID/mem`. The host sets it only when it has `CAP_SYS_PTRACE`
    /// itself, since it still reads the helper's memory and takes its
    /// listener.
    pub non_dumpable: bool,
    /// On a root host, with no `run_as` and no user namespace: the helper
    /// switches to a uid and gid of its own, [`OwnIdentity::base`] plus its
    /// pid (as the host's pid namespace counts it), with no supplementary
    /// groups. `None`: the helper keeps the host's uid (an unprivileged host,
    /// whose helpers are confined by the baseline namespaces instead).
    pub own_identity: Option<OwnIdentity>,
}

/// The first uid (and gid) of the range a root host gives its helpers, one
/// per live helper: `OWN_ID_BASE + pid`. High enough to be no account's
/// (`/etc/passwd` ranges end far below), and with room for the largest
/// `pid_max` (2^22) below `0xffff_fffe`.
pub const OWN_ID_BASE: u32 = 0x7f00_0000;

/// A helper's own identity, and the two capabilities it keeps over files
/// that uid does not own (Landlock bounds both; see `docs/SECURITY.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnIdentity {
    /// The uid and gid are `base + pid`.
    pub base: u32,
    /// Keep `CAP_DAC_READ_SEARCH`: the policy lists read paths, the library's
    /// own file is not readable by others, or no Landlock bounds reads.
    pub dac_read: bool,
    /// Keep `CAP_DAC_OVERRIDE`: the policy lists write paths, and Landlock
    /// bounds where they are.
    pub dac_write: bool,
}

impl SpawnRequest {
    /// The request as it travels.
    pub fn encode(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }

    /// Reads a request, refusing one from another build.
    ///
    /// ```
    /// use ffb_contract::wire::{DecodeError, SpawnRequest};
    /// let old = br#"{"wire_version":3}"#;
    /// assert!(matches!(SpawnRequest::decode(old), Err(DecodeError::Malformed(_))));
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<SpawnRequest, DecodeError> {
        let request: SpawnRequest =
            serde_json::from_slice(bytes).map_err(DecodeError::Malformed)?;
        if request.wire_version != WIRE_VERSION {
            return Err(DecodeError::OtherVersion(request.wire_version));
        }
        Ok(request)
    }
}

/// Why a spawn request could not be read. Either way the fork server
/// answers `-EPROTO`, and the host tells the user to rebuild ffb and
/// `ffb-shim` together.
#[derive(Debug)]
pub enum DecodeError {
    /// Not a request of this build's shape (fields missing or unknown).
    Malformed(serde_json::Error),
    /// A well-formed request for another [`WIRE_VERSION`].
    OtherVersion(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(e) => write!(f, "malformed spawn request: {e}"),
            DecodeError::OtherVersion(v) => {
                write!(f, "spawn request for wire version {v}, not {WIRE_VERSION}")
            }
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Malformed(e) => Some(e),
            DecodeError::OtherVersion(_) => None,
        }
    }
}

/// The fork server's reply: the new helper's pid (or `-errno`; `-EPROTO` for a
/// request it cannot read, such as one from another ffb version), sent with a
/// pidfd for it. When the helper ends, the fork server reaps it and writes an
/// [`ExitReport`] to the status pipe that came with the request, then closes
/// that pipe.
pub type SpawnReply = i32;

/// How a helper ended, as the fork server saw it when it reaped the helper
/// with `wait4`: the raw wait status and the CPU time the helper used. The
/// helper cannot write it; the host trusts it over anything the helper said.
///
/// ```
/// use ffb_contract::wire::ExitReport;
/// let report = ExitReport { status: 9, cpu_us: 1_000_123 };
/// assert_eq!(ExitReport::decode(&report.encode()), report);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitReport {
    /// The wait status (`WIFEXITED`, `WTERMSIG`, ...).
    pub status: i32,
    /// User plus system CPU time of the helper, in microseconds (from
    /// `wait4`'s `rusage`): whether a `SIGXCPU` was the CPU limit or a
    /// signal the extension raised itself.
    pub cpu_us: u64,
}

impl ExitReport {
    /// Bytes on the status pipe: the status, then the CPU time, native endian.
    pub const LEN: usize = 12;

    /// The report as it travels.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(&self.status.to_ne_bytes());
        out[4..].copy_from_slice(&self.cpu_us.to_ne_bytes());
        out
    }

    /// Reads a report.
    pub fn decode(bytes: &[u8; Self::LEN]) -> ExitReport {
        let mut status = [0u8; 4];
        status.copy_from_slice(&bytes[..4]);
        let mut cpu = [0u8; 8];
        cpu.copy_from_slice(&bytes[4..]);
        ExitReport {
            status: i32::from_ne_bytes(status),
            cpu_us: u64::from_ne_bytes(cpu),
        }
    }
}

/// fds that travel with a [`SpawnRequest`], in this order: the helper's end
/// of the control socket, the wake eventfd, the arena memfd, the output
/// file, and the write end of the status pipe. The helper moves the first
/// four to [`crate::fds`]; the fork server keeps the last.
pub const SPAWN_FDS: usize = 5;
