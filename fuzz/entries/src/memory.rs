//! A page of readable memory followed by an unmapped one: where the
//! string-reading targets put a "returned string", so that one without a
//! NUL runs into memory the host cannot read, as a hostile helper's would.

use std::ptr::NonNull;

pub const PAGE: usize = 4096;

pub struct GuardedPage {
    base: NonNull<u8>,
}

// SAFETY: the mapping is plain memory owned by the process for its whole
// life (it is never unmapped); every access is a raw copy or a volatile
// write, which is as sound from any thread as from the one that mapped it.
unsafe impl Send for GuardedPage {}
// SAFETY: as for Send: shared access is only raw copies and volatile writes
// into a mapping that outlives every reference.
unsafe impl Sync for GuardedPage {}

impl GuardedPage {
    pub fn new() -> GuardedPage {
        // SAFETY: an anonymous private mapping of two fresh pages; the
        // kernel chooses the address, so nothing of ours is replaced.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(
            at,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        let guard = at.cast::<u8>().wrapping_add(PAGE);
        // SAFETY: the second page of the mapping just made, and no Rust
        // reference to it exists.
        let r = unsafe { libc::mprotect(guard.cast(), PAGE, libc::PROT_NONE) };
        assert_eq!(r, 0, "mprotect: {}", std::io::Error::last_os_error());
        GuardedPage {
            base: NonNull::new(at.cast()).expect("mmap returned a mapping"),
        }
    }

    /// The first byte of the readable page.
    pub fn start(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Copies `bytes` (at most a page) to the end of the readable page, so
    /// the unmapped page follows them, and returns their address.
    pub fn place_at_end(&self, bytes: &[u8]) -> u64 {
        let bytes = &bytes[..bytes.len().min(PAGE)];
        let at = self.start().wrapping_add(PAGE - bytes.len());
        // SAFETY: `at .. at + bytes.len()` is the end of the readable page;
        // the source is host memory the fuzzer owns.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), at, bytes.len()) };
        at as u64
    }
}
