//! Thin wrappers over the few syscalls the shim makes that libc does not wrap.

use std::io;

/// Turns a `-1`-on-error return into an `io::Result`.
pub fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Writes all of `buf` to `fd`, retrying on EINTR.
pub fn write_all(fd: i32, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
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

/// Sends one record on a SOCK_SEQPACKET socket. `write`, not `send`: the
/// filter is already installed and the pure preset allows `write` only.
pub fn send_packet(fd: i32, buf: &[u8]) -> io::Result<()> {
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    check(n as libc::c_long).map(|_| ())
}

/// Sleeps until the futex word at `word` is no longer `expected` (or a spurious wake).
pub fn futex_wait(word: &std::sync::atomic::AtomicU32, expected: u32) {
    // Not FUTEX_PRIVATE: the word lives in memory shared with the host.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}
