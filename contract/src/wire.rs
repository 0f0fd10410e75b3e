//! The wire between host and helper: the shared arena's layout, the spawn
//! request the fork server receives, and the handshake messages.
//!
//! The arena is one memfd mapped by both processes:
//!
//! ```text
//! 0      64     128            1024         4096                 arena_len
//! | host | helper | args[64]    | message     | data (argument buffers) |
//! ```
//!
//! * The host line holds the request (sequence number, op, function, argument
//!   count) and the host's "parked" flag. Only the host writes it.
//! * The helper line holds the response (sequence number, status, return
//!   value, message length, and for a batch the number of calls completed)
//!   and the helper's "parked" flag. Only the helper should write it, and the
//!   host treats all of it as hostile.
//! * A shared buffer (`Bridge::shared_buffer` in `ffb-loader`), when one is
//!   reserved, is the end of the data area; argument buffers stay below it.
//! * `args` holds one 64-bit word per argument: a scalar's bits, a handle's
//!   value, or for a pointer argument the offset of its buffer in the data area.
//! * `message` holds a helper error message (at most [`MESSAGE_CAPACITY`] bytes).
//!
//! Handoff: the host writes the request and then `req_seq`; the helper answers
//! and then writes `resp_seq` equal to it. Each side spins for a while and then
//! sleeps: the helper on a futex on `req_seq`, the host in `poll` on an eventfd
//! that the helper signals only when the host's `host_parked` flag is set.

use std::sync::atomic::{AtomicU32, AtomicU64};

use serde::{Deserialize, Serialize};

use crate::artefacts::{CompiledFilter, Identity, LandlockSpec, Limits, Namespace};

/// Size of the control area before the data area.
pub const CONTROL_SIZE: usize = 4096;
/// Maximum arguments per call (matches [`ffb_abi::signature::MAX_ARGS`]).
pub const MAX_WIRE_ARGS: usize = 64;
/// Offset of the message area.
pub const MESSAGE_OFFSET: usize = 1024;
/// Capacity of the message area.
pub const MESSAGE_CAPACITY: usize = CONTROL_SIZE - MESSAGE_OFFSET;
/// Alignment of every argument buffer in the data area.
pub const BUFFER_ALIGN: usize = 16;
/// Smallest arena the host will create.
pub const MIN_ARENA: usize = CONTROL_SIZE + 4096;

/// The fields written by the host.
#[repr(C, align(64))]
pub struct HostLine {
    /// Incremented by the host to post a request; the helper's futex word.
    pub req_seq: AtomicU32,
    /// The [`Op`] requested.
    pub op: AtomicU32,
    /// For [`Op::Call`], the function's index in the helper's table.
    pub func: AtomicU32,
    /// For [`Op::Call`], the number of argument words in `args`; for
    /// [`Op::Batch`], the number of calls.
    pub nargs: AtomicU32,
    /// 1 while the host sleeps and wants an eventfd wake-up.
    pub host_parked: AtomicU32,
    /// The CPU the host posted from, plus one (0: unknown). A helper on the
    /// same CPU yields instead of spinning, so the host can run.
    pub host_cpu: AtomicU32,
}

/// The fields written by the helper. The host reads each once and checks it.
#[repr(C, align(64))]
pub struct HelperLine {
    /// Set to the request's `req_seq` once the response is complete.
    pub resp_seq: AtomicU32,
    /// A [`Status`] code.
    pub status: AtomicU32,
    /// Length of the message in the message area.
    pub message_len: AtomicU32,
    /// 1 while the helper sleeps on its futex and needs a wake-up.
    pub helper_parked: AtomicU32,
    /// The raw return value: the low bytes hold the C return value.
    pub ret: AtomicU64,
    /// The CPU the helper answered from, plus one (0: unknown); a hint only.
    pub helper_cpu: AtomicU32,
}

/// The CPU the caller runs on, plus one, for the `*_cpu` hints (0 if unknown).
/// Cheap: glibc answers from its restartable-sequence area, without a syscall.
pub fn current_cpu_hint() -> u32 {
    let cpu = unsafe { libc::sched_getcpu() };
    if cpu < 0 {
        0
    } else {
        cpu as u32 + 1
    }
}

/// Batch progress, on a cache line of its own: the helper bumps it after
/// every call of a batch, and on the response line that would make the
/// host's spinning re-fetch the line once per call.
#[repr(C, align(64))]
pub struct ProgressLine {
    /// How many calls of the current batch have completed (the helper's claim).
    pub completed: AtomicU32,
}

