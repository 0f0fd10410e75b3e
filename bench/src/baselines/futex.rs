//! The futex baselines: host and helper hand a request and its answer over
//! on a shared page with sequence words and FUTEX_WAIT/FUTEX_WAKE; the spin
//! variant first spins for [`SPIN_FLOOR`] on each side (a fixed floor, where
//! the bridge adapts its spin budget).
//!
//! The page: request and response sequence words on their own cache lines,
//! the payload length, the two "parked" flags of the spin variant, then the
//! payload from [`DATA`].

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, ExitCode, Stdio};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

use super::InProcess;
use crate::children::Child;
use crate::plan::MAX_PAYLOAD;

const REQ: usize = 0;
const RESP: usize = 64;
const LEN: usize = 128;
/// For the spin baseline: set while the child / the host sleeps.
const CHILD_PARKED: usize = 192;
const HOST_PARKED: usize = 256;
const DATA: usize = 4096;
const MAP_LEN: usize = DATA + MAX_PAYLOAD;
/// How long each side of the spin baseline spins before it sleeps.
pub const SPIN_FLOOR: Duration = Duration::from_micros(100);

/// The page shared by the host and one helper.
///
/// Both processes write it, so no Rust reference to its bytes is ever made
/// (which is why it is a [`MmapRaw`]): the words are only reached as atomics,
/// by both sides, and the payload area only by raw copies, by one side at a
/// time: the host before it publishes `req` and after it sees `resp`, the
/// helper in between.
struct Page {
    map: MmapRaw,
}

/// The handoff's words on a [`Page`].
struct Words<'a> {
    req: &'a AtomicU32,
    resp: &'a AtomicU32,
    len: &'a AtomicU64,
    child_parked: &'a AtomicU32,
    host_parked: &'a AtomicU32,
}

impl Page {
    /// Maps the page from `fd` (the memfd, or the helper's stdin).
    fn map(fd: &impl AsRawFd) -> std::io::Result<Page> {
        let map = MmapOptions::new().len(MAP_LEN).map_raw(fd)?;
        Ok(Page { map })
    }

    /// The page's first byte; page-aligned, as every mapping is.
    fn base(&self) -> NonNull<u8> {
        NonNull::new(self.map.as_mut_ptr()).expect("a mapping is never at address 0")
    }

    fn words(&self) -> Words<'_> {
        let base = self.base().as_ptr();
        Words {
            // SAFETY: each offset is inside the mapping, which lives as long
            // as `&self`, and a multiple of 8 from a page-aligned base; both
            // processes reach these words only atomically (see [`Page`]).
            req: unsafe { AtomicU32::from_ptr(base.wrapping_add(REQ).cast()) },
            // SAFETY: as for `req`.
            resp: unsafe { AtomicU32::from_ptr(base.wrapping_add(RESP).cast()) },
            // SAFETY: as for `req`.
            len: unsafe { AtomicU64::from_ptr(base.wrapping_add(LEN).cast()) },
            // SAFETY: as for `req`.
            child_parked: unsafe { AtomicU32::from_ptr(base.wrapping_add(CHILD_PARKED).cast()) },
            // SAFETY: as for `req`.
            host_parked: unsafe { AtomicU32::from_ptr(base.wrapping_add(HOST_PARKED).cast()) },
        }
    }

    /// The payload area, for the fixture (which never reads it).
    fn data(&self) -> *mut u8 {
        self.base().as_ptr().wrapping_add(DATA)
    }

    /// Copies `payload` into the payload area (the host, before `req`).
    fn write(&self, payload: &[u8]) {
        assert!(
            payload.len() <= MAX_PAYLOAD,
            "a baseline payload over 8 MiB"
        );
        // SAFETY: the area holds MAX_PAYLOAD bytes, and the helper does not
        // touch it until `req` is published (see [`Page`]); `payload` is
        // ordinary memory, so the two cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(payload.as_ptr(), self.data(), payload.len()) };
    }

    /// Fills `answer` from the payload area (the host, after `resp`).
    fn read(&self, answer: &mut [u8]) {
        assert!(answer.len() <= MAX_PAYLOAD, "a baseline payload over 8 MiB");
        // SAFETY: as in `write`: in bounds, and the helper has answered and
        // waits for the next `req`.
        unsafe { std::ptr::copy_nonoverlapping(self.data(), answer.as_mut_ptr(), answer.len()) };
    }
}

