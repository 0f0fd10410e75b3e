//! The floor and the supervised routes: what no policy can grant, and what
//! the host decides whatever the policy says.
//!
//! Each is a table here so that the compiler
//! ([`SandboxPolicy::compile`](crate::sandbox::SandboxPolicy::compile)), the
//! host's verdicts
//! ([`SandboxPolicy::verdict`](crate::sandbox::SandboxPolicy::verdict)),
//! `policy explain` and `ffb learn` read the same lists.

use super::model::{ArgCondition, CmpOp, SyscallRule};
use crate::syscalls::number_of;

const CLONE_THREAD: u64 = libc::CLONE_THREAD as u64;

/// `open(2)` flags that make an open more than a read.
const OPEN_WRITE_FLAGS: u64 = (libc::O_WRONLY
    | libc::O_RDWR
    | libc::O_CREAT
    | libc::O_TRUNC
    | libc::O_APPEND
    // O_TMPFILE includes O_DIRECTORY's bit; only its own bit means "create".
    | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u64;

/// The condition that makes a `clone` a thread (it shares the thread group),
/// which takes it off the floor.
pub(crate) fn threads_only() -> ArgCondition {
    ArgCondition::new(0, CmpOp::MaskedEq(CLONE_THREAD), CLONE_THREAD)
}

/// A syscall that no policy can grant, with the reason.
#[derive(Clone, Copy, Debug)]
pub struct FloorEntry {
    /// The syscall's name.
    pub syscall: &'static str,
    /// When set, only calls whose argument `arg & mask == value` are on the floor.
    pub only_when: Option<(u8, u64, u64)>,
    /// When set, a call whose argument `index` equals this value is not on
    /// the floor even when [`Self::only_when`] holds (`personality`'s query).
    pub except: Option<(u8, u64)>,
    /// Why it can never be granted.
    pub reason: &'static str,
}

impl FloorEntry {
    /// [`Self::only_when`] and [`Self::except`] as conditions, all of which
    /// hold for the calls the entry forbids (none: every call).
    pub fn conditions(&self) -> Vec<ArgCondition> {
        let when = self
            .only_when
            .map(|(index, mask, value)| ArgCondition::new(index, CmpOp::MaskedEq(mask), value));
        let except = self
            .except
            .map(|(index, value)| ArgCondition::new(index, CmpOp::Ne, value));
        when.into_iter().chain(except).collect()
    }

    /// Whether the entry forbids a call with these arguments.
    pub fn forbids(&self, args: &[u64; 6]) -> bool {
        self.conditions().iter().all(|c| c.holds(args))
    }
}

const WHY_EXEC: &str = "the bridge runs library code, never programs";
const WHY_PROCESS: &str = "a new process would escape the helper's supervision and resource limits";
const WHY_PTRACE: &str = "it reads or writes other processes' memory";
const WHY_KERNEL: &str = "it reaches kernel attack surface no library needs";
const WHY_IO_URING: &str = "io_uring performs I/O that seccomp never sees";
const WHY_MOUNT: &str = "it changes the filesystem view and could undo Landlock and namespaces";
const WHY_SIGNAL: &str = "a signal to another process can kill or stop the host";

/// The floor: syscalls that no policy can ever grant (see `docs/policy.md`).
pub const FLOOR: &[FloorEntry] = &[
    floor("execve", WHY_EXEC),
    floor("execveat", WHY_EXEC),
    floor("fork", WHY_PROCESS),
    floor("vfork", WHY_PROCESS),
    FloorEntry {
        syscall: "clone",
        only_when: Some((0, CLONE_THREAD, 0)),
        except: None,
        reason: "clone without CLONE_THREAD makes a new process; threads stay allowed",
    },
    floor("ptrace", WHY_PTRACE),
    floor("process_vm_readv", WHY_PTRACE),
    floor("process_vm_writev", WHY_PTRACE),
    floor("pidfd_send_signal", WHY_SIGNAL),
    floor("pidfd_getfd", WHY_PTRACE),
    floor("bpf", WHY_KERNEL),
    floor("perf_event_open", WHY_KERNEL),
    floor("io_uring_setup", WHY_IO_URING),
    floor("io_uring_enter", WHY_IO_URING),
    floor("io_uring_register", WHY_IO_URING),
    floor(
        "userfaultfd",
        "it lets a library stall the kernel mid-copy, a classic exploit aid",
    ),
    floor("kexec_load", WHY_KERNEL),
    floor("kexec_file_load", WHY_KERNEL),
    floor("init_module", WHY_KERNEL),
    floor("finit_module", WHY_KERNEL),
    floor("delete_module", WHY_KERNEL),
    floor("mount", WHY_MOUNT),
    floor("umount2", WHY_MOUNT),
    floor("pivot_root", WHY_MOUNT),
    floor("move_mount", WHY_MOUNT),
    floor("fsmount", WHY_MOUNT),
    floor(
        "setns",
        "joining another namespace escapes the helper's isolation",
    ),
    floor("keyctl", "kernel keyrings are shared beyond the helper"),
    floor("add_key", "kernel keyrings are shared beyond the helper"),
    floor(
        "request_key",
        "kernel keyrings are shared beyond the helper",
    ),
    floor("seccomp", "the helper's filter is fixed once installed"),
    command(
        "prctl",
        0,
        libc::PR_SET_SECCOMP as u64,
        "prctl(PR_SET_SECCOMP) stacks a filter that could make a floor syscall fail quietly",
    ),
    command(
        "prctl",
        0,
        PR_SET_SYSCALL_USER_DISPATCH,
        "prctl(PR_SET_SYSCALL_USER_DISPATCH) turns syscalls into signals before the filter sees them",
    ),
    command(
        "ioctl",
        1,
        libc::TIOCSTI,
        "ioctl(TIOCSTI) types input into a terminal, which its shell then runs",
    ),
    command(
        "ioctl",
        1,
        libc::TIOCLINUX,
        "ioctl(TIOCLINUX) can paste input into a virtual console",
    ),
    command(
        "fcntl",
        1,
        libc::F_SETLEASE as u64,
        "fcntl(F_SETLEASE) lets a reader block every other process's writes for a lease period",
    ),
    FloorEntry {
        syscall: "personality",
        only_when: Some((0, READ_IMPLIES_EXEC, READ_IMPLIES_EXEC)),
        // 0xffffffff only asks for the current persona; it changes nothing.
        except: Some((0, 0xffff_ffff)),
        reason: "READ_IMPLIES_EXEC makes every readable mapping executable, behind the rules on PROT_EXEC",
    },
];

/// `READ_IMPLIES_EXEC`, from `<linux/personality.h>`.
const READ_IMPLIES_EXEC: u64 = 0x0040_0000;

/// `PR_SET_SYSCALL_USER_DISPATCH`, from `<linux/prctl.h>`.
const PR_SET_SYSCALL_USER_DISPATCH: u64 = 59;

/// The mask of a C `int` or `unsigned int` argument: the kernel ignores the
/// register's upper half, so the floor does too.
const INT: u64 = 0xffff_ffff;

/// A floor entry for one command of a multiplexing syscall (argument `index`
/// read as an int equals `value`); the syscall's other commands stay off the floor.
const fn command(syscall: &'static str, index: u8, value: u64, reason: &'static str) -> FloorEntry {
    FloorEntry {
        syscall,
        only_when: Some((index, INT, value)),
        except: None,
        reason,
    }
}

const fn floor(syscall: &'static str, reason: &'static str) -> FloorEntry {
    FloorEntry {
        syscall,
        only_when: None,
        except: None,
        reason,
    }
}

/// Signals go to the host's listener, which lets a signal through only when it is
/// aimed at the helper itself (so `abort()` and `raise()` work).
pub const SUPERVISED_SIGNALS: &[&str] = &[
    "kill",
    "tkill",
    "tgkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
];

/// Calls that name a process to signal later (a file's "owner" receives SIGIO
/// and SIGURG): `fcntl(F_SETOWN)`, `fcntl(F_SETOWN_EX)`, and the ioctls
/// `FIOSETOWN` and `SIOCSPGRP`, as `(syscall, index of the command argument,
/// command)`. They go to the host's listener whatever the policy allows; only
/// `F_SETOWN` naming the helper itself (or no one) is let through.
pub const SUPERVISED_OWNERS: &[(&str, u8, u64)] = &[
    ("fcntl", 1, libc::F_SETOWN as u64),
    ("fcntl", 1, F_SETOWN_EX),
    ("ioctl", 1, FIOSETOWN),
    ("ioctl", 1, SIOCSPGRP),
];

// From <asm-generic/fcntl.h> and <asm-generic/sockios.h>; libc lacks them.
pub(crate) const F_SETOWN_EX: u64 = 15;
pub(crate) const FIOSETOWN: u64 = 0x8901;
const SIOCSPGRP: u64 = 0x8902;

/// The [`SUPERVISED_OWNERS`] entry this call matches, if any (on the low 32
/// bits of the command, as the kernel reads it).
pub fn supervised_owner_call(
    name: &str,
    args: &[u64; 6],
) -> Option<&'static (&'static str, u8, u64)> {
    SUPERVISED_OWNERS
        .iter()
        .find(|(n, i, c)| *n == name && args[*i as usize] & 0xffff_ffff == *c)
}