/// The control area at the start of the arena.
#[repr(C)]
pub struct Control {
    /// Written by the host.
    pub host: HostLine,
    /// Written by the helper.
    pub helper: HelperLine,
    /// Written by the helper during a batch.
    pub progress: ProgressLine,
    /// Argument words, written by the host.
    pub args: [AtomicU64; MAX_WIRE_ARGS],
}

const _: () = assert!(std::mem::size_of::<Control>() <= MESSAGE_OFFSET);

/// Operations the host can request.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Call function `func` with `nargs` argument words.
    Call = 1,
    /// Declare one more function: its signature text is at the start of the
    /// data area and `args[0]` is its length. The response's `ret` is its index.
    Declare = 2,
    /// Run `nargs` calls in order. Their records start at the data area, each
    /// `func | nargs << 32` followed by `nargs` argument words; `args[0]` is
    /// the offset of the results, one 64-bit word per call. `completed`
    /// counts the calls done.
    Batch = 3,
}

impl Op {
    /// The op for a wire value.
    pub fn from_u32(v: u32) -> Option<Op> {
        match v {
            1 => Some(Op::Call),
            2 => Some(Op::Declare),
            3 => Some(Op::Batch),
            _ => None,
        }
    }
}

/// Response status codes.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The call ran; `ret` holds its return value.
    Ok = 0,
    /// A declared symbol was not found; the message says which.
    SymbolNotFound = 1,
    /// A declared signature did not parse or libffi refused it.
    BadSignature = 2,
    /// The request was malformed (a host bug, or a scribbled arena).
    BadRequest = 3,
}

impl Status {
    /// The status for a wire value, if it is one.
    pub fn from_u32(v: u32) -> Option<Status> {
        match v {
            0 => Some(Status::Ok),
            1 => Some(Status::SymbolNotFound),
            2 => Some(Status::BadSignature),
            3 => Some(Status::BadRequest),
            _ => None,
        }
    }
}

/// File descriptor numbers in a freshly forked helper (the helper moves the
/// fds it received there before anything else runs).
pub mod fds {
    /// SOCK_SEQPACKET socket to the host, for the handshake only.
    pub const CONTROL: i32 = 3;
    /// eventfd the helper writes to wake a parked host.
    pub const WAKE: i32 = 4;
    /// The arena memfd (closed once mapped).
    pub const ARENA: i32 = 5;
    /// Where the extension's stdout and stderr go: the helper duplicates it
    /// onto fds 1 and 2, then closes it with everything above it.
    pub const OUTPUT: i32 = 6;
    /// The first fd above the fixed ones. Every fd from [`OUTPUT`] up is
    /// closed before the library is loaded.
    pub const FIRST_FREE: i32 = 7;
}

/// The layout and protocol version of this file. Host and helper must come
/// from the same build: a mismatch is refused at spawn, never guessed at.
pub const WIRE_VERSION: u32 = 4;

/// What the host asks the fork server for. Sent as JSON with the helper's fds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnRequest {
    /// [`WIRE_VERSION`] of the host that sent it.
    pub wire_version: u32,
    /// Library path or soname, passed to `dlopen`.
    pub library: String,
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
    /// Run as this user and group.
    pub run_as: Option<Identity>,
}

/// The fork server's reply: the new helper's pid (or `-errno`; `-EPROTO` for a
/// request it cannot read, such as one from another ffb version), sent with a
/// pidfd for it. When the helper ends, the fork server reaps it and writes its
/// raw wait status (4 bytes, native endian) to the status pipe that came with
/// the request, then closes that pipe.
pub type SpawnReply = i32;

/// fds that travel with a [`SpawnRequest`], in this order.
pub const SPAWN_FDS: usize = 5;

/// Messages from the helper on the control socket during the handshake.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelperMessage {
    /// The filter is installed and its listener is fd `listener_fd` in the
    /// helper: the host takes it with `pidfd_getfd` and answers with one byte.
    Listener {
        /// fd number in the helper.
        listener_fd: i32,
    },
    /// The library is loaded and every function resolved.
    Ready,
    /// Loading failed before the helper could serve.
    Failed {
        /// `load_failed`, `symbol_not_found` or `bad_signature`.
        kind: String,
        /// What went wrong, for the user.
        message: String,
    },
}

/// Largest handshake message the host accepts.
pub const MAX_HANDSHAKE: usize = 8192;

/// Rounds `n` up to the buffer alignment, or `None` on overflow.
pub fn align_up(n: usize) -> Option<usize> {
    n.checked_add(BUFFER_ALIGN - 1)
        .map(|v| v & !(BUFFER_ALIGN - 1))
}
