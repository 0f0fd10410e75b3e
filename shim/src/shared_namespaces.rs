//! Namespaces the fork server makes once, at start, for every helper it
//! forks: a pid namespace its helpers are born into, and an empty network
//! namespace they join when their policy grants no TCP port.
//!
//! Making them once keeps their cost off every spawn: a fresh network
//! namespace costs about 0.4 ms to create (and more to tear down), joining
//! one costs a few microseconds, and being forked into an existing pid
//! namespace costs nothing. Both need `CAP_SYS_ADMIN`, so only a
//! privileged host's fork server has them; see `docs/SECURITY.md`
//! ("Namespaces").
//!
//! The pid namespace needs an init: a child of the fork server that does
//! nothing but exist (with `SIGCHLD` ignored, so nothing it inherits becomes
//! a zombie). Helpers are the fork server's children in that namespace,
//! with pids from 2, so a helper's own signals keep their usual effect
//! (an init ignores the signals it has no handler for), and no pid a
//! helper can name is a process outside the namespace.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use ffb_contract::sys::poll_readable;

/// The shared pid namespace's init's name (its `comm`).
pub const INIT_NAME: &std::ffi::CStr = c"ffb-pid-init";

/// What the fork server made; each part is `None` where the kernel refused.
pub struct SharedNamespaces {
    /// The empty network namespace, for `setns`.
    net: Option<OwnedFd>,
    /// The shared pid namespace, its init, and the fork server's own pid
    /// namespace to return to after each fork.
    pid: Option<PidNamespace>,
}

struct PidNamespace {
    shared: OwnedFd,
    own: OwnedFd,
}

impl SharedNamespaces {
    /// Makes both namespaces. Call first thing, while the fork server is
    /// single-threaded and has no other child.
    pub fn create() -> SharedNamespaces {
        SharedNamespaces {
            pid: pid_namespace(),
            net: empty_network_namespace(),
        }
    }

    /// Runs `fork` with the next child born into the shared pid namespace,
    /// if there is one; returns what `fork` returned and whether the child
    /// is in that namespace. The fork server itself never leaves its own
    /// pid namespace (`setns` on a pid namespace changes only where the
    /// next child is born), and it comes back to its own for the next
    /// fork, so a policy that asks for a pid namespace of its own can still
    /// have one.
    ///
    /// If the namespace's init is gone (only root on the host can kill it),
    /// the kernel refuses to fork into it (`ENOMEM`), and the helper is
    /// forked without it, as on a host that cannot make one.
    pub fn fork_into_pid_namespace(&self, fork: impl Fn() -> libc::pid_t) -> (libc::pid_t, bool) {
        let Some(ns) = &self.pid else {
            return (fork(), false);
        };
        // SAFETY: setns takes an fd this process owns and a flag; it
        // changes only the pid namespace of this process's next children.
        let entered = unsafe { libc::setns(ns.shared.as_raw_fd(), libc::CLONE_NEWPID) } == 0;
        let pid = fork();
        if entered && pid != 0 {
            // SAFETY: as above, back to the fork server's own namespace.
            if unsafe { libc::setns(ns.own.as_raw_fd(), libc::CLONE_NEWPID) } != 0 {
                // Every later child would be born into the shared namespace,
                // where a policy's own pid namespace cannot be made.
                std::process::abort();
            }
        }
        if entered && pid < 0 {
            return (fork(), false);
        }
        (pid, entered)
    }

    /// In a freshly forked helper: joins the empty network namespace, if
    /// there is one. Returns whether it did.
    pub fn join_network(&self) -> bool {
        let Some(net) = &self.net else {
            return false;
        };
        // SAFETY: setns takes an fd this process owns and a flag; this
        // process is single-threaded, and a failed setns changes nothing.
        unsafe { libc::setns(net.as_raw_fd(), libc::CLONE_NEWNET) == 0 }
    }
}

/// Clones the init of a new pid namespace and keeps that namespace by an
/// fd, beside one to the fork server's own.
fn pid_namespace() -> Option<PidNamespace> {
    let own = open_namespace(c"/proc/self/ns/pid")?;
    // The init's parent-death signal is armed only after the clone: a fork
    // server that dies in between would leave it running forever. It checks
    // this pidfd of the fork server once the signal is armed.
    // SAFETY: getpid has no arguments and cannot fail.
    let me = unsafe { libc::getpid() };
    // SAFETY: pidfd_open takes a pid and flags and touches no memory.
    let server = unsafe { libc::syscall(libc::SYS_pidfd_open, me, 0) };
    if server < 0 {
        return None;
    }
    // SAFETY: pidfd_open just returned this fd, owned by no one else.
    let server = unsafe { OwnedFd::from_raw_fd(server as RawFd) };
    // SAFETY: a fork-like clone (no CLONE_VM, no new stack): the child gets
    // a copy of this single-threaded process, as with fork().
    let init = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWPID | libc::SIGCHLD) as libc::c_ulong,
            0,
            0,
            0,
            0,
        )
    } as libc::pid_t;
    if init == 0 {
        be_init(&server);
    }
    drop(server);
    if init < 0 {
        return None;
    }
    let path = format!("/proc/{init}/ns/pid\0");
    let path = std::ffi::CStr::from_bytes_with_nul(path.as_bytes()).expect("one NUL, at the end");
    let Some(shared) = open_namespace(path) else {
        // SAFETY: kill takes a pid and a signal; `init` is this process's
        // unreaped child, so the number cannot have been reused.
        unsafe { libc::kill(init, libc::SIGKILL) };
        return None;
    };
    Some(PidNamespace { shared, own })
}

/// The pid namespace's init: keeps the namespace alive, reaps whatever is
/// ever reparented to it (through `SIGCHLD` ignored), and dies with the
/// fork server, whose pidfd is `server`.
fn be_init(server: &OwnedFd) -> ! {
    // Named so that whoever lists the fork server's children can tell it
    // from a helper.
    // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, INIT_NAME.as_ptr()) };
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches
    // no memory.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    // A fork server that died before the signal was armed sent none: its
    // pidfd is readable then (getppid() cannot tell, it is 0 in here).
    if poll_readable(&[Some(server.as_raw_fd())], Some(std::time::Instant::now()))[0] {
        // SAFETY: _exit ends this process at once; nothing is left to run.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: nothing in this process uses any fd again.
    unsafe { libc::syscall(libc::SYS_close_range, 0u32, libc::c_uint::MAX, 0u32) };
    // SAFETY: SIG_IGN installs no handler, so no code of this process runs
    // on a signal.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    loop {
        // SAFETY: pause takes no arguments and touches no memory.
        unsafe { libc::pause() };
    }
}

/// An empty network namespace: made by unsharing this process's own, kept
/// by an fd, then left again for the original.
fn empty_network_namespace() -> Option<OwnedFd> {
    let original = open_namespace(c"/proc/self/ns/net")?;
    // SAFETY: unshare takes flags only; this process is single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return None;
    }
    let empty = open_namespace(c"/proc/self/ns/net");
    // SAFETY: setns takes an fd this process owns and a flag.
    if unsafe { libc::setns(original.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        // Stuck in the empty namespace: no helper would reach a granted
        // port.
        std::process::abort();
    }
    empty
}

fn open_namespace(path: &std::ffi::CStr) -> Option<OwnedFd> {
    // SAFETY: a NUL-terminated path; open reads only it.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    // SAFETY: open just returned this fd, owned by no one else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}
