//! Locking the helper down before anything of the library's runs.

use std::io;

use ffb_contract::artefacts::{CompiledFilter, Identity, LandlockSpec, Limits, Namespace};
use ffb_contract::wire::fds;
use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, Ruleset,
    RulesetAttr, RulesetCreatedAttr, Scope, ABI,
};

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
        // Its own process group, so the host can kill it with everything in
        // the group. Not a session of its own: setsid() would also put it in
        // its own scheduler autogroup, which makes the host/helper handoff
        // bimodal (a third of runs at 3x the latency). The host checks the
        // helper still leads its group before it lets kill(0, ...) through.
        libc::setpgid(0, 0);
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(fail("PR_SET_PDEATHSIG", io::Error::last_os_error()));
        }
        // The parent may have died before the death signal was armed.
        if libc::getppid() != parent {
            libc::_exit(111);
        }
        // The fork server blocks SIGCHLD for its signalfd, and the Rust runtime
        // catches SIGSEGV/SIGBUS and ignores SIGPIPE: the library gets a
        // process with every signal at its default, as a C program would.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let disable = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        libc::sigaltstack(&disable, std::ptr::null_mut());

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

/// Sets `no_new_privs`: nothing the helper does can gain privileges (and
/// Landlock and seccomp may be applied without CAP_SYS_ADMIN).
pub fn set_no_new_privs() -> Result<(), LockdownError> {
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(fail("PR_SET_NO_NEW_PRIVS", io::Error::last_os_error()));
    }
    Ok(())
}

/// Unshares the requested namespaces (except pid, which the fork server
/// creates with the helper itself). A user namespace maps the helper's uid
/// and gid to themselves, so files keep their owners.
pub fn enter_namespaces(namespaces: &[Namespace]) -> Result<(), LockdownError> {
    let mut flags = 0;
    for ns in namespaces {
        flags |= match ns {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Pid => 0,
        };
    }
    if flags == 0 {
        return Ok(());
    }
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(fail("unshare", io::Error::last_os_error()));
    }
    if flags & libc::CLONE_NEWUSER != 0 {
        let write =
            |path: &str, text: String| std::fs::write(path, text).map_err(|e| fail(path, e));
        write("/proc/self/setgroups", "deny".into())?;
        write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
        write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    }
    Ok(())
}

/// Drops every capability from every set and locks the securebits (after
/// [`set_no_new_privs`]). A root helper keeps uid 0 but no power: it cannot raise its
/// rlimits, open raw sockets, or signal other users' processes. With
/// `run_as`, the helper switches to that user and group in between (while it
/// still may), with no supplementary groups.
pub fn drop_privileges(run_as: Option<&Identity>, threads: u64) -> Result<(), LockdownError> {
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
        if let Some(id) = run_as {
            // SECBIT_NO_SETUID_FIXUP is set, so the switch keeps the caps that
            // the capset below then drops; the order makes the switch possible.
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(id.gid, id.gid, id.gid) != 0
                || libc::setresuid(id.uid, id.uid, id.uid) != 0
            {
                return Err(fail(
                    &format!("switching to user '{}' ({}:{})", id.name, id.uid, id.gid),
                    io::Error::last_os_error(),
                ));
            }
            // Threads are processes of this user: a dedicated user makes the
            // thread limit enforceable.
            let lim = libc::rlimit {
                rlim_cur: threads,
                rlim_max: threads,
            };
            if libc::setrlimit(libc::RLIMIT_NPROC, &lim) != 0 {
                return Err(fail("RLIMIT_NPROC", io::Error::last_os_error()));
            }
        }
        let header = CapHeader {
            version: CAP_V3,
            pid: 0,
        };
        let data = [CapData::default(); 2];
        check(libc::syscall(libc::SYS_capset, &header, data.as_ptr()))
            .map_err(|e| fail("capset", e))?;
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

/// Applies Landlock: filesystem rules when the spec has them, TCP rules when
/// it has them (for a confining policy the host always sends both). Applied
/// while the helper is still single-threaded, so every thread the library
/// ever starts inherits the domain, and before the user switch, so every
/// listed path can still be opened to add its rule.
pub fn apply_landlock(spec: &LandlockSpec) -> Result<(), LockdownError> {
    if spec.fs.is_none() && spec.net.is_none() {
        return Ok(());
    }
    let landlock =
        |what: &str, e: &dyn std::fmt::Display| LockdownError(format!("Landlock {what}: {e}"));
    let abi = ABI::V5;
    let level = if spec.required {
        CompatLevel::HardRequirement
    } else {
        CompatLevel::BestEffort
    };
    // Signals and abstract unix sockets stay inside the helper's own domain
    // (ABI 6): defense in depth behind the host's signal supervision.
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .scope(Scope::Signal | Scope::AbstractUnixSocket)
        .map_err(|e| landlock("scopes", &e))?
        .set_compatibility(level);
    if spec.fs.is_some() {
        ruleset = ruleset
            .handle_access(AccessFs::from_all(abi))
            .map_err(|e| landlock("filesystem", &e))?;
    }
    if spec.net.is_some() {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(ABI::V4))
            .map_err(|e| landlock("network (needs ABI 4)", &e))?;
    }
    let mut created = ruleset.create().map_err(|e| landlock("create", &e))?;
    if let Some(fs) = &spec.fs {
        for path in fs.read.iter().chain(&fs.write) {
            if !path.exists() {
                return Err(LockdownError(format!(
                    "Landlock: '{}' does not exist",
                    path.display()
                )));
            }
        }
        created = created
            .add_rules(path_beneath_rules(&fs.read, AccessFs::from_read(abi)))
            .map_err(|e| landlock("read rule", &e))?
            .add_rules(path_beneath_rules(&fs.write, AccessFs::from_all(abi)))
            .map_err(|e| landlock("write rule", &e))?;
    }
    if let Some(net) = &spec.net {
        for &port in &net.connect_tcp {
            created = created
                .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
                .map_err(|e| landlock("connect rule", &e))?;
        }
        for &port in &net.bind_tcp {
            created = created
                .add_rule(NetPort::new(port, AccessNet::BindTcp))
                .map_err(|e| landlock("bind rule", &e))?;
        }
    }
    created
        .restrict_self()
        .map_err(|e| landlock("restrict_self", &e))?;
    Ok(())
}
