//! The connect broker: under a policy that grants unix socket paths, the
//! host makes every `connect` of the helper itself.
//!
//! No kernel mechanism bounds a pathname unix `connect` by its path here
//! (Landlock has no right for it; seccomp cannot read the address), and
//! letting the syscall continue after the host read the address is a race:
//! another thread of the helper can rewrite the address in between. So the
//! host never answers such a notification with `CONTINUE`. It takes a copy
//! of the helper's socket (`pidfd_getfd`: the same socket, not a new one),
//! reads the address once, asks the policy
//! ([`SandboxPolicy::connect_decision`](ffb_policy::sandbox::SandboxPolicy::connect_decision)),
//! and connects its copy to the address the *policy* names (a granted path
//! as the policy spells it, or a granted port). The helper's socket is then
//! connected, and the helper gets that `connect`'s result. If the helper
//! swapped the fd in between, the host connected whatever socket it took to
//! a granted address, and nothing else.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use ffb_policy::grants::ConnectDecision;

use super::remote_memory::read_memory;
use super::Helper;

/// The longest socket address the kernel takes (`sockaddr_storage`).
const MAX_ADDRESS: usize = 128;

/// How long the host waits for a TCP connection it makes for a blocking
/// socket of the helper. The call's own timeout still bounds the call; this
/// bounds how long the host's thread is away from watching it.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

impl Helper {
    /// Makes the `connect` of notification `req` for the helper, and returns
    /// what the helper's `connect` returns: 0 or a negative errno.
    pub(super) fn broker_connect(&self, req: &libc::seccomp_notif) -> i32 {
        let args = req.data.args;
        let Ok(remote_fd) = i32::try_from(args[0]) else {
            return -libc::EBADF;
        };
        let socket = match self.take_fd(remote_fd) {
            Ok(fd) => fd,
            Err(e) => return -e.raw_os_error().unwrap_or(libc::EBADF),
        };
        let domain = match socket_option(&socket, libc::SO_DOMAIN) {
            Ok(domain) => domain,
            Err(e) => return -e.raw_os_error().unwrap_or(libc::ENOTSOCK),
        };
        let len = (args[2] as usize).min(MAX_ADDRESS);
        let Some(address) = read_memory(self.pid, args[1], len).filter(|a| a.len() == len) else {
            return -libc::EFAULT;
        };
        match self.policy.connect_decision(domain, &address) {
            ConnectDecision::Refuse(errno) => {
                let errno = errno as i32;
                self.audit_verdict(
                    req.data.nr as i64,
                    args,
                    &format!(
                        "errno:{}",
                        ffb_policy::errno::errno_name(errno as u32).unwrap_or("?")
                    ),
                );
                -errno
            }
            ConnectDecision::Unix(path) => match unix_address(path.as_os_str().as_bytes()) {
                Some((addr, len)) => connect(&socket, &addr, len),
                None => -libc::ENAMETOOLONG,
            },
            ConnectDecision::Inet(addr) => {
                let (addr, len) = inet_address(addr);
                connect(&socket, &addr, len)
            }
        }
    }

    /// The host's copy of the helper's fd `remote_fd`.
    pub(super) fn take_fd(&self, remote_fd: RawFd) -> io::Result<OwnedFd> {
        // SAFETY: pidfd_getfd takes a pidfd, an fd number and flags, and
        // touches no memory of this process.
        let fd =
            unsafe { libc::syscall(libc::SYS_pidfd_getfd, self.pidfd.as_raw_fd(), remote_fd, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pidfd_getfd just returned this fd (CLOEXEC), owned by no
        // one else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
}

fn socket_option(socket: &OwnedFd, option: libc::c_int) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: writes at most `len` bytes into the live `value`, and its
    // length into the live `len`.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A `sockaddr_un` for `path` (the policy's bytes), if it fits.
fn unix_address(path: &[u8]) -> Option<(libc::sockaddr_storage, libc::socklen_t)> {
    // SAFETY: sockaddr_storage is plain C data, for which all zeroes is a
    // valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // SAFETY: sockaddr_storage is at least as large and as aligned as
    // sockaddr_un, which is what it is for.
    let un = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_un>() };
    if path.is_empty() || path.len() >= un.sun_path.len() || path.contains(&0) {
        return None;
    }
    un.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (slot, &byte) in un.sun_path.iter_mut().zip(path) {
        *slot = byte as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    Some((storage, len as libc::socklen_t))
}

/// A `sockaddr_in` or `sockaddr_in6` for `addr`.
fn inet_address(addr: std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain C data, for which all zeroes is a
    // valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        std::net::SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is at least as large and as aligned
            // as sockaddr_in.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is at least as large and as aligned
            // as sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_flowinfo = v6.flowinfo().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            sin6.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Connects the host's copy of the helper's socket, without ever blocking
/// the host's thread for long: the socket is made non-blocking for the
/// connect (its flags are the helper's too, so they are put back), and a
/// connection in progress on what was a blocking socket is waited for, up
/// to [`CONNECT_WAIT`], as the helper's blocking `connect` would have.
fn connect(socket: &OwnedFd, addr: &libc::sockaddr_storage, len: libc::socklen_t) -> i32 {
    let fd = socket.as_raw_fd();
    // SAFETY: F_GETFL takes no argument and touches no memory.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return -errno();
    }
    let blocking = flags & libc::O_NONBLOCK == 0;
    if blocking {
        // SAFETY: F_SETFL takes an integer.
        unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    }
    // SAFETY: reads `len` bytes of the live `addr`, which holds a complete
    // address of that length.
    let r = unsafe { libc::connect(fd, (addr as *const libc::sockaddr_storage).cast(), len) };
    let mut result = if r == 0 { 0 } else { -errno() };
    if blocking && result == -libc::EINPROGRESS {
        result = finish_connect(socket);
    }
    if blocking {
        // SAFETY: F_SETFL takes an integer: the flags as they were.
        unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
    }
    result
}

/// Waits for a connection in progress on `socket` and returns its result.
fn finish_connect(socket: &OwnedFd) -> i32 {
    let mut pfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: polls one live pollfd.
    let ready = unsafe { libc::poll(&mut pfd, 1, CONNECT_WAIT.as_millis() as libc::c_int) };
    if ready <= 0 {
        return -libc::ETIMEDOUT;
    }
    match socket_option(socket, libc::SO_ERROR) {
        Ok(0) => 0,
        Ok(e) => -e,
        Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
    }
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