/// x32-ABI syscall numbers have this bit set. The helper never uses that ABI,
/// and no rule matches those numbers, so every one is a violation.
pub const X32_SYSCALL_BIT: i64 = 0x4000_0000;

/// What `dlopen` needs beyond a strict policy: read-only file access and
/// executable mappings. The host lets these through only while the helper is
/// loading; afterwards they get the policy's default answer.
pub const LOADING_SYSCALLS: &[&str] = &[
    "open",
    "openat",
    "read",
    "pread64",
    "lseek",
    "close",
    "fstat",
    "stat",
    "lstat",
    "newfstatat",
    "statx",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getcwd",
    "getdents64",
    "mmap",
    "mprotect",
    "munmap",
    "fcntl",
    "statfs",
    "fstatfs",
];

/// Whether a call is one that loading may make: a read-only open, or a
/// [`LOADING_SYSCALLS`] call.
pub(crate) fn loading_permits(name: &str, args: &[u64; 6]) -> bool {
    match name {
        "open" => args[1] & OPEN_WRITE_FLAGS == 0,
        "openat" => args[2] & OPEN_WRITE_FLAGS == 0,
        other => LOADING_SYSCALLS.contains(&other),
    }
}

/// The floor entry that forbids this concrete call, if any.
pub fn floor_entry_for_call(nr: i64, args: &[u64; 6]) -> Option<&'static FloorEntry> {
    FLOOR
        .iter()
        .find(|e| number_of(e.syscall) == Some(nr) && e.forbids(args))
}

