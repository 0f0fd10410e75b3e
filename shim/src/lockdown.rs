//! Locking the helper down before anything of the library's runs.

use std::io;

use ffb_contract::artefacts::{CompiledFilter, Identity, LandlockSpec, Limits, Namespace};
use ffb_contract::fds;
use ffb_contract::wire::OwnIdentity;
use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, Ruleset,
    RulesetAttr, RulesetCreatedAttr, Scope, ABI,
};

use ffb_contract::exit;
use ffb_contract::sys::check;

use crate::exit_now;

/// Why the helper could not lock itself down. Any failure here aborts the
/// helper: it never serves a call half-sandboxed.
pub struct LockdownError(pub String);

fn fail(what: &str, err: io::Error) -> LockdownError {
    LockdownError(format!("{what}: {err}"))
}

/// Own process group, death with the parent, fds in their fixed places, and
/// the extension's stdout/stderr sent to `output`.
pub fn take_process(parent: i32, received: [i32; 4]) -> Result<(), LockdownError> {
    // Its own process group, so the host can kill it with everything in
    // the group. Not a session of its own: setsid() would also put it in
    // its own scheduler autogroup, which makes the host/helper handoff
    // bimodal (a third of runs at 3x the latency). The host checks the
    // helper still leads its group before it lets kill(0, ...) through.
    // SAFETY: setpgid(0, 0) moves only this process, and touches no memory.
    unsafe { libc::setpgid(0, 0) };
    drop_terminal();
    if prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
        return Err(fail("PR_SET_PDEATHSIG", io::Error::last_os_error()));
    }
    // The parent may have died before the death signal was armed.
    // SAFETY: getppid has no arguments and cannot fail.
    if unsafe { libc::getppid() } != parent {
        exit_now(exit::PARENT_GONE);
    }
    reset_signals();
    place_fds(received)
}

/// Gives up the controlling terminal, if the process has one, without
/// leaving the host's session (see [`take_process`] on why not `setsid`):
/// `TIOCNOTTY` from a process that does not lead its session detaches only
/// that process, and a process that is not a session leader can never get
/// a controlling terminal again. Without one, `/dev/tty` cannot be opened
/// (`ENXIO`), and `TIOCSTI` on any terminal fd is refused (`EPERM`: it
/// needs the terminal to be the caller's own, or `CAP_SYS_ADMIN`). The fork
/// server does this once at start, so helpers never inherit a terminal;
/// each helper checks again, for one syscall.
pub fn drop_terminal() {
    // SAFETY: a constant, NUL-terminated path; open reads only it.
    let fd = unsafe {
        libc::open(
            c"/dev/tty".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if fd >= 0 {
        // SAFETY: TIOCNOTTY takes no argument and touches no memory.
        unsafe { libc::ioctl(fd, libc::TIOCNOTTY) };
        // SAFETY: `fd` was opened just above and is used by nothing else.
        unsafe { libc::close(fd) };
    }
}

/// The fork server blocks SIGCHLD for its signalfd, and the Rust runtime
/// catches SIGSEGV/SIGBUS and ignores SIGPIPE: the library gets a process
/// with every signal at its default, as a C program would.
fn reset_signals() {
    // SAFETY: sigset_t is plain bits, for which all zeroes is a valid value
    // (and sigemptyset makes it the empty set by definition).
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live, writable sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: reads the live `set`; the old mask is not asked for.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
    for sig in 1..libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: SIG_DFL installs no handler, so no code of this
            // process runs on a signal any more: nothing can be reentered.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
    let disable = libc::stack_t {
        ss_sp: std::ptr::null_mut(),
        ss_flags: libc::SS_DISABLE,
        ss_size: 0,
    };
    // SAFETY: reads the live `disable`; no handler uses the old stack any
    // more (all are SIG_DFL now), and the old one is not asked for.
    unsafe { libc::sigaltstack(&disable, std::ptr::null_mut()) };
}

/// Puts the received fds at their [`fds`] numbers, the output on 1 and 2,
/// and closes every other fd.
fn place_fds(received: [i32; 4]) -> Result<(), LockdownError> {
    // Move the received fds out of the way first, so no dup2 clobbers another.
    let mut high = [0i32; 4];
    for (i, fd) in received.iter().enumerate() {
        // SAFETY: F_DUPFD_CLOEXEC makes a new fd and touches no memory.
        let dup = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 512) };
        high[i] = check(dup.into()).map_err(|e| fail("moving fds", e))? as i32;
    }
    let targets = [fds::CONTROL, fds::WAKE, fds::ARENA, fds::OUTPUT];
    for (fd, target) in high.iter().zip(targets) {
        // SAFETY: replaces whatever `target` was; every fd this helper needs
        // was copied above 512 first, and what the fork server's Rust code
        // held at that number is never used in this process again.
        let placed = unsafe { libc::dup3(*fd, target, libc::O_CLOEXEC) };
        check(placed.into()).map_err(|e| fail("placing fds", e))?;
    }
    for stream in [1, 2] {
        // SAFETY: as above, for the standard streams (which were /dev/null).
        let placed = unsafe { libc::dup2(fds::OUTPUT, stream) };
        check(placed.into()).map_err(|e| fail("redirecting output", e))?;
    }
    // Everything else goes: the fork server's socket, other helpers' pipes.
    // SAFETY: closes fds this process will never use again: the fork
    // server's, whose owners (on the fork server's stack) are never dropped
    // here since helper_main does not return, and the copies just placed.
    let closed = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            fds::OUTPUT as libc::c_uint,
            libc::c_uint::MAX,
            0,
        )
    };
    check(closed).map_err(|e| fail("close_range", e))?;
    Ok(())
}

