//! The fork server: receives spawn requests, forks helpers, reaps them.
//!
//! It owns one socket to the host (fd 3). When the host goes away the socket
//! reads EOF and the fork server exits, which kills every helper through its
//! parent-death signal. Each helper's wait status goes back to the host on a
//! per-helper status pipe, so the host learns exactly how a helper ended
//! without being its parent.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::process::ExitCode;

use ffb_contract::artefacts::Namespace;
use ffb_contract::wire::{SpawnRequest, SPAWN_FDS, WIRE_VERSION};

use crate::sys::check;

const SERVER_FD: RawFd = 3;
const MAX_REQUEST: usize = 1 << 20;

pub fn run() -> ExitCode {
    // No parent-death signal here: it would fire when the host *thread* that
    // spawned this process exits. EOF on the socket is the host's death.
    // Whatever the host let slip through without CLOEXEC is not ours to keep.
    unsafe { libc::syscall(libc::SYS_close_range, 4u32, libc::c_uint::MAX, 0u32) };
    let sigchld = match child_signal_fd() {
        Ok(fd) => fd,
        Err(_) => return ExitCode::from(3),
    };
    let mut status_pipes: HashMap<i32, RawFd> = HashMap::new();
    let mut buf = vec![0u8; MAX_REQUEST];
    loop {
        let mut polls = [
            libc::pollfd {
                fd: SERVER_FD,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sigchld,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let n = unsafe { libc::poll(polls.as_mut_ptr(), 2, -1) };
        if n < 0 {
            continue;
        }
        if polls[1].revents != 0 {
            drain_signal_fd(sigchld);
            reap(&mut status_pipes);
        }
        if polls[0].revents != 0 {
            match receive(&mut buf) {
                Received::Request { len, fds } => {
                    spawn(&buf[..len], fds, sigchld, &mut status_pipes);
                    // Every later helper is a copy of this process: leave no
                    // earlier request (paths, environment) for it to read.
                    buf[..len].fill(0);
                }
                Received::Nothing => {}
                Received::HostGone => return ExitCode::SUCCESS,
            }
        }
    }
}

enum Received {
    Request { len: usize, fds: [RawFd; SPAWN_FDS] },
    Nothing,
    HostGone,
}

fn receive(buf: &mut [u8]) -> Received {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cmsg = [0u64; 16];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg);
    let n = unsafe { libc::recvmsg(SERVER_FD, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n == 0 {
        return Received::HostGone;
    }
    if n < 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EINTR) | Some(libc::EAGAIN) => Received::Nothing,
            _ => Received::HostGone,
        };
    }
    let mut fds: Vec<RawFd> = Vec::new();
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const RawFd;
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(std::ptr::read_unaligned(data.add(i)));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    match <[RawFd; SPAWN_FDS]>::try_from(fds.as_slice()) {
        Ok(fds) if msg.msg_flags & libc::MSG_TRUNC == 0 => Received::Request {
            len: n as usize,
            fds,
        },
        _ => {
            for fd in fds {
                unsafe { libc::close(fd) };
            }
            reply(-libc::EINVAL, None);
            Received::Nothing
        }
    }
}

fn spawn(
    request: &[u8],
    fds: [RawFd; SPAWN_FDS],
    sigchld: RawFd,
    status_pipes: &mut HashMap<i32, RawFd>,
) {
    let close_all = |fds: &[RawFd]| {
        fds.iter().for_each(|&fd| unsafe {
            libc::close(fd);
        })
    };
    let request = match serde_json::from_slice::<SpawnRequest>(request) {
        Ok(r) if r.wire_version == WIRE_VERSION => r,
        _ => {
            close_all(&fds);
            return reply(-libc::EPROTO, None);
        }
    };
    let [control, wake, arena, output, status] = fds;
    // The helper checks its parent is still this process once its
    // parent-death signal is armed. In a pid namespace its parent is outside
    // its view (getppid() is 0 there).
    let expected_parent = if request.namespaces.contains(&Namespace::Pid) {
        0
    } else {
        unsafe { libc::getpid() }
    };
    let pid = if request.namespaces.contains(&Namespace::Pid) {
        // The helper is the init of a new pid namespace, and still this
        // process's child, so reaping and the host's pidfd work unchanged.
        // A raw clone leaves glibc's cached thread id stale (it affects only
        // PI and robust mutexes in the helper's first thread).
        unsafe {
            libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_NEWPID | libc::SIGCHLD) as libc::c_ulong,
                0,
                0,
                0,
                0,
            ) as libc::pid_t
        }
    } else {
        unsafe { libc::fork() }
    };
    if pid == 0 {
        // The helper: never returns.
        unsafe { libc::close(sigchld) };
        crate::serve::helper_main(request, [control, wake, arena, output], expected_parent);
    }
    close_all(&[control, wake, arena, output]);
    let mut request = request;
    for (key, value) in &mut request.env {
        // SAFETY: zeroes are valid UTF-8.
        unsafe {
            key.as_bytes_mut().fill(0);
            value.as_bytes_mut().fill(0);
        }
    }
    drop(request);
    if pid < 0 {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        close_all(&[status]);
        return reply(-errno, None);
    }
    // The helper cannot be reaped before this returns: only this loop reaps.
    let pidfd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) });
    status_pipes.insert(pid, status);
    match pidfd {
        Ok(pidfd) => {
            reply(pid, Some(pidfd as RawFd));
            unsafe { libc::close(pidfd as RawFd) };
        }
        Err(e) => {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reply(-e.raw_os_error().unwrap_or(libc::EIO), None);
        }
    }
}

fn reply(value: i32, fd: Option<RawFd>) {
    let bytes = value.to_ne_bytes();
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut _,
        iov_len: bytes.len(),
    };
    let mut cmsg = [0u64; 4];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        unsafe {
            msg.msg_control = cmsg.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd);
        }
    }
    unsafe { libc::sendmsg(SERVER_FD, &msg, libc::MSG_NOSIGNAL) };
}

fn child_signal_fd() -> std::io::Result<RawFd> {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        check(libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) as libc::c_long)
            .map(|fd| fd as RawFd)
    }
}

fn drain_signal_fd(fd: RawFd) {
    let mut info = [0u8; 128];
    while unsafe { libc::read(fd, info.as_mut_ptr().cast(), info.len()) } > 0 {}
}

fn reap(status_pipes: &mut HashMap<i32, RawFd>) {
    loop {
        let mut status = 0;
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        if let Some(fd) = status_pipes.remove(&pid) {
            let _ = crate::sys::write_all(fd, &status.to_ne_bytes());
            unsafe { libc::close(fd) };
        }
    }
}