/// The floor entry that a rule would grant, if any.
///
/// An entry on a whole syscall is granted by any rule on it. The `clone`
/// entry (a flag that must be *absent*, value 0) covers most clones: a rule
/// grants it unless it requires `CLONE_THREAD`. An entry on one command of a
/// multiplexing syscall (`ioctl(TIOCSTI)`, `fcntl(F_SETLEASE)`,
/// `prctl(PR_SET_SECCOMP)`) is granted only by a rule that names that command
/// (`eq`, or `masked_eq` over all its bits): a rule allowing every `ioctl`
/// grants no floor entry, and the floored commands still reach the host.
pub fn floor_entry_granted_by(rule: &SyscallRule) -> Option<&'static FloorEntry> {
    FLOOR
        .iter()
        .filter(|e| e.syscall == rule.syscall)
        .find(|entry| match entry.only_when {
            None => true,
            Some((index, mask, 0)) => {
                let requires_flag = rule.conditions.iter().any(|c| {
                    c.index == index
                        && matches!(c.op, CmpOp::MaskedEq(m) if m & mask == mask)
                        && c.value & mask == mask
                });
                !requires_flag
            }
            Some((index, mask, value)) => names_value(&rule.conditions, index, mask, value),
        })
}

/// Whether `conditions` pin argument `index` to `value` on the bits of
/// `mask`: an `eq` on it, or a `masked_eq` whose mask covers `mask`. This is
/// what "a rule that names the value" means for the floor's commands and for
/// the connect routes ([`SUPERVISED_CONNECTS`]).
pub fn names_value(conditions: &[ArgCondition], index: u8, mask: u64, value: u64) -> bool {
    conditions.iter().any(|c| {
        c.index == index
            && match c.op {
                CmpOp::Eq => c.value & mask == value,
                CmpOp::MaskedEq(m) => m & mask == mask && c.value & mask == value,
                _ => false,
            }
    })
}