/// `prctl` with integer arguments. Only options that take plain integers
/// (no pointers) are passed here, so the kernel reads no memory of ours.
fn prctl(option: libc::c_int, arg: libc::c_ulong) -> libc::c_int {
    // SAFETY: see above: every caller passes an integer-only option.
    unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    }
}

/// rlimits: address space, no core dumps, bounded fds, CPU time.
pub fn set_limits(limits: &Limits) -> Result<(), LockdownError> {
    let bytes = limits.memory_mb.saturating_mul(1 << 20);
    set_rlimit(libc::RLIMIT_AS, bytes, bytes, "RLIMIT_AS")?;
    set_rlimit(libc::RLIMIT_CORE, 0, 0, "RLIMIT_CORE")?;
    set_rlimit(
        libc::RLIMIT_NOFILE,
        limits.open_files,
        limits.open_files,
        "RLIMIT_NOFILE",
    )?;
    // SIGXCPU at the soft limit (reported as resource_limit), SIGKILL one second later.
    let cpu = limits.cpu_seconds.max(1);
    set_rlimit(libc::RLIMIT_CPU, cpu, cpu + 1, "RLIMIT_CPU")?;
    // Pending signals are counted per user: a cap of its own keeps one helper
    // from using up the quota of every process of its uid.
    set_rlimit(
        libc::RLIMIT_SIGPENDING,
        limits.pending_signals,
        limits.pending_signals,
        "RLIMIT_SIGPENDING",
    )?;
    Ok(())
}

/// Makes the helper non-dumpable: its `/proc/PID` files belong to root and
/// its memory can be opened (`/proc/PID/mem`, `process_vm_*`, `ptrace`) only
/// with `CAP_SYS_PTRACE`, which other helpers never have. Called after
/// everything that writes `/proc/self` (the user namespace's maps) and after
/// the user switch (which resets the flag to `suid_dumpable`).
pub fn set_non_dumpable() -> Result<(), LockdownError> {
    if prctl(libc::PR_SET_DUMPABLE, 0) != 0 {
        return Err(fail("PR_SET_DUMPABLE", io::Error::last_os_error()));
    }
    Ok(())
}

fn set_rlimit(
    resource: libc::__rlimit_resource_t,
    soft: u64,
    hard: u64,
    what: &str,
) -> Result<(), LockdownError> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the live `lim` and nothing else.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(fail(what, io::Error::last_os_error()));
    }
    Ok(())
}

const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;

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
    // SAFETY: a version-3 header asks for two CapData records, and `data`
    // holds two; capget writes only those and the header's version.
    check(unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) })?;
    Ok(data)
}

