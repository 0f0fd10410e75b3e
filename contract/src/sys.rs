//! The few syscalls both sides make that `std` does not wrap: futexes on
//! the shared arena, fds passed with `SCM_RIGHTS`, and writes that must not
//! go through `std`'s buffered, signal-aware machinery.
//!
//! Each wrapper is safe to call: the `unsafe` is inside, next to the reason
//! it holds.

use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

/// Turns a negative-on-error return into an `io::Result` with `errno`.
pub fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Writes all of `buf` to `fd`, retrying on EINTR.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a live slice, so its pointer is readable for its
        // length; `write` only reads it.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Sends one record on a SOCK_SEQPACKET socket. `write`, not `send`: in the
/// helper the filter is already installed, and the pure preset allows
/// `write` only.
pub fn send_packet(fd: RawFd, buf: &[u8]) -> io::Result<()> {
    // SAFETY: `buf` is a live slice, so its pointer is readable for its
    // length; `write` only reads it.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    check(n as libc::c_long).map(drop)
}

/// Sleeps until the futex word is no longer `expected` (or a spurious wake).
/// The kernel re-checks the value before it sleeps, so a change made just
/// before the call is never slept through.
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    // Not FUTEX_PRIVATE: the word lives in memory shared with another
    // process, and private futexes are keyed by this process's mapping.
    // SAFETY: FUTEX_WAIT reads the aligned 32-bit word at this address,
    // which the reference keeps mapped for the whole call; a null timeout
    // means "no timeout", and nothing else is passed.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// Wakes one waiter on the futex word (in this or another process).
pub fn futex_wake(word: &AtomicU32) {
    // Not FUTEX_PRIVATE: the waiter sleeps on its own mapping of the same page.
    // SAFETY: FUTEX_WAKE only uses the address as a key (it reads nothing
    // through it); the reference keeps it a valid, aligned word.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1) };
}

/// Gives the CPU to another runnable thread, if there is one.
pub fn sched_yield() {
    // SAFETY: sched_yield takes no arguments and touches no memory.
    unsafe { libc::sched_yield() };
}

/// The CPU the caller runs on, if the kernel says. Cheap: glibc answers
/// from its restartable-sequence area, without a syscall.
pub fn current_cpu() -> Option<u32> {
    // SAFETY: sched_getcpu takes no arguments and touches no caller memory.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).ok()
}

/// Maps `len` bytes of `fd` shared and writable, at an address the kernel
/// picks: how both sides map the arena. The mapping is never freed by this
/// call's result; the caller decides whether to `munmap` it.
pub fn map_shared(fd: BorrowedFd<'_>, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh mapping at an address the kernel picks touches no
    // existing memory; the kernel checks the fd and the length.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned NULL"))
}

/// A connected pair of `SOCK_SEQPACKET` unix sockets, close-on-exec: what
/// the host and the fork server, and the host and each helper, talk over.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut pair = [0; 2];
    // SAFETY: socketpair writes two fds into the two-element array.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded, so both fds are open and ours alone.
    let a = unsafe { OwnedFd::from_raw_fd(pair[0]) };
    // SAFETY: as above.
    let b = unsafe { OwnedFd::from_raw_fd(pair[1]) };
    Ok((a, b))
}

/// Waits until one of the fds is readable (or hung up, or in error), or
/// `deadline` passes (`None`: no deadline), and says which are. `None`
/// entries are not watched. Retries on EINTR, with the time then left; any
/// other failure reports nothing ready, and the caller looks again.
pub fn poll_readable<const N: usize>(
    fds: &[Option<RawFd>; N],
    deadline: Option<Instant>,
) -> [bool; N] {
    let mut polls: [libc::pollfd; N] = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; N];
    for (p, fd) in polls.iter_mut().zip(fds) {
        p.fd = fd.unwrap_or(-1);
    }
    loop {
        let ms = deadline.map_or(-1, |deadline| {
            let left = deadline.saturating_duration_since(Instant::now());
            // Rounded up: a poll that wakes just before the deadline would
            // only poll again.
            (left.as_millis().min(i32::MAX as u128 - 1) as i32)
                .saturating_add(i32::from(!left.subsec_micros().is_multiple_of(1000)))
        });
        // SAFETY: `polls` is a live array of N pollfds, which poll reads and
        // updates in place.
        let n = unsafe { libc::poll(polls.as_mut_ptr(), N as libc::nfds_t, ms) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        let mut ready = [false; N];
        for (r, p) in ready.iter_mut().zip(&polls) {
            *r = p.fd >= 0 && p.revents != 0;
        }
        return ready;
    }
}

