//! The helper's mapping of the shared arena.
//!
//! # Sharing rule
//!
//! The arena is shared with the host, and within this process with the
//! library, which may scribble on any byte of it at any time. So nothing
//! here ever forms a `&` or `&mut` to arena bytes, except to the atomics of
//! [`Control`]; every other access is a raw, unaligned read or write of one
//! word ([`Arena::read_word`], [`Arena::write_word`]) or a raw copy between
//! the arena and memory of the helper's own ([`Arena::copy_out`],
//! [`Arena::write_message`]), at an offset checked against the mapping's
//! length first. A word the helper acts on is read once, into a local.
//! Pointers into the data area are handed to the library (whose code is
//! outside Rust's model and sandboxed for that reason), never dereferenced
//! here.

use std::io;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use ffb_contract::fds;
use ffb_contract::sys::map_shared;
use ffb_contract::wire::{Control, CONTROL_SIZE, MESSAGE_CAPACITY, MESSAGE_OFFSET, MIN_ARENA};

/// The arena, mapped once and never unmapped: the helper ends by exiting.
/// A view of that mapping, so copies of it are as good as the original.
#[derive(Clone, Copy)]
pub struct Arena {
    base: NonNull<u8>,
    len: usize,
}

impl Arena {
    /// Maps the memfd at [`fds::ARENA`] (`len` bytes, as the host created
    /// it) and closes the fd.
    pub fn map(len: usize) -> io::Result<Arena> {
        let mapped = if len < MIN_ARENA {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a {len}-byte arena is smaller than the {MIN_ARENA}-byte minimum"),
            ))
        } else {
            // SAFETY: fds::ARENA is open (take_process put the memfd there)
            // and stays open until the close below.
            map_shared(unsafe { BorrowedFd::borrow_raw(fds::ARENA) }, len)
        };
        // SAFETY: fds::ARENA is this process's copy of the memfd, placed
        // there by take_process and used by nothing else; the mapping (if
        // any) keeps the memory alive without it.
        unsafe { libc::close(fds::ARENA) };
        Ok(Arena { base: mapped?, len })
    }

    /// The control area, for the helper's whole life.
    pub fn control(&self) -> &'static Control {
        // SAFETY: the mapping is page-aligned, at least MIN_ARENA bytes
        // (more than Control), and never unmapped, so the reference is valid
        // for 'static. Control is all atomics, so the host's (and the
        // library's) concurrent writes are sound to observe through it.
        unsafe { self.base.cast::<Control>().as_ref() }
    }

    /// The address of byte `offset`: a plain address computation, only
    /// dereferenced for offsets checked against the mapping's length.
    fn at(&self, offset: usize) -> *mut u8 {
        self.base.as_ptr().wrapping_add(offset)
    }

    /// Whether `len` bytes at `offset` lie in the data area.
    pub fn fits(&self, offset: usize, len: usize) -> bool {
        offset >= CONTROL_SIZE && offset.checked_add(len).is_some_and(|end| end <= self.len)
    }

    /// The helper's address of data-area byte `offset`, for a pointer
    /// argument; `None` outside the data area.
    pub fn address(&self, offset: u64) -> Option<u64> {
        let offset = usize::try_from(offset).ok()?;
        (offset >= CONTROL_SIZE && offset < self.len)
            .then(|| self.base.as_ptr() as u64 + offset as u64)
    }

    /// Reads the 64-bit word at data-area `offset`, once.
    pub fn read_word(&self, offset: usize) -> Option<u64> {
        if !self.fits(offset, 8) {
            return None;
        }
        // SAFETY: the eight bytes at `offset` are inside the mapping
        // (checked above); an unaligned read of plain bytes needs no
        // alignment or validity beyond that, and forms no reference.
        Some(unsafe { self.at(offset).cast::<u64>().read_unaligned() })
    }

    /// Writes the 64-bit word at data-area `offset`; false if it does not fit.
    pub fn write_word(&self, offset: usize, value: u64) -> bool {
        if !self.fits(offset, 8) {
            return false;
        }
        // SAFETY: as in read_word; the mapping is writable (PROT_WRITE).
        unsafe { self.at(offset).cast::<u64>().write_unaligned(value) };
        true
    }

    /// Copies `len` bytes at data-area `offset` into memory of the helper's
    /// own; `None` if they do not fit.
    pub fn copy_out(&self, offset: usize, len: usize) -> Option<Vec<u8>> {
        if !self.fits(offset, len) {
            return None;
        }
        let mut out = Vec::with_capacity(len);
        // SAFETY: the source is inside the mapping (checked above), the
        // destination is the Vec's fresh allocation of `len` bytes, and the
        // two cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.at(offset), out.as_mut_ptr(), len) };
        // SAFETY: the copy above initialized all `len` bytes.
        unsafe { out.set_len(len) };
        Some(out)
    }

    /// Writes a message into the message area (cut to its capacity) and
    /// returns the length written.
    pub fn write_message(&self, text: &str) -> u32 {
        let bytes = &text.as_bytes()[..text.len().min(MESSAGE_CAPACITY)];
        // SAFETY: MESSAGE_OFFSET + MESSAGE_CAPACITY = CONTROL_SIZE, inside
        // the mapping; the source is helper memory, so they cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at(MESSAGE_OFFSET), bytes.len())
        };
        bytes.len() as u32
    }
}
