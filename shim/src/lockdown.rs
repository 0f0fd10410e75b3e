//! Locking the helper down before anything of the library's runs.

use std::io;

use ffb_policy::sandbox::{CompiledFilter, Limits};
use ffb_policy::wire::fds;

use crate::sys::check;

/// Why the helper could not lock itself down. Any failure here aborts the
/// helper: it never serves a call half-sandboxed.
pub struct LockdownError(pub String);

fn fail(what: &str, err: io::Error) -> LockdownError {
    LockdownError(format!("{what}: {err}"))
}

/// Own process group, death with the parent, fds in their fixed places, and
/// the extension's stdout/stderr sent to `output`.
pub fn take_process(parent: i32, received: [i32; 4]) -> Result<(), LockdownError> {
    unsafe {
        libc::setpgid(0, 0);
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(fail("PR_SET_PDEATHSIG", io::Error::last_os_error()));
        }
        // The parent may have died before the death signal was armed.
        if libc::getppid() != parent {
            libc::_exit(111);
        }
        // The fork server blocks SIGCHLD for its signalfd; a library may rely on it.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());

        // Move the received fds out of the way first, so no dup2 clobbers another.
        let mut high = [0i32; 4];
        for (i, fd) in received.iter().enumerate() {
            high[i] = check(libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 512) as libc::c_long)
                .map_err(|e| fail("moving fds", e))? as i32;
        }
        let targets = [fds::CONTROL, fds::WAKE, fds::ARENA, fds::OUTPUT];
        for (fd, target) in high.iter().zip(targets) {
            check(libc::dup3(*fd, target, libc::O_CLOEXEC) as libc::c_long)
                .map_err(|e| fail("placing fds", e))?;
        }
        for stream in [1, 2] {
            check(libc::dup2(fds::OUTPUT, stream) as libc::c_long)
                .map_err(|e| fail("redirecting output", e))?;
        }
        // Everything else goes: the fork server's socket, other helpers' pipes.
        check(libc::syscall(
            libc::SYS_close_range,
            fds::OUTPUT as libc::c_uint,
            libc::c_uint::MAX,
            0,
        ))
        .map_err(|e| fail("close_range", e))?;
    }
    Ok(())
}

/// rlimits: address space, no core dumps, bounded fds, CPU time.
pub fn set_limits(limits: &Limits) -> Result<(), LockdownError> {
    let set = |resource, soft: u64, hard: u64, what: &str| {
        let lim = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            return Err(fail(what, io::Error::last_os_error()));
        }
        Ok(())
    };
    let bytes = limits.memory_mb.saturating_mul(1 << 20);
    set(libc::RLIMIT_AS, bytes, bytes, "RLIMIT_AS")?;
    set(libc::RLIMIT_CORE, 0, 0, "RLIMIT_CORE")?;
    set(
        libc::RLIMIT_NOFILE,
        limits.open_files,
        limits.open_files,
        "RLIMIT_NOFILE",
    )?;
    // SIGXCPU at the soft limit (reported as resource_limit), SIGKILL one second later.
    let cpu = limits.cpu_seconds.max(1);
    set(libc::RLIMIT_CPU, cpu, cpu + 1, "RLIMIT_CPU")?;
    Ok(())
}

const SECBIT_NOROOT: u64 = 1 << 0;
const SECBIT_NOROOT_LOCKED: u64 = 1 << 1;
const SECBIT_NO_SETUID_FIXUP: u64 = 1 << 2;
const SECBIT_NO_SETUID_FIXUP_LOCKED: u64 = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: u64 = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: u64 = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: u64 = 1 << 7;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

fn capget() -> io::Result<[CapData; 2]> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    check(unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) })?;
    Ok(data)
}

/// Drops every capability from every set and locks the securebits, then sets
/// `no_new_privs`. A root helper keeps uid 0 but no power: it cannot raise its
/// rlimits, open raw sockets, or signal other users' processes.
pub fn drop_privileges() -> Result<(), LockdownError> {
    let had_caps = capget()
        .map(|d| d.iter().any(|c| c.permitted != 0 || c.effective != 0))
        .map_err(|e| fail("capget", e))?;
    unsafe {
        let bits = SECBIT_NOROOT
            | SECBIT_NOROOT_LOCKED
            | SECBIT_NO_SETUID_FIXUP
            | SECBIT_NO_SETUID_FIXUP_LOCKED
            | SECBIT_KEEP_CAPS_LOCKED
            | SECBIT_NO_CAP_AMBIENT_RAISE
            | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
        // Needs CAP_SETPCAP; a host without capabilities has nothing to lock away.
        if libc::prctl(libc::PR_SET_SECUREBITS, bits, 0, 0, 0) != 0 && had_caps {
            return Err(fail("PR_SET_SECUREBITS", io::Error::last_os_error()));
        }
        for cap in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0) == 1
                && libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0
                && had_caps
            {
                return Err(fail("PR_CAPBSET_DROP", io::Error::last_os_error()));
            }
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        let header = CapHeader {
            version: CAP_V3,
            pid: 0,
        };
        let data = [CapData::default(); 2];
        check(libc::syscall(libc::SYS_capset, &header, data.as_ptr()))
            .map_err(|e| fail("capset", e))?;
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(fail("PR_SET_NO_NEW_PRIVS", io::Error::last_os_error()));
        }
    }
    let left = capget().map_err(|e| fail("capget", e))?;
    if left
        .iter()
        .any(|c| c.effective != 0 || c.permitted != 0 || c.inheritable != 0)
    {
        return Err(LockdownError(
            "capabilities remain after dropping them".into(),
        ));
    }
    Ok(())
}

/// Installs the seccomp filter and returns its user-notification listener.
pub fn install_filter(filter: &CompiledFilter) -> Result<i32, LockdownError> {
    let mut program = filter.to_sock_filters();
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // Single-threaded here (nothing of the library has run), so no TSYNC needed.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog,
        )
    })
    .map_err(|e| fail("installing the seccomp filter", e))?;
    Ok(fd as i32)
}