/// How a supervised call names the process it acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A pid (or tid) in argument `.0`; 0 means the caller.
    Pid(u8),
    /// A `(which, who)` pair in arguments 0 and 1, as `setpriority` and
    /// `ioprio_set` take it: only `which == .0` (the "process" kind) with
    /// `who` 0 or the helper's own id is the helper alone; groups and users
    /// are never provably only the helper.
    Which(u64),
}

impl Target {
    /// Whether the call aims only at the helper: `aimed_at_self(id)` says
    /// whether a pid or tid is the helper's own.
    pub fn is_self(self, args: &[u64; 6], aimed_at_self: impl Fn(i64) -> bool) -> bool {
        let int = |i: usize| args[i] as u32 as i32 as i64;
        let (id, kind_ok) = match self {
            Target::Pid(index) => (int(index as usize), true),
            Target::Which(process) => (int(1), args[0] & INT == process),
        };
        // id 0 is the caller; a negative id is no process.
        kind_ok && (id == 0 || (id > 0 && aimed_at_self(id)))
    }
}

/// `PRIO_PROCESS` (`setpriority`) and `IOPRIO_WHO_PROCESS` (`ioprio_set`).
const PRIO_PROCESS: u64 = libc::PRIO_PROCESS as u64;
const IOPRIO_WHO_PROCESS: u64 = 1;

/// Calls that change another process's limits, priority, CPUs or memory
/// placement. They go to the host's listener whatever the policy allows,
/// unless they aim at the caller (pid 0, or `PRIO_PROCESS`/`IOPRIO_WHO_PROCESS`
/// with who 0); the host lets one aimed at the helper itself go on to the
/// policy's rules, and any other is a violation.
pub const SUPERVISED_TARGETS: &[(&str, Target)] = &[
    ("prlimit64", Target::Pid(0)),
    ("setpriority", Target::Which(PRIO_PROCESS)),
    ("ioprio_set", Target::Which(IOPRIO_WHO_PROCESS)),
    ("sched_setaffinity", Target::Pid(0)),
    ("sched_setscheduler", Target::Pid(0)),
    ("sched_setparam", Target::Pid(0)),
    ("sched_setattr", Target::Pid(0)),
    ("migrate_pages", Target::Pid(0)),
    ("move_pages", Target::Pid(0)),
];