/// The host's side of a futex (or spin) helper.
pub struct Handoff {
    page: Page,
    spin: bool,
}

/// Starts `cmd` with a fresh shared page as its stdin.
pub fn spawn(cmd: &mut Command, spin: bool) -> std::io::Result<(Child, Handoff)> {
    let file = memfd()?;
    file.set_len(MAP_LEN as u64)?;
    let page = Page::map(&file)?;
    cmd.stdin(Stdio::from(file)).stdout(Stdio::null());
    let child = Child::spawn(cmd)?;
    Ok((child, Handoff { page, spin }))
}

/// An anonymous file to share as memory.
fn memfd() -> std::io::Result<File> {
    // SAFETY: the name is a NUL-terminated literal, and memfd_create only
    // creates a new file descriptor.
    let fd = unsafe { libc::memfd_create(c"ffb-bench".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened by memfd_create and nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

impl Handoff {
    /// Hands `payload` over and waits for the answer, copied into `answer`.
    pub fn round_trip(&self, payload: &[u8], answer: &mut [u8]) -> std::io::Result<()> {
        let w = self.page.words();
        let len = payload.len();
        self.page.write(payload);
        w.len.store(len as u64, SeqCst);
        let seq = w.req.load(SeqCst).wrapping_add(1);
        w.req.store(seq, SeqCst);
        if !self.spin || w.child_parked.load(SeqCst) != 0 {
            wake(w.req);
        }
        let t = Instant::now();
        if self.spin {
            spin_until(|| w.resp.load(SeqCst) == seq);
        }
        loop {
            w.host_parked.store(1, SeqCst);
            let now = w.resp.load(SeqCst);
            if now == seq {
                w.host_parked.store(0, SeqCst);
                break;
            }
            if t.elapsed() > Duration::from_secs(10) {
                w.host_parked.store(0, SeqCst);
                return Err(std::io::Error::other("no answer in 10 s"));
            }
            wait(w.resp, now, Some(Duration::from_secs(1)));
        }
        self.page.read(&mut answer[..len]);
        Ok(())
    }
}

/// The helper: maps the page on its stdin and answers requests until killed.
pub fn serve(fixture: &InProcess, spin: bool) -> ExitCode {
    let Ok(page) = Page::map(&std::io::stdin()) else {
        return ExitCode::from(3);
    };
    let w = page.words();
    let mut seen = 0;
    loop {
        if spin {
            spin_until(|| w.req.load(SeqCst) != seen);
        }
        while w.req.load(SeqCst) == seen {
            w.child_parked.store(1, SeqCst);
            if w.req.load(SeqCst) == seen {
                wait(w.req, seen, None);
            }
            w.child_parked.store(0, SeqCst);
        }
        seen = w.req.load(SeqCst);
        if w.len.load(SeqCst) == 0 {
            fixture.nop();
        } else {
            fixture.nop_bytes(page.data());
        }
        w.resp.store(seen, SeqCst);
        if !spin || w.host_parked.load(SeqCst) != 0 {
            wake(w.resp);
        }
    }
}

/// Spins until `done` or for [`SPIN_FLOOR`]; true if done.
fn spin_until(done: impl Fn() -> bool) -> bool {
    let t = Instant::now();
    let mut spins = 0u32;
    loop {
        if done() {
            return true;
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) && t.elapsed() >= SPIN_FLOOR {
            return false;
        }
        std::hint::spin_loop();
    }
}

/// Wakes one process sleeping on `word` (shared: no FUTEX_PRIVATE_FLAG).
fn wake(word: &AtomicU32) {
    // SAFETY: the kernel only uses the address of `word`, a live, aligned
    // u32; FUTEX_WAKE ignores the timeout, passed as null.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            1u32,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// Sleeps while `word` is `val`, for at most `timeout` (None: no limit).
fn wait(word: &AtomicU32, val: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs() as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32 the kernel compares with `val`,
    // and `ts` is null or points to a timespec that outlives the call.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, val, ts) };
}
