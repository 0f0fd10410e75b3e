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
    /// Why it can never be granted.
    pub reason: &'static str,
}

impl FloorEntry {
    /// [`Self::only_when`] as a condition: the calls the entry forbids.
    pub fn condition(&self) -> Option<ArgCondition> {
        self.only_when
            .map(|(index, mask, value)| ArgCondition::new(index, CmpOp::MaskedEq(mask), value))
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
];

const fn floor(syscall: &'static str, reason: &'static str) -> FloorEntry {
    FloorEntry {
        syscall,
        only_when: None,
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
        .find(|e| number_of(e.syscall) == Some(nr) && e.condition().is_none_or(|c| c.holds(args)))
}

/// The floor entry that a rule would (even partly) grant, if any.
///
/// A rule on `clone` grants the floor unless it requires CLONE_THREAD.
pub fn floor_entry_granted_by(rule: &SyscallRule) -> Option<&'static FloorEntry> {
    let entry = FLOOR.iter().find(|e| e.syscall == rule.syscall)?;
    match entry.only_when {
        None => Some(entry),
        Some((index, mask, _)) => {
            let requires_thread = rule.conditions.iter().any(|c| {
                c.index == index
                    && matches!(c.op, CmpOp::MaskedEq(m) if m & mask == mask)
                    && c.value & mask == mask
            });
            (!requires_thread).then_some(entry)
        }
    }
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
            let err = SandboxPolicy::pure().allow(name).unwrap_err();
            assert!(matches!(err, PolicyError::Floor { .. }), "{name}: {err}");
        }
        let thread_only = SyscallRule::new("clone", Action::Allow, vec![threads_only()]).unwrap();
        assert!(SandboxPolicy::pure().with_rule(thread_only).is_ok());
    }
}