/// Sets `no_new_privs`: nothing the helper does can gain privileges (and
/// Landlock and seccomp may be applied without CAP_SYS_ADMIN).
pub fn set_no_new_privs() -> Result<(), LockdownError> {
    if prctl(libc::PR_SET_NO_NEW_PRIVS, 1) != 0 {
        return Err(fail("PR_SET_NO_NEW_PRIVS", io::Error::last_os_error()));
    }
    Ok(())
}

/// Unshares the policy's namespaces (except pid, which the fork server
/// creates with the helper itself) together with the host's `baseline`
/// ones. A user namespace maps the helper's uid and gid to themselves, so
/// files keep their owners. In a new mount namespace, `/proc` (with
/// `/proc/sys`) is read-only.
///
/// The baseline is defence in depth the policy did not ask for: where the
/// kernel refuses it (an unprivileged host on a system that disables user
/// namespaces), the helper enters the policy's namespaces alone, as it would
/// have without the baseline. The policy's own are a hard requirement. The
/// baseline's pid and network namespaces are the fork server's shared ones
/// ([`crate::shared_namespaces`]), entered before this runs.
pub fn enter_namespaces(
    namespaces: &[Namespace],
    baseline: &[Namespace],
) -> Result<(), LockdownError> {
    let required = namespace_flags(namespaces, false);
    let all = required | namespace_flags(baseline, true);
    // Read before the unshare: in a new user namespace with no map yet they
    // read as the overflow ids.
    // SAFETY: getuid has no arguments and cannot fail.
    let uid = unsafe { libc::getuid() };
    // SAFETY: getgid has no arguments and cannot fail.
    let gid = unsafe { libc::getgid() };
    // SAFETY: unshare takes flags only; this process is single-threaded,
    // as CLONE_NEWUSER requires. A failed unshare changes nothing.
    if all != required && unsafe { libc::unshare(all) } == 0 {
        map_user(all, uid, gid)?;
        return match read_only_proc(all) {
            // The baseline's mount namespace is best effort too.
            Err(_) if required & libc::CLONE_NEWNS == 0 => Ok(()),
            done => done,
        };
    }
    if required == 0 {
        return Ok(());
    }
    // SAFETY: as above.
    if unsafe { libc::unshare(required) } != 0 {
        return Err(fail("unshare", io::Error::last_os_error()));
    }
    map_user(required, uid, gid)?;
    read_only_proc(required)
}

/// The unshare flags for `namespaces`. Pid namespaces are made by the fork
/// server, and so is the baseline's empty network namespace.
fn namespace_flags(namespaces: &[Namespace], baseline: bool) -> libc::c_int {
    namespaces
        .iter()
        .map(|ns| match ns {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Net if baseline => 0,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Pid => 0,
        })
        .fold(0, |flags, flag| flags | flag)
}