/// Most fds one message carries: a spawn request's five, with room to spare.
pub const MAX_FDS: usize = 8;

/// One `SCM_RIGHTS` control message with room for [`MAX_FDS`] fds, laid out
/// as `CMSG_FIRSTHDR`/`CMSG_DATA` expect: the header, then the fds. A struct
/// rather than a byte buffer, so it is aligned for the header and every
/// field is read as what it is.
#[repr(C)]
struct FdMessage {
    header: libc::cmsghdr,
    fds: [RawFd; MAX_FDS],
}

const HEADER: usize = size_of::<libc::cmsghdr>();
// CMSG_DATA is the header rounded up to the alignment of `size_t`: the
// header is already a multiple of it, so the data is the next field.
const _: () = assert!(HEADER.is_multiple_of(size_of::<usize>()));
const _: () = assert!(offset_of!(FdMessage, fds) == HEADER);

/// `CMSG_LEN` for `n` fds: the header and the fds, unpadded.
const fn cmsg_len(n: usize) -> usize {
    HEADER + n * size_of::<RawFd>()
}

/// `CMSG_SPACE` for `n` fds: the message padded to `size_t` alignment.
const fn cmsg_space(n: usize) -> usize {
    HEADER + (n * size_of::<RawFd>()).next_multiple_of(size_of::<usize>())
}

/// A `msghdr` for one buffer and no control message yet.
fn message_header(iov: &mut libc::iovec) -> libc::msghdr {
    // SAFETY: msghdr is plain C data (pointers, lengths, flags); all zeroes
    // is the empty message, with null pointers and zero lengths.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg
}

/// Sends `payload` as one message with `fds` attached (none: a plain
/// message). The fds stay open here: the receiver gets copies.
pub fn send_with_fds(socket: RawFd, payload: &[u8], fds: &[RawFd]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} fds in one message (at most {MAX_FDS})", fds.len()),
        ));
    }
    let mut control = FdMessage {
        header: libc::cmsghdr {
            cmsg_len: cmsg_len(fds.len()),
            cmsg_level: libc::SOL_SOCKET,
            cmsg_type: libc::SCM_RIGHTS,
        },
        fds: [-1; MAX_FDS],
    };
    control.fds[..fds.len()].copy_from_slice(fds);
    let mut iov = libc::iovec {
        // sendmsg only reads the payload; iovec is shared with recvmsg,
        // hence the `mut` pointer type.
        iov_base: payload.as_ptr().cast_mut().cast(),
        iov_len: payload.len(),
    };
    let mut msg = message_header(&mut iov);
    if !fds.is_empty() {
        msg.msg_control = (&raw mut control).cast();
        msg.msg_controllen = cmsg_space(fds.len());
    }
    // SAFETY: `msg` points at `iov` (the live payload slice) and, with fds,
    // at `control`, whose first `msg_controllen` bytes are one initialized
    // control message; all three outlive the call, which only reads them.
    // MSG_NOSIGNAL: a closed peer is an EPIPE, not a SIGPIPE.
    let sent = unsafe { libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) };
    check(sent as libc::c_long).map(drop)
}

