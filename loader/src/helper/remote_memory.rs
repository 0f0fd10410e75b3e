//! Reading the helper's memory from the host, for a returned `cstr` and
//! for learn mode's look at a path argument: `process_vm_readv`, one page
//! at a time, so a fault beyond the bytes wanted cannot hide them.

use super::outcome::DEATH_GRACE;
use super::Helper;
use crate::error::{Error, ErrorKind, Result};

impl Helper {
    /// Copies a NUL-terminated string out of the helper's memory, reading at
    /// most `bound` bytes. Reads page by page, so a string that ends just before
    /// unmapped memory is still found.
    ///
    /// A string that cannot be read is first taken as a sign that the helper
    /// is ending (a thread of it may exit right after the answer): if it has
    /// ended, or ends within [`DEATH_GRACE`], the error is how it ended, not
    /// the unreadable string. A string read in full is the answer, even if
    /// the helper dies right after; the next call reports that.
    pub fn read_cstr(&mut self, addr: u64, bound: usize) -> Result<Vec<u8>> {
        self.try_read_cstr(addr, bound).map_err(|e| {
            if e.kind == ErrorKind::Protocol && self.ends_within(DEATH_GRACE) {
                self.reap()
            } else {
                e
            }
        })
    }

    fn try_read_cstr(&self, addr: u64, bound: usize) -> Result<Vec<u8>> {
        read_cstr_of(self.pid, addr, bound)
    }
}

/// Copies a NUL-terminated string of at most `bound` bytes out of process
/// `pid`'s memory at `addr`, page by page: the string, a protocol error when
/// it is unreadable, or a resource-limit error when it is longer than
/// `bound`. The other process may change the bytes while they are read; the
/// copy is what counts.
pub(crate) fn read_cstr_of(pid: i32, addr: u64, bound: usize) -> Result<Vec<u8>> {
    let unreadable = |start: usize| {
        Error::new(
            ErrorKind::Protocol,
            format!("the returned string at {addr:#x} is not readable {start} bytes in"),
        )
    };
    // One byte past the bound tells a string of `bound` bytes from a longer one.
    let want = bound.saturating_add(1);
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < want {
        let start = out.len();
        out.resize(start + (want - start).min(PAGE), 0);
        let n = read_within_page(pid, at, &mut out[start..]);
        if n == 0 {
            return Err(unreadable(start));
        }
        out.truncate(start + n);
        if let Some(nul) = out[start..].iter().position(|&b| b == 0) {
            out.truncate(start + nul);
            // Reads go a page at a time: keep only what the string needs.
            out.shrink_to_fit();
            return Ok(out);
        }
        at = at
            .checked_add(n as u64)
            .ok_or_else(|| unreadable(out.len()))?;
    }
    Err(Error::new(
        ErrorKind::ResourceLimit,
        format!("the returned string is longer than the {bound}-byte bound"),
    ))
}

/// Reads up to `len` bytes of another process's memory, stopping at the
/// first unreadable page.
pub(super) fn read_memory(pid: i32, addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = read_within_page(pid, addr + got as u64, &mut out[got..]);
        if n == 0 {
            break;
        }
        got += n;
    }
    (got > 0).then(|| {
        out.truncate(got);
        out
    })
}

const PAGE: usize = 4096;

/// Reads another process's memory at `at` into `out`, but never past the end
/// of the page holding `at`, so a fault beyond it cannot hide the bytes before
/// it. Returns how many bytes were read: 0 when `at` is unreadable.
fn read_within_page(pid: i32, at: u64, out: &mut [u8]) -> usize {
    let want = out.len().min(PAGE - (at as usize % PAGE));
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: want,
    };
    let remote = libc::iovec {
        iov_base: at as *mut libc::c_void,
        iov_len: want,
    };
    // SAFETY: `local` is the first `want` bytes of the live `out`, the only
    // memory of ours the call writes; `remote` is only ever read in the
    // other process, where the kernel checks it (an unmapped page is an
    // error, not a fault here).
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    n.max(0) as usize
}