/// The [`SUPERVISED_TARGETS`] entry for this syscall, if any.
pub fn supervised_target(name: &str) -> Option<Target> {
    SUPERVISED_TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// `IPPROTO_MPTCP` (Linux 5.6) and `MSG_FASTOPEN`, which libc may lack.
const IPPROTO_MPTCP: u64 = 262;
const MSG_FASTOPEN: u64 = 0x2000_0000;

/// Ways to open a connection without `connect(2)`, which Landlock's TCP
/// rules see: an MPTCP or SCTP socket, and a send with `MSG_FASTOPEN`, as
/// `(syscall, argument, mask, value)` (`arg & mask == value`, on the int the
/// kernel reads). They go to the host's listener whatever the policy allows;
/// the host lets one through only when a rule that names that value (see
/// [`names_value`]) matches it, and any other is a violation.
pub const SUPERVISED_CONNECTS: &[(&str, u8, u64, u64)] = &[
    ("socket", 2, INT, IPPROTO_MPTCP),
    ("socket", 2, INT, libc::IPPROTO_SCTP as u64),
    ("sendto", 3, MSG_FASTOPEN, MSG_FASTOPEN),
    ("sendmsg", 2, MSG_FASTOPEN, MSG_FASTOPEN),
    ("sendmmsg", 3, MSG_FASTOPEN, MSG_FASTOPEN),
];

/// The [`SUPERVISED_CONNECTS`] entry this call matches, if any.
pub fn supervised_connect_call(
    name: &str,
    args: &[u64; 6],
) -> Option<&'static (&'static str, u8, u64, u64)> {
    SUPERVISED_CONNECTS
        .iter()
        .find(|(n, i, mask, value)| *n == name && args[*i as usize] & mask == *value)
}

/// Calls that set a lock on a file, as `(syscall, index of the command
/// argument, mask, value)` (`arg & mask == value`, on the int the kernel
/// reads): `fcntl` `F_SETLK`, `F_SETLKW`, `F_OFD_SETLK`, `F_OFD_SETLKW`, and
/// `flock` with `LOCK_SH` or `LOCK_EX` (`LOCK_UN` is not one of them). A
/// read lock needs only a readable fd, and a lock on a file another process
/// shares can stall it, so they go to the host's listener whatever the
/// policy allows. The host lets one through only on a file within the
/// policy's write grants, and only when the policy's own rules allow it
/// ([`SandboxPolicy::lock_rules_verdict`](crate::sandbox::SandboxPolicy::lock_rules_verdict));
/// any other fails with [`LOCK_REFUSED`], and an unlock (`F_UNLCK`) of a
/// file outside the grants, where the helper can hold no lock, succeeds
/// without running.
pub const SUPERVISED_LOCKS: &[(&str, u8, u64, u64)] = &[
    ("fcntl", 1, INT, libc::F_SETLK as u64),
    ("fcntl", 1, INT, libc::F_SETLKW as u64),
    ("fcntl", 1, INT, libc::F_OFD_SETLK as u64),
    ("fcntl", 1, INT, libc::F_OFD_SETLKW as u64),
    ("flock", 1, libc::LOCK_SH as u64, libc::LOCK_SH as u64),
    ("flock", 1, libc::LOCK_EX as u64, libc::LOCK_EX as u64),
];

/// The errno of a refused lock: `ENOLCK`, "no locks available", which both
/// `fcntl(2)` and `flock(2)` document. Not `EACCES` or `EAGAIN`: for
/// `F_SETLK` those mean that another process holds a conflicting lock, and a
/// caller would wait or retry for a lock that no one holds.
pub const LOCK_REFUSED: u32 = libc::ENOLCK as u32;

/// Who owns a lock, which decides how the host can take it safely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOwner {
    /// A classic POSIX record lock (`F_SETLK`, `F_SETLKW`): the process's.
    Process,
    /// An open file description lock (`F_OFD_SETLK`, `F_OFD_SETLKW`).
    OpenFile,
    /// A `flock(2)` lock, also the open file description's.
    Flock,
}

/// A lock-setting call ([`SUPERVISED_LOCKS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockCall {
    /// Whose lock it is.
    pub owner: LockOwner,
    /// Whether the call waits for a conflicting lock to go (`F_SETLKW`,
    /// `F_OFD_SETLKW`, `flock` without `LOCK_NB`).
    pub waits: bool,
}

