//! The shared arena's layout: one memfd mapped by both processes.
//!
//! ```text
//! 0      64       128        192        704    1024         4096                 arena_len
//! | host | helper | progress | args[64] | pad  | message     | data (argument buffers) |
//! ```
//!
//! * The host line ([`HostLine`]) holds the request (sequence number, op,
//!   function, argument count) and the host's "parked" flag. Only the host
//!   writes it.
//! * The helper line ([`HelperLine`]) holds the response (sequence number,
//!   status, return value, message length) and the helper's "parked" flag.
//!   Only the helper should write it, and the host treats all of it as
//!   hostile.
//! * The progress line ([`ProgressLine`]) counts the calls of a batch done.
//! * `args` holds one 64-bit word per argument: a scalar's bits, a handle's
//!   value, or for a pointer argument the offset of its buffer in the data
//!   area.
//! * `message` holds a helper error message (at most [`MESSAGE_CAPACITY`]
//!   bytes).
//! * A shared buffer (`Bridge::shared_buffer` in `ffb-loader`), when one is
//!   reserved, is the end of the data area; argument buffers stay below it.
//!
//! Every offset above, and every field's offset inside the lines, is checked
//! at compile time below: a change to the layout fails the build until this
//! comment, `docs/ARCHITECTURE.md` and [`WIRE_VERSION`](super::WIRE_VERSION)
//! change with it.
//!
//! How the two sides take turns on these lines is [`crate::handoff`].

use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicU32, AtomicU64};

/// Size of the control area before the data area.
pub const CONTROL_SIZE: usize = 4096;
/// Maximum arguments per call: the signature limit, so that any signature
/// the parser accepts fits the `args` words.
pub const MAX_WIRE_ARGS: usize = ffb_abi::signature::MAX_ARGS;
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
    /// The [`Op`](super::Op) requested.
    pub op: AtomicU32,
    /// For [`Op::Call`](super::Op::Call), the function's index in the
    /// helper's table.
    pub func: AtomicU32,
    /// For [`Op::Call`](super::Op::Call), the number of argument words in
    /// `args`; for [`Op::Batch`](super::Op::Batch), the number of calls.
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
    /// A [`Status`](super::Status) code.
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

/// Batch progress, on a cache line of its own: the helper bumps it after
/// every call of a batch, and on the response line that would make the
/// host's spinning re-fetch the line once per call.
#[repr(C, align(64))]
pub struct ProgressLine {
    /// How many calls of the current batch have completed (the helper's claim).
    pub completed: AtomicU32,
    /// The `req_seq` of the request the helper last took, stored before it
    /// runs any of it (the helper's claim). A helper found dead whose last
    /// taken request is older than the one just posted died before this
    /// request: the host says so rather than blaming the request.
    pub taken: AtomicU32,
}

/// The control area at the start of the arena. All atomics: both processes
/// may touch any of it at any time, so nothing here is ever a plain field.
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

/// Asserts at compile time that each part of `$ty` (and each field of a
/// part) sits at its documented offset from the start of the arena.
macro_rules! assert_offsets {
    ($ty:ident: $($part:ident $at:literal $(: $($field:ident $offset:literal),+)?;)+) => {
        const _: () = {
            $(
                assert!(offset_of!($ty, $part) == $at, stringify!($part));
                $($(
                    assert!(
                        offset_of!($ty, $part.$field) == $offset,
                        stringify!($part.$field)
                    );
                )+)?
            )+
        };
    };
}

// The documented layout, field by field: the table above, the one in
// docs/ARCHITECTURE.md, and what the helper and host both compile against.
assert_offsets! { Control:
    host 0: req_seq 0, op 4, func 8, nargs 12, host_parked 16, host_cpu 20;
    helper 64: resp_seq 64, status 68, message_len 72, helper_parked 76, ret 80, helper_cpu 88;
    progress 128: completed 128, taken 132;
    args 192;
}

// Each line is a cache line of its own, so the two sides do not share one
// while they spin; `args` ends before the message area.
const _: () = {
    assert!(size_of::<HostLine>() == 64 && size_of::<HelperLine>() == 64);
    assert!(size_of::<ProgressLine>() == 64);
    assert!(size_of::<Control>() == 192 + 8 * MAX_WIRE_ARGS);
    assert!(size_of::<Control>() <= MESSAGE_OFFSET);
    assert!(MESSAGE_OFFSET == 1024 && CONTROL_SIZE == 4096);
    // Both sides map the arena page-aligned, which is enough for Control.
    assert!(std::mem::align_of::<Control>() <= 4096);
};

/// Rounds `n` up to the buffer alignment, or `None` on overflow.
///
/// ```
/// use ffb_contract::wire::align_up;
/// assert_eq!(align_up(1), Some(16));
/// assert_eq!(align_up(32), Some(32));
/// assert_eq!(align_up(usize::MAX), None);
/// ```
pub fn align_up(n: usize) -> Option<usize> {
    n.checked_add(BUFFER_ALIGN - 1)
        .map(|v| v & !(BUFFER_ALIGN - 1))
}
