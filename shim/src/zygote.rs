//! The fork server: receives spawn requests, forks helpers, reaps them.
//!
//! It owns one socket to the host (fd 3). When the host goes away the socket
//! reads EOF and the fork server exits, which kills every helper through its
//! parent-death signal. Each helper's wait status goes back to the host on a
//! per-helper status pipe, so the host learns exactly how a helper ended
//! without being its parent.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;

use ffb_contract::artefacts::Namespace;
use ffb_contract::exit;
use ffb_contract::sys::{check, poll_readable, recv_with_fds, send_with_fds, write_all};
use ffb_contract::wire::{ExitReport, SpawnRequest, SPAWN_FDS};

use crate::shared_namespaces::SharedNamespaces;

const SERVER_FD: RawFd = 3;
const MAX_REQUEST: usize = 1 << 20;

/// Each live helper's status pipe, by pid.
type StatusPipes = HashMap<i32, OwnedFd>;

pub fn run() -> ExitCode {
    // No parent-death signal here: it would fire when the host *thread* that
    // spawned this process exits. EOF on the socket is the host's death.
    // Whatever the host let slip through without CLOEXEC is not ours to keep.
    // SAFETY: nothing in this fresh process owns an fd above 3 yet.
    unsafe { libc::syscall(libc::SYS_close_range, 4u32, libc::c_uint::MAX, 0u32) };
    // No helper may inherit the host's controlling terminal: give it up
    // here, once, without leaving the host's session.
    crate::lockdown::drop_terminal();
    // Before any other child, and before SIGCHLD is blocked for the
    // signalfd: the pid namespace's init is this process's first child.
    let shared = SharedNamespaces::create();
    let sigchld = match child_signal_fd() {
        Ok(fd) => fd,
        Err(_) => return ExitCode::from(exit::FORK_SERVER_SETUP),
    };
    let mut status_pipes = StatusPipes::new();
    let mut buf = vec![0u8; MAX_REQUEST];
    loop {
        let [request, child] = poll_readable(&[Some(SERVER_FD), Some(sigchld.as_raw_fd())], None);
        if child {
            drain_signal_fd(&sigchld);
            reap(&mut status_pipes);
        }
        if request {
            match receive(&mut buf) {
                Received::Request { len, fds } => {
                    spawn(&buf[..len], fds, &shared, &sigchld, &mut status_pipes);
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
    Request {
        len: usize,
        fds: [OwnedFd; SPAWN_FDS],
    },
    Nothing,
    HostGone,
}

fn receive(buf: &mut [u8]) -> Received {
    let message = match recv_with_fds(SERVER_FD, buf) {
        Ok(message) if message.len == 0 => return Received::HostGone,
        Ok(message) => message,
        Err(e) => {
            return match e.raw_os_error() {
                Some(libc::EAGAIN) => Received::Nothing,
                _ => Received::HostGone,
            }
        }
    };
    match <[OwnedFd; SPAWN_FDS]>::try_from(message.fds) {
        Ok(fds) if !message.truncated => Received::Request {
            len: message.len,
            fds,
        },
        // Whatever fds came are closed as they drop.
        _ => {
            reply(-libc::EINVAL, None);
            Received::Nothing
        }
    }
}

fn spawn(
    request: &[u8],
    fds: [OwnedFd; SPAWN_FDS],
    shared: &SharedNamespaces,
    sigchld: &OwnedFd,
    status_pipes: &mut StatusPipes,
) {
    let Ok(request) = SpawnRequest::decode(request) else {
        return reply(-libc::EPROTO, None);
    };
    let [control, wake, arena, output, status] = fds;
    // SAFETY: getpid has no arguments and cannot fail.
    let fork_server = unsafe { libc::getpid() };
    let (pid, in_pid_namespace) = if request.namespaces.contains(&Namespace::Pid) {
        // The policy's own pid namespace: the helper is its init, and still
        // this process's child, so reaping and the host's pidfd work
        // unchanged. A raw clone leaves glibc's cached thread id stale (it
        // affects only PI and robust mutexes in the helper's first thread).
        // SAFETY: a fork-like clone (no CLONE_VM, no new stack): the child
        // gets a copy of this single-threaded process, as with fork().
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_NEWPID | libc::SIGCHLD) as libc::c_ulong,
                0,
                0,
                0,
                0,
            ) as libc::pid_t
        };
        (pid, true)
    } else {
        // SAFETY: this process is single-threaded, so the child inherits no
        // lock held by another thread.
        shared.fork_into_pid_namespace(|| unsafe { libc::fork() })
    };
    // The helper checks its parent is still this process once its
    // parent-death signal is armed. In a pid namespace its parent is outside
    // its view (getppid() is 0 there).
    let expected_parent = if in_pid_namespace { 0 } else { fork_server };
    if pid == 0 {
        // The helper: never returns, so the owners here never close the fds
        // it takes over, nor use the ones it closes.
        // SAFETY: see above: this process never touches `sigchld` again.
        unsafe { libc::close(sigchld.as_raw_fd()) };
        if request.baseline_namespaces.contains(&Namespace::Net) {
            // Best effort, as the whole baseline: see SharedNamespaces.
            shared.join_network();
        }
        let received = [&control, &wake, &arena, &output].map(|fd| fd.as_raw_fd());
        crate::helper::helper_main(request, received, expected_parent);
    }
    drop((control, wake, arena, output));
    let mut request = request;
    for (key, value) in &mut request.env {
        // SAFETY: zeroes are valid UTF-8.
        unsafe { key.as_bytes_mut().fill(0) };
        // SAFETY: as above.
        unsafe { value.as_bytes_mut().fill(0) };
    }
    drop(request);
    if pid < 0 {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        drop(status);
        return reply(-errno, None);
    }
    // The helper cannot be reaped before this returns: only this loop reaps.
    // SAFETY: pidfd_open takes a pid and flags and touches no memory.
    let pidfd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) });
    status_pipes.insert(pid, status);
    match pidfd {
        Ok(pidfd) => {
            // SAFETY: pidfd_open just returned this fd, owned by no one else.
            let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
            reply(pid, Some(&pidfd));
        }
        Err(e) => {
            // SAFETY: kill takes a pid and a signal; `pid` is this process's
            // unreaped child, so the number cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reply(-e.raw_os_error().unwrap_or(libc::EIO), None);
        }
    }
}