/// The [`SUPERVISED_LOCKS`] call this is, if any (on the low 32 bits of the
/// command, as the kernel reads it).
pub fn supervised_lock_call(nr: i64, args: &[u64; 6]) -> Option<LockCall> {
    let command = args[1] & INT;
    let call = |owner, waits| Some(LockCall { owner, waits });
    match nr {
        libc::SYS_fcntl => match command as i32 {
            libc::F_SETLK => call(LockOwner::Process, false),
            libc::F_SETLKW => call(LockOwner::Process, true),
            libc::F_OFD_SETLK => call(LockOwner::OpenFile, false),
            libc::F_OFD_SETLKW => call(LockOwner::OpenFile, true),
            _ => None,
        },
        libc::SYS_flock if command & (libc::LOCK_SH | libc::LOCK_EX) as u64 != 0 => {
            call(LockOwner::Flock, command & libc::LOCK_NB as u64 == 0)
        }
        _ => None,
    }
}

/// Whether a call is one the host supervises whatever the policy says (a
/// signal, a file owner, a call aimed at a process, a connection without
/// `connect`): learn mode must never learn one of these.
pub fn is_supervised(nr: i64, args: &[u64; 6]) -> bool {
    let name = crate::syscalls::display_name(nr);
    SUPERVISED_SIGNALS.contains(&name.as_str())
        || supervised_owner_call(&name, args).is_some()
        || supervised_target(&name).is_some_and(|t| !t.is_self(args, |_| false))
        || supervised_connect_call(&name, args).is_some()
}

