//! The shared arena: a sealed memfd mapped into host and helper.
//!
//! The memfd is sealed against shrinking, so the helper cannot truncate it
//! under the host's mapping (which would turn a host read into SIGBUS).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use ffb_contract::sys::map_shared;
use ffb_contract::wire::{Control, CONTROL_SIZE, MESSAGE_CAPACITY, MESSAGE_OFFSET, MIN_ARENA};

use crate::error::{Error, ErrorKind, Result};

/// The host's mapping of one helper's arena.
///
/// # Sharing rule
///
/// Once the helper runs, it (and the library inside it) can write any byte
/// of the arena at any time, the host's own request included. So the host:
///
/// * never forms a `&` or `&mut` to arena bytes, except to the atomics of
///   [`Control`] ([`Arena::control`]): the mapping is a [`NonNull<u8>`] and
///   a length, and every other access is a raw copy between the arena and
///   host-owned memory ([`Arena::write`], [`Arena::zero`],
///   [`Arena::read_into`], [`Arena::read_to_vec`], [`Arena::message`]), at
///   an offset and length the host chose and checked against the mapping;
/// * reads each helper-written field once, into a local, and checks that
///   copy before it uses it; never follows a pointer or offset found in the
///   arena; and reads its own host line back only to detect tampering;
/// * decodes copied-out bytes only after the copy, so a value cannot change
///   between its check and its use.
///
/// What the helper writes concurrently with a copy only decides which bytes
/// the copy sees, never whether the host is sound. The one exception to
/// "raw copies only" is a [`SharedBuffer`](crate::SharedBuffer), whose
/// pointer ([`Arena::base`]) the caller uses under the same rule.
pub(crate) struct Arena {
    base: NonNull<u8>,
    len: usize,
    memfd: Option<OwnedFd>,
}

// SAFETY: the arena is plain shared memory, touched only through atomics
// and raw copies (the rule above), which is as sound from any host thread as
// from the one that mapped it; the mapping lives until the Arena drops.
unsafe impl Send for Arena {}
// SAFETY: `&Arena` gives access only to atomics and raw copies that already
// race with another process by design; callers serialize their own
// non-atomic copies (a Bridge's calls take `&mut self`).
unsafe impl Sync for Arena {}

impl Arena {
    /// A zeroed arena of `len` bytes (at least [`MIN_ARENA`]).
    pub fn create(len: usize) -> Result<Arena> {
        let len = len.max(MIN_ARENA);
        let io = |what: &str, e: io::Error| {
            Error::with_source(
                ErrorKind::LoadFailed,
                format!("creating the arena: {what}: {e}"),
                e,
            )
        };
        let name = c"ffb-arena";
        // SAFETY: `name` is a NUL-terminated string that outlives the call.
        let fd = unsafe {
            libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if fd < 0 {
            return Err(io("memfd_create", io::Error::last_os_error()));
        }
        // SAFETY: memfd_create just returned this fd, owned by no one else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.set_len(len as u64).map_err(|e| io("ftruncate", e))?;
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: F_ADD_SEALS takes an integer and touches no memory.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io("sealing", io::Error::last_os_error()));
        }
        let base = map_shared(file.as_fd(), len).map_err(|e| io("mmap", e))?;
        Ok(Arena {
            base,
            len,
            memfd: Some(OwnedFd::from(file)),
        })
    }

    /// The memfd, to send to the helper once; the host keeps only the mapping.
    pub fn take_memfd(&mut self) -> Option<OwnedFd> {
        self.memfd.take()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes available for argument buffers.
    pub fn data_capacity(&self) -> usize {
        self.len - CONTROL_SIZE
    }

    pub fn control(&self) -> &Control {
        // SAFETY: the mapping is page-aligned and at least MIN_ARENA bytes,
        // more than Control, and outlives the borrow of `self`. Control is
        // all atomics, so the helper's concurrent writes are sound to
        // observe through this reference.
        unsafe { self.base.cast::<Control>().as_ref() }
    }

    /// The start of the mapping, for a [`SharedBuffer`](crate::SharedBuffer).
    pub fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// The address of byte `offset`: a plain address computation, only
    /// dereferenced after the caller checked `offset` against the length.
    fn at(&self, offset: usize) -> *mut u8 {
        self.base.as_ptr().wrapping_add(offset)
    }

    /// Panics unless `len` bytes at `offset` lie in the data area: the host
    /// chose both, so a miss is a host bug, not the helper's doing.
    fn check_data(&self, offset: usize, len: usize) {
        assert!(
            offset >= CONTROL_SIZE && offset.checked_add(len).is_some_and(|end| end <= self.len),
            "arena access at {offset}+{len} outside the data area (arena of {} bytes)",
            self.len
        );
    }

    /// Copies `bytes` into the arena at `offset`. The host chose `offset`, and
    /// checked it fits, before calling.
    pub fn write(&self, offset: usize, bytes: &[u8]) {
        self.check_data(offset, bytes.len());
        // SAFETY: the destination is inside the mapping (checked above); the
        // source is host memory, so the two cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at(offset), bytes.len()) };
    }

    /// Zero-fills `len` bytes at `offset`.
    pub fn zero(&self, offset: usize, len: usize) {
        self.check_data(offset, len);
        // SAFETY: the bytes are inside the mapping (checked above).
        unsafe { std::ptr::write_bytes(self.at(offset), 0, len) };
    }

    /// Copies `out.len()` bytes out of the arena at a host-chosen `offset`.
    /// The helper may be writing concurrently; the copy is what counts.
    pub fn read_into(&self, offset: usize, out: &mut [u8]) {
        self.check_data(offset, out.len());
        // SAFETY: the source is inside the mapping (checked above); `out` is
        // host memory, so the two cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.at(offset), out.as_mut_ptr(), out.len()) };
    }

    /// Replaces the contents of `out` with `len` bytes from a host-chosen
    /// `offset`, reusing its allocation and writing each byte once.
    pub fn read_to_vec(&self, offset: usize, len: usize, out: &mut Vec<u8>) {
        self.check_data(offset, len);
        out.clear();
        out.reserve(len);
        // SAFETY: the source is inside the mapping (checked above); the
        // destination is `out`'s allocation, with room for `len` bytes after
        // the reserve, and host memory, so the two cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.at(offset), out.as_mut_ptr(), len) };
        // SAFETY: the copy above initialized the first `len` bytes.
        unsafe { out.set_len(len) };
    }

    /// Reads the helper's message once: the length is checked before use.
    pub fn message(&self, len: u32) -> Result<String> {
        let len = len as usize;
        if len > MESSAGE_CAPACITY {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("helper reported a {len}-byte message; the message area holds {MESSAGE_CAPACITY}"),
            ));
        }
        let mut buf = vec![0u8; len];
        // SAFETY: MESSAGE_OFFSET + MESSAGE_CAPACITY = CONTROL_SIZE, inside
        // the mapping, and `len` is at most the capacity; `buf` is host
        // memory of `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(self.at(MESSAGE_OFFSET), buf.as_mut_ptr(), len) };
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are the mapping made in `create`, which
        // nothing uses after this: every borrow of the Arena has ended.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}