/// Answers the host: a pid and its pidfd, or `-errno`. A host that is gone
/// finds out on its own; nothing is retried.
fn reply(value: i32, pidfd: Option<&OwnedFd>) {
    let fds: &[RawFd] = match pidfd {
        Some(fd) => &[fd.as_raw_fd()],
        None => &[],
    };
    let _ = send_with_fds(SERVER_FD, &value.to_ne_bytes(), fds);
}

fn child_signal_fd() -> std::io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain bits, for which all zeroes is a valid value
    // (and sigemptyset makes it the empty set by definition).
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live, writable sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: as above.
    unsafe { libc::sigaddset(&mut set, libc::SIGCHLD) };
    // SAFETY: reads the live `set`; the old mask is not asked for.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    // SAFETY: reads the live `set`; -1 asks for a new fd.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    let fd = check(fd.into())?;
    // SAFETY: signalfd just returned this fd, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn drain_signal_fd(fd: &OwnedFd) {
    let mut info = [0u8; 128];
    // SAFETY: reads at most `info.len()` bytes into the live buffer.
    while unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) } > 0 {}
}

fn reap(status_pipes: &mut StatusPipes) {
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain C data (times and counters); all zeroes is
        // a valid value, which wait4 overwrites.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 writes the status and the usage into the live locals.
        let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, &mut usage) };
        if pid <= 0 {
            return;
        }
        let micros = |t: libc::timeval| (t.tv_sec as u64) * 1_000_000 + t.tv_usec as u64;
        let report = ExitReport {
            status,
            cpu_us: micros(usage.ru_utime) + micros(usage.ru_stime),
        };
        // The pipe closes as it drops: the host reads EOF after the report.
        if let Some(fd) = status_pipes.remove(&pid) {
            let _ = write_all(fd.as_raw_fd(), &report.encode());
        }
    }
}
