//! File descriptor numbers in a freshly forked helper. The helper moves the
//! fds it received with its [`SpawnRequest`](crate::wire::SpawnRequest)
//! there before anything else runs, so the rest of its code (and the docs)
//! can name them.

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