/// Whether a call starts a thread: `clone` with `CLONE_THREAD`. Every one
/// goes to the host's listener, which counts the helper's threads against
/// [`Limits::threads`](crate::sandbox::Limits::threads).
pub fn is_thread_clone(nr: i64, args: &[u64; 6]) -> bool {
    number_of("clone") == Some(nr) && threads_only().holds(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{Action, PolicyError, SandboxPolicy};

    #[test]
    fn the_floor_cannot_be_granted() {
        for name in [
            "execve", "ptrace", "bpf", "mount", "fork", "clone", "seccomp",
        ] {
            // (prctl, ioctl and fcntl are on the floor for some commands only.)
            let err = SandboxPolicy::pure().allow(name).unwrap_err();
            assert!(matches!(err, PolicyError::Floor { .. }), "{name}: {err}");
        }
        let thread_only = SyscallRule::new("clone", Action::Allow, vec![threads_only()]).unwrap();
        assert!(SandboxPolicy::pure().with_rule(thread_only).is_ok());
    }

    #[test]
    fn a_floored_command_is_granted_only_by_a_rule_that_names_it() {
        let rule =
            |name: &str, conditions| SyscallRule::new(name, Action::Allow, conditions).unwrap();
        for name in ["ioctl", "fcntl", "prctl"] {
            assert!(
                floor_entry_granted_by(&rule(name, vec![])).is_none(),
                "{name}"
            );
        }
        let eq = |i, v| vec![ArgCondition::new(i, CmpOp::Eq, v)];
        let named = [
            rule("ioctl", eq(1, libc::TIOCSTI)),
            rule("ioctl", eq(1, libc::TIOCLINUX | 1 << 32)),
            rule(
                "fcntl",
                vec![ArgCondition::new(1, CmpOp::MaskedEq(INT), 1024)],
            ),
            rule("prctl", eq(0, libc::PR_SET_SECCOMP as u64)),
        ];
        for r in &named {
            assert!(floor_entry_granted_by(r).is_some(), "{r:?}");
        }
        // Other commands, or a mask that leaves bits out, name nothing floored.
        let other = rule("ioctl", eq(1, libc::TCGETS));
        let partial = rule(
            "fcntl",
            vec![ArgCondition::new(1, CmpOp::MaskedEq(0xff), 0)],
        );
        assert!(floor_entry_granted_by(&other).is_none());
        assert!(floor_entry_granted_by(&partial).is_none());
        // The calls themselves are on the floor, on the int the kernel reads.
        let ioctl = number_of("ioctl").unwrap();
        assert!(floor_entry_for_call(ioctl, &[0, libc::TIOCSTI | 1 << 32, 0, 0, 0, 0]).is_some());
        assert!(floor_entry_for_call(ioctl, &[0, libc::TCGETS, 0, 0, 0, 0]).is_none());
    }

    #[test]
    fn lock_calls_are_told_apart_on_the_int_the_kernel_reads() {
        let fcntl = number_of("fcntl").unwrap();
        let flock = number_of("flock").unwrap();
        let at = |nr, command: u64| supervised_lock_call(nr, &[3, command, 0, 0, 0, 0]);
        let lock = |owner, waits| Some(LockCall { owner, waits });
        use LockOwner::{Flock, OpenFile, Process};
        assert_eq!(at(fcntl, libc::F_SETLK as u64), lock(Process, false));
        assert_eq!(
            at(fcntl, libc::F_SETLKW as u64 | 1 << 32),
            lock(Process, true)
        );
        assert_eq!(at(fcntl, libc::F_OFD_SETLK as u64), lock(OpenFile, false));
        assert_eq!(at(fcntl, libc::F_OFD_SETLKW as u64), lock(OpenFile, true));
        for other in [
            libc::F_GETLK,
            libc::F_OFD_GETLK,
            libc::F_GETFL,
            libc::F_SETLEASE,
        ] {
            assert_eq!(at(fcntl, other as u64), None, "{other}");
        }
        let (sh, ex, nb, un) = (libc::LOCK_SH, libc::LOCK_EX, libc::LOCK_NB, libc::LOCK_UN);
        assert_eq!(at(flock, sh as u64), lock(Flock, true));
        assert_eq!(at(flock, (ex | nb) as u64), lock(Flock, false));
        assert_eq!(at(flock, (1 << 32) | ex as u64), lock(Flock, true));
        assert_eq!(at(flock, un as u64), None);
        assert_eq!(at(flock, (un | nb) as u64), None);
        assert_eq!(
            at(flock, (1 << 32) | un as u64),
            None,
            "the upper half is no lock"
        );
        // The table the program compiles says the same.
        let table = |nr: i64, command: u64| {
            SUPERVISED_LOCKS.iter().any(|(name, i, mask, value)| {
                number_of(name) == Some(nr) && [3, command][*i as usize] & mask == *value
            })
        };
        for command in [sh, ex, sh | nb, ex | nb, un, un | nb] {
            assert_eq!(
                table(flock, command as u64),
                at(flock, command as u64).is_some()
            );
        }
    }

    #[test]
    fn targets_are_the_helper_only_when_provably_so() {
        let me = |id: i64| id == 4242;
        let pid = Target::Pid(0);
        assert!(pid.is_self(&[0; 6], me));
        assert!(pid.is_self(&[4242, 0, 0, 0, 0, 0], me));
        assert!(
            pid.is_self(&[1 << 32, 0, 0, 0, 0, 0], me),
            "pid 0 as an int"
        );
        assert!(!pid.is_self(&[1, 0, 0, 0, 0, 0], me));
        assert!(
            !pid.is_self(&[0xffff_ffff, 0, 0, 0, 0, 0], me),
            "-1 is everyone"
        );
        let prio = Target::Which(PRIO_PROCESS);
        assert!(prio.is_self(&[0, 0, 0, 0, 0, 0], me));
        assert!(prio.is_self(&[0, 4242, 0, 0, 0, 0], me));
        assert!(!prio.is_self(&[1, 0, 0, 0, 0, 0], me), "PRIO_PGRP");
        assert!(!prio.is_self(&[2, 0, 0, 0, 0, 0], me), "PRIO_USER");
        assert!(!prio.is_self(&[0, 7, 0, 0, 0, 0], me));
    }
}