/// One message read by [`recv_with_fds`].
#[derive(Debug)]
pub struct Received {
    /// Bytes of the message in the buffer; 0 at end of stream.
    pub len: usize,
    /// The fds that came with it, owned here (close-on-exec), so whatever
    /// the caller does not keep is closed.
    pub fds: Vec<OwnedFd>,
    /// Whether the message or its fds did not fit (what did not fit is lost).
    pub truncated: bool,
}

/// Reads one message and the fds sent with it, retrying on EINTR. The fds
/// arrive close-on-exec, so none can leak into a later `exec`.
pub fn recv_with_fds(socket: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut control = FdMessage {
        header: libc::cmsghdr {
            cmsg_len: 0,
            cmsg_level: 0,
            cmsg_type: 0,
        },
        fds: [-1; MAX_FDS],
    };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg = message_header(&mut iov);
    msg.msg_control = (&raw mut control).cast();
    msg.msg_controllen = size_of::<FdMessage>();
    let len = loop {
        // SAFETY: `msg` points at `iov` (the live, writable `buf`) and at
        // `control`, writable for `msg_controllen` bytes; recvmsg writes at
        // most that much into each and updates `msg` itself.
        let n = unsafe { libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        match check(n as libc::c_long) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => break result? as usize,
        }
    };
    // One SCM_RIGHTS message at most: these sockets carry no other kind.
    let mut fds = Vec::new();
    let header = &control.header;
    if msg.msg_controllen >= HEADER
        && header.cmsg_level == libc::SOL_SOCKET
        && header.cmsg_type == libc::SCM_RIGHTS
    {
        let count = (header.cmsg_len.saturating_sub(HEADER) / size_of::<RawFd>()).min(MAX_FDS);
        for &fd in &control.fds[..count] {
            // SAFETY: the kernel installed these fds in this process for
            // this message just now; nothing else knows them, so this is
            // their one owner.
            fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Ok(Received {
        len,
        fds,
        truncated: msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_message_sizes_match_the_kernel_macros() {
        for n in 0..=MAX_FDS {
            let bytes = (n * size_of::<RawFd>()) as u32;
            // SAFETY: CMSG_LEN and CMSG_SPACE are arithmetic on their argument.
            let len = unsafe { libc::CMSG_LEN(bytes) } as usize;
            // SAFETY: as above.
            let space = unsafe { libc::CMSG_SPACE(bytes) } as usize;
            assert_eq!((cmsg_len(n), cmsg_space(n)), (len, space), "{n} fds");
        }
        assert!(cmsg_space(MAX_FDS) <= size_of::<FdMessage>());
    }

    #[test]
    fn fds_travel_with_the_message() {
        let (a, b) = seqpacket_pair().unwrap();
        let (c, d) = seqpacket_pair().unwrap();
        send_with_fds(a.as_raw_fd(), b"hello", &[c.as_raw_fd(), d.as_raw_fd()]).unwrap();
        let mut buf = [0u8; 16];
        let got = recv_with_fds(b.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..got.len], b"hello");
        assert_eq!(got.fds.len(), 2);
        assert!(!got.truncated);
        // The received copy of `c` talks to `d`.
        send_packet(got.fds[0].as_raw_fd(), b"x").unwrap();
        let got_back = recv_with_fds(d.as_raw_fd(), &mut buf).unwrap();
        assert_eq!((&buf[..got_back.len], got_back.fds.len()), (&b"x"[..], 0));

        send_with_fds(a.as_raw_fd(), b"too long for the buffer", &[]).unwrap();
        let short = recv_with_fds(b.as_raw_fd(), &mut buf[..4]).unwrap();
        assert!(short.truncated);
        drop(a);
        assert_eq!(recv_with_fds(b.as_raw_fd(), &mut buf).unwrap().len, 0);
    }

    #[test]
    fn too_many_fds_are_refused_before_sending() {
        let (a, _b) = seqpacket_pair().unwrap();
        let fds = [a.as_raw_fd(); MAX_FDS + 1];
        let e = send_with_fds(a.as_raw_fd(), b"x", &fds).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