/// In a new mount namespace: stops mounts propagating back to the host,
/// then puts a read-only bind of `/proc` over it. Nothing under `/proc`
/// can then be opened for writing: not `/proc/sys/kernel/core_pattern`,
/// not `/proc/PID/mem` of another process, not `/proc/sysrq-trigger`.
/// The bind keeps the flags the original mount has (a user namespace may
/// not clear them), and so do the mounts under `/proc`, made read-only
/// one by one.
fn read_only_proc(flags: libc::c_int) -> Result<(), LockdownError> {
    if flags & libc::CLONE_NEWNS == 0 {
        return Ok(());
    }
    let mount = |source: Option<&std::ffi::CStr>, target: &std::ffi::CStr, flags: libc::c_ulong| {
        // SAFETY: every pointer is NULL or a NUL-terminated string that
        // outlives the call; no filesystem type or data is passed.
        let r = unsafe {
            libc::mount(
                source.map_or(std::ptr::null(), |s| s.as_ptr()),
                target.as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(fail(
                &format!("mount {}", target.to_string_lossy()),
                io::Error::last_os_error(),
            ))
        }
    };
    mount(None, c"/", libc::MS_REC | libc::MS_PRIVATE)?;
    let submounts = proc_submounts();
    mount(Some(c"/proc"), c"/proc", libc::MS_BIND | libc::MS_REC)?;
    mount(None, c"/proc", read_only_remount(c"/proc"))?;
    for target in submounts {
        mount(None, &target, read_only_remount(&target))?;
    }
    Ok(())
}

/// Remount flags that make the mount at `path` read-only and keep every
/// flag it has now.
fn read_only_remount(path: &std::ffi::CStr) -> libc::c_ulong {
    // SAFETY: statvfs is plain C data (numbers); all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a live, writable statvfs.
    let known = unsafe { libc::statvfs(path.as_ptr(), &mut st) } == 0;
    let mut flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
    if known {
        for (st_flag, ms_flag) in [
            (libc::ST_NOSUID, libc::MS_NOSUID),
            (libc::ST_NODEV, libc::MS_NODEV),
            (libc::ST_NOEXEC, libc::MS_NOEXEC),
            (libc::ST_NOATIME, libc::MS_NOATIME),
            (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
            (libc::ST_RELATIME, libc::MS_RELATIME),
        ] {
            if st.f_flag & st_flag != 0 {
                flags |= ms_flag;
            }
        }
    }
    flags
}

/// The mount points strictly under `/proc` (`binfmt_misc`, say), deepest
/// last, from this process's mount table.
fn proc_submounts() -> Vec<std::ffi::CString> {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| point.starts_with("/proc/"))
        .filter_map(|point| std::ffi::CString::new(point).ok())
        .collect()
}

/// After an unshare with `flags`: in a new user namespace, maps the
/// helper's uid and gid (as they were before the unshare) to themselves.
fn map_user(flags: libc::c_int, uid: u32, gid: u32) -> Result<(), LockdownError> {
    if flags & libc::CLONE_NEWUSER == 0 {
        return Ok(());
    }
    let write = |path: &str, text: String| std::fs::write(path, text).map_err(|e| fail(path, e));
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    Ok(())
}

/// Who the helper becomes in [`drop_privileges`].
pub enum Become<'a> {
    /// Stay who the fork server is (an unprivileged host's uid).
    Same,
    /// The policy's `run_as`.
    RunAs(&'a Identity),
    /// A root host's helper: `base + pid`, with the DAC capabilities it keeps.
    Own(&'a OwnIdentity, u32),
    /// A root host's helper that entered a user namespace: it switched to
    /// `base + pid` before ([`switch_before_user_namespace`]), so it keeps
    /// nothing a capability of the host's namespace would add. `dumpable`
    /// is what the switch left `PR_GET_DUMPABLE` at, restored here.
    OwnInUserNamespace { dumpable: libc::c_ulong },
}

/// The helper's own uid and gid: `base + pid`.
fn own_identity(own: &OwnIdentity, pid: u32) -> Result<Identity, LockdownError> {
    let id = own.base.checked_add(pid).filter(|id| *id < u32::MAX - 1);
    let id = id.ok_or_else(|| LockdownError(format!("no own uid for pid {pid}")))?;
    Ok(Identity {
        name: format!("ffb helper {pid}"),
        uid: id,
        gid: id,
    })
}

/// A root host's helper that enters a user namespace becomes its own uid
/// and gid first, while it still may (`CAP_SETUID` in the host's
/// namespace): it then creates the namespace as that user and maps only
/// that uid to itself ([`enter_namespaces`]). Switching afterwards would be
/// impossible (the namespace maps only the uid it was made with), and
/// staying uid 0 in it would keep the kernel's uid 0, which owns every
/// root-owned file.
///
/// Capabilities go with the switch, and nothing needs them before the
/// namespace gives the helper a full set of its own, valid only inside it:
/// Landlock's paths are then opened as this uid.
///
/// The switch makes the process non-dumpable, which gives its `/proc/self`
/// files to the host's root: it could not write its own `uid_map`. It is
/// dumpable until [`drop_privileges`] puts back what the switch left; no
/// code of the library runs in between.
pub fn switch_before_user_namespace(
    own: &OwnIdentity,
    pid: u32,
) -> Result<Become<'static>, LockdownError> {
    switch_user(&own_identity(own, pid)?)?;
    let dumpable = prctl(libc::PR_GET_DUMPABLE, 0);
    if dumpable < 0 || prctl(libc::PR_SET_DUMPABLE, 1) != 0 {
        return Err(fail("PR_SET_DUMPABLE", io::Error::last_os_error()));
    }
    Ok(Become::OwnInUserNamespace {
        dumpable: dumpable as libc::c_ulong,
    })
}

/// The helper's pid as the host's pid namespace counts it, for its own uid:
/// in a pid namespace (the fork server's shared one, or the policy's own,
/// where it is 1 to itself) `getpid()` counts in that namespace, but
/// `/proc` is still the host's procfs, whose `self` names the real pid.
/// Read before Landlock, which leaves `/proc` unreadable.
pub fn host_pid() -> Result<u32, LockdownError> {
    std::fs::read_link("/proc/self")
        .map_err(|e| fail("reading /proc/self", e))?
        .to_str()
        .and_then(|pid| pid.parse().ok())
        .ok_or_else(|| LockdownError("/proc/self is not a pid".into()))
}

/// `CAP_DAC_OVERRIDE` and `CAP_DAC_READ_SEARCH`, the only capabilities a
/// helper may keep (a root host's helper with its own uid, bounded by
/// Landlock); never `CAP_FOWNER` or `CAP_CHOWN`, so metadata of files it does
/// not own stays out of reach.
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;

/// Drops every capability from every set and locks the securebits (after
/// [`set_no_new_privs`]). A root helper keeps uid 0 but no power: it cannot raise its
/// rlimits, open raw sockets, or signal other users' processes. With
/// `run_as`, the helper switches to that user and group in between (while it
/// still may), with no supplementary groups; a root host's helper switches
/// to its own uid and gid ([`Become::Own`]) the same way, and keeps the DAC
/// capabilities its grants need, in the effective and permitted sets only.
pub fn drop_privileges(who: Become<'_>, threads: u64, parent: i32) -> Result<(), LockdownError> {
    let had_caps = capget()
        .map(|d| d.iter().any(|c| c.permitted != 0 || c.effective != 0))
        .map_err(|e| fail("capget", e))?;
    let bits = SECBIT_NOROOT
        | SECBIT_NOROOT_LOCKED
        | SECBIT_NO_SETUID_FIXUP
        | SECBIT_NO_SETUID_FIXUP_LOCKED
        | SECBIT_KEEP_CAPS_LOCKED
        | SECBIT_NO_CAP_AMBIENT_RAISE
        | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    // Needs CAP_SETPCAP; a host without capabilities has nothing to lock away.
    if prctl(libc::PR_SET_SECUREBITS, bits) != 0 && had_caps {
        return Err(fail("PR_SET_SECUREBITS", io::Error::last_os_error()));
    }
    for cap in 0..64 {
        if prctl(libc::PR_CAPBSET_READ, cap) == 1
            && prctl(libc::PR_CAPBSET_DROP, cap) != 0
            && had_caps
        {
            return Err(fail("PR_CAPBSET_DROP", io::Error::last_os_error()));
        }
    }
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
    );
    let mut keep = 0u32;
    let switched = match who {
        Become::Same => false,
        Become::RunAs(id) => {
            switch_user(id)?;
            true
        }
        // Switched already; the uid change cleared the parent-death signal.
        Become::OwnInUserNamespace { dumpable } => {
            if prctl(libc::PR_SET_DUMPABLE, dumpable) != 0 {
                return Err(fail("PR_SET_DUMPABLE", io::Error::last_os_error()));
            }
            true
        }
        Become::Own(own, pid) => {
            switch_user(&own_identity(own, pid)?)?;
            // Reads: a policy's read grant (a 0700 temp dir, say) or a
            // library in a directory only root may search would be
            // unreachable for a uid that owns nothing. Landlock, applied
            // above as root, still bounds what can be opened at all, so the
            // capability adds only modes, never paths.
            if own.dac_read {
                keep |= 1 << CAP_DAC_READ_SEARCH;
            }
            // Writes: a write grant names root-owned directories; Landlock
            // bounds where. Without CAP_FOWNER/CAP_CHOWN, chmod, chown and
            // explicit timestamps on files this uid does not own fail.
            if own.dac_write {
                keep |= 1 << CAP_DAC_OVERRIDE;
            }
            true
        }
    };
    if switched {
        // Threads are processes of this user: a dedicated user makes the
        // thread limit enforceable.
        set_rlimit(libc::RLIMIT_NPROC, threads, threads, "RLIMIT_NPROC")?;
        // A change of uid clears the parent-death signal (commit_creds):
        // arm it again, and check the parent did not die in between.
        if prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
            return Err(fail("PR_SET_PDEATHSIG", io::Error::last_os_error()));
        }
        // SAFETY: getppid has no arguments and cannot fail.
        if unsafe { libc::getppid() } != parent {
            exit_now(exit::PARENT_GONE);
        }
    }
    let header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: keep,
            permitted: keep,
            inheritable: 0,
        },
        CapData::default(),
    ];
    // SAFETY: a version-3 header and two CapData records, both live; capset
    // only reads them.
    check(unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) })
        .map_err(|e| fail("capset", e))?;
    let left = capget().map_err(|e| fail("capget", e))?;
    let expected = [(keep, keep, 0), (0, 0, 0)];
    if left
        .iter()
        .zip(expected)
        .any(|(c, (e, p, i))| c.effective != e || c.permitted != p || c.inheritable != i)
    {
        return Err(LockdownError(
            "capabilities remain after dropping them".into(),
        ));
    }
    Ok(())
}

