//! The shared arena: a sealed memfd mapped into host and helper.
//!
//! The host owns the arena and everything in it is hostile once the helper
//! has run: every read of a helper-written field happens once, into a local,
//! and is checked before use. The memfd is sealed against shrinking, so the
//! helper cannot truncate it under the host's mapping (which would turn a
//! host read into SIGBUS).

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use ffb_contract::wire::{Control, CONTROL_SIZE, MESSAGE_CAPACITY, MESSAGE_OFFSET, MIN_ARENA};
use memmap2::MmapMut;

use crate::error::{Error, ErrorKind, Result};

pub(crate) struct Arena {
    map: MmapMut,
    memfd: Option<OwnedFd>,
}

impl Arena {
    /// A zeroed arena of `len` bytes (at least [`MIN_ARENA`]).
    pub fn create(len: usize) -> Result<Arena> {
        let len = len.max(MIN_ARENA);
        let io = |what: &str, e: std::io::Error| {
            Error::new(
                ErrorKind::LoadFailed,
                format!("creating the arena: {what}: {e}"),
            )
        };
        let name = c"ffb-arena";
        let fd = unsafe {
            libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if fd < 0 {
            return Err(io("memfd_create", std::io::Error::last_os_error()));
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let file = File::from(fd);
        file.set_len(len as u64).map_err(|e| io("ftruncate", e))?;
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io("sealing", std::io::Error::last_os_error()));
        }
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| io("mmap", e))?;
        Ok(Arena {
            map,
            memfd: Some(OwnedFd::from(file)),
        })
    }

    /// The memfd, to send to the helper once; the host keeps only the mapping.
    pub fn take_memfd(&mut self) -> Option<OwnedFd> {
        self.memfd.take()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes available for argument buffers.
    pub fn data_capacity(&self) -> usize {
        self.map.len() - CONTROL_SIZE
    }

    pub fn control(&self) -> &Control {
        // The mapping is page-aligned and at least CONTROL_SIZE long; Control
        // is all atomics, so concurrent writes by the helper are sound to observe.
        unsafe { &*(self.map.as_ptr() as *const Control) }
    }

    pub fn base(&self) -> *mut u8 {
        self.map.as_ptr() as *mut u8
    }

    /// Copies `bytes` into the arena at `offset`. The host chose `offset`, and
    /// checked it fits, before calling.
    pub fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset >= CONTROL_SIZE && offset + bytes.len() <= self.len());
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base().add(offset), bytes.len())
        };
    }

    /// Zero-fills `len` bytes at `offset`.
    pub fn zero(&self, offset: usize, len: usize) {
        assert!(offset >= CONTROL_SIZE && offset + len <= self.len());
        unsafe { std::ptr::write_bytes(self.base().add(offset), 0, len) };
    }

    /// Copies `out.len()` bytes out of the arena at a host-chosen `offset`.
    /// The helper may be writing concurrently; the copy is what counts.
    pub fn read_into(&self, offset: usize, out: &mut [u8]) {
        assert!(offset >= CONTROL_SIZE && offset + out.len() <= self.len());
        unsafe {
            std::ptr::copy_nonoverlapping(self.base().add(offset), out.as_mut_ptr(), out.len())
        };
    }

    /// Replaces the contents of `out` with `len` bytes from a host-chosen
    /// `offset`, reusing its allocation and writing each byte once.
    pub fn read_to_vec(&self, offset: usize, len: usize, out: &mut Vec<u8>) {
        assert!(offset >= CONTROL_SIZE && offset + len <= self.len());
        out.clear();
        out.reserve(len);
        unsafe {
            std::ptr::copy_nonoverlapping(self.base().add(offset), out.as_mut_ptr(), len);
            out.set_len(len);
        }
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
        unsafe {
            std::ptr::copy_nonoverlapping(self.base().add(MESSAGE_OFFSET), buf.as_mut_ptr(), len)
        };
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}