/// Switches to `id`'s group and user, with no supplementary groups.
/// SECBIT_NO_SETUID_FIXUP is set, so the switch keeps the caps that the
/// capset in [`drop_privileges`] then drops; the order makes the switch
/// possible.
fn switch_user(id: &Identity) -> Result<(), LockdownError> {
    let failed = || {
        fail(
            &format!("switching to user '{}' ({}:{})", id.name, id.uid, id.gid),
            io::Error::last_os_error(),
        )
    };
    // SAFETY: a zero-length list, so the null pointer is never read.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        return Err(failed());
    }
    // SAFETY: setresgid takes ids only and touches no memory.
    if unsafe { libc::setresgid(id.gid, id.gid, id.gid) } != 0 {
        return Err(failed());
    }
    // SAFETY: setresuid takes ids only and touches no memory.
    if unsafe { libc::setresuid(id.uid, id.uid, id.uid) } != 0 {
        return Err(failed());
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
    // SAFETY: `fprog` points at `program`, both live for the call, and its
    // length is the program's; the kernel copies the program in.
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

/// A Landlock ruleset with every rule added, not yet enforced.
pub struct PreparedLandlock(Option<landlock::RulesetCreated>);

/// Builds the Landlock ruleset: filesystem rules when the spec has them, TCP
/// rules when it has them (for a confining policy the host always sends
/// both). Built first thing, while the helper is still its original user
/// (so every listed path can be opened to add its rule, also after a switch
/// made before a user namespace), and enforced later by
/// [`enforce_landlock`].
pub fn prepare_landlock(spec: Option<&LandlockSpec>) -> Result<PreparedLandlock, LockdownError> {
    match spec {
        Some(spec) if spec.fs.is_some() || spec.net.is_some() => {
            build_ruleset(spec).map(|r| PreparedLandlock(Some(r)))
        }
        _ => Ok(PreparedLandlock(None)),
    }
}

/// Enforces a prepared ruleset on this process. Done while the helper is
/// still single-threaded, so every thread the library ever starts inherits
/// the domain, and after the namespaces, whose mounts Landlock would forbid.
pub fn enforce_landlock(prepared: PreparedLandlock) -> Result<(), LockdownError> {
    let Some(created) = prepared.0 else {
        return Ok(());
    };
    created
        .restrict_self()
        .map_err(|e| LockdownError(format!("Landlock restrict_self: {e}")))?;
    Ok(())
}

fn build_ruleset(spec: &LandlockSpec) -> Result<landlock::RulesetCreated, LockdownError> {
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
        for path in fs.read.iter().chain(&fs.write).chain(&fs.list) {
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
            .map_err(|e| landlock("write rule", &e))?
            .add_rules(path_beneath_rules(&fs.list, AccessFs::ReadDir))
            .map_err(|e| landlock("list rule", &e))?;
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
    Ok(created)
}
