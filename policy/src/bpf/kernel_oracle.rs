//! The kernel is the oracle: compiled filters installed in real processes,
//! their verdicts compared with the interpreter's.
//!
//! Every test that reads a verdict off [`interp::evaluate`] trusts that it
//! runs a program the way the kernel does. These tests check that trust. For
//! each policy they generate syscalls from a seeded PRNG, and for each call
//! they fork a child that installs the compiled program (with a
//! user-notification listener), makes the call and reports its raw result. The
//! parent takes the listener with `pidfd_getfd`, answers every notification
//! with [`NOTIFIED_ERRNO`], and classifies what the kernel did:
//!
//! | the kernel | the interpreter's word |
//! |---|---|
//! | ran the call: the same result as a child with no filter | `ALLOW`, `LOG` |
//! | failed it with errno `E` (capped at 4095, as the kernel does) | `ERRNO \| E` |
//! | sent the listener a notification for this very call | `USER_NOTIF` |
//! | killed the child with `SIGSYS` | `KILL_PROCESS` |
//!
//! A verdict is compared as far as the call can tell: a result is an errno,
//! zero or positive (pids and fds differ from child to child), so `ERRNO`
//! with the errno a call fails with anyway, or `ERRNO 0` for a call that
//! returns 0, passes for `ALLOW`. Generated policies use errnos no syscall
//! returns (4001 and up) to keep that rare.
//!
//! A policy's `kill` compiles to `USER_NOTIF` (the host kills, and says
//! why), so a compiled policy returns `KILL_PROCESS` only to a call through
//! another architecture's entry, which the interpreter does not model: the
//! kernel alone is checked there (`int 0x80`), and a hand-built program checks
//! the kill route of the comparison itself.
//!
//! Every generated call is harmless if the kernel lets it run: bad fds, a path
//! that does not exist, flags, lengths and addresses the kernel refuses before
//! it does anything, signal 0. The generator's seed is printed with every
//! failure; `FFB_ORACLE_SEED=<seed>` replays it.
//!
//! The test process is multithreaded, so a child may only make raw syscalls:
//! everything it touches is built before `fork`, and it reports through a pipe
//! with `write` alone (every base policy allows `write` and `exit_group`).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::interp;
use super::{
    AUDIT_ARCH_X86_64, JMP_JEQ_K, LD_W_ABS, RET_K, SECCOMP_DATA_NR, SECCOMP_RET_ACTION_FULL,
    SECCOMP_RET_ALLOW, SECCOMP_RET_DATA, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS,
    SECCOMP_RET_KILL_THREAD, SECCOMP_RET_LOG, SECCOMP_RET_TRAP, SECCOMP_RET_USER_NOTIF,
};
use crate::sandbox::{
    Action, ArgCondition, CmpOp, CompiledFilter, SandboxPolicy, SyscallRule, PRESETS,
    X32_SYSCALL_BIT,
};
use crate::syscalls::{display_name, number_of};

/// The errno the parent answers every notification with: no syscall below
/// returns it on its own, so a child that saw it was notified.
const NOTIFIED_ERRNO: i32 = libc::ENOTRECOVERABLE;
/// The kernel caps an `ERRNO` action's data at `MAX_ERRNO`.
const MAX_ERRNO: u32 = 4095;
/// A child that runs longer than this is killed and the case fails.
const CASE_TIMEOUT: Duration = Duration::from_secs(5);
/// Exit codes of a child that could not do its job.
const EXIT_SETUP: i32 = 3;
const EXIT_REPORT: i32 = 4;
/// getpid through the 32-bit `int 0x80` entry.
const I386_GETPID: i64 = 20;
/// The seed when `FFB_ORACLE_SEED` is not set.
const DEFAULT_SEED: u64 = 0x0ffb_5eed;
/// A path that does not exist, so that opening it fails whatever the flags.
static MISSING: &[u8] = b"/nonexistent-ffb-kernel-oracle/x\0";

/// A small deterministic PRNG (xorshift64*).
struct Prng(u64);

impl Prng {
    fn new(seed: u64) -> Self {
        // xorshift never leaves the state 0.
        Prng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// An upper half for a 32-bit argument: mostly zero, sometimes the
    /// values that trip a compiler that compares only one half.
    fn upper(&mut self) -> u64 {
        self.pick(&[0, 0, 0, 1, 0x8000_0000, 0xffff_ffff]) << 32
    }
}

/// `FFB_ORACLE_SEED` (decimal or `0x` hex), or the default.
fn base_seed() -> u64 {
    std::env::var("FFB_ORACLE_SEED")
        .ok()
        .and_then(|s| match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        })
        .unwrap_or(DEFAULT_SEED)
}

/// The seed for one test: the base seed mixed with the test's label, so
/// that tests draw different calls.
fn seed_for(label: &str) -> u64 {
    label.bytes().fold(base_seed(), |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How a call enters the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// The `syscall` instruction: `AUDIT_ARCH_X86_64`.
    Syscall,
    /// `int 0x80`: the 32-bit entry, `AUDIT_ARCH_I386`.
    Int80,
}

/// One generated call.
#[derive(Clone, Copy, Debug)]
struct Case {
    nr: i64,
    args: [u64; 6],
    entry: Entry,
}

impl Case {
    fn describe(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|a| format!("{a:#x}")).collect();
        format!(
            "{}(nr {:#x}; {}) via {:?}",
            display_name(self.nr),
            self.nr,
            args.join(", "),
            self.entry
        )
    }
}

/// A syscall and, per argument, the values that keep it harmless. Arguments
/// in `wide` are C ints or unsigned ints the kernel truncates, so any upper
/// half is harmless too; the argument at `path` gets [`MISSING`] or NULL.
struct Template {
    name: &'static str,
    pools: [&'static [u64]; 6],
    wide: u8,
    path: Option<usize>,
}

const fn t(name: &'static str, pools: [&'static [u64]; 6], wide: u8) -> Template {
    Template {
        name,
        pools,
        wide,
        path: None,
    }
}

const fn with_path(
    name: &'static str,
    pools: [&'static [u64]; 6],
    wide: u8,
    path: usize,
) -> Template {
    Template {
        name,
        pools,
        wide,
        path: Some(path),
    }
}

const N: &[u64] = &[];
const ZERO: &[u64] = &[0];
const JUNK: &[u64] = &[0, 7, u64::MAX];
/// fd -1, as the kernel reads it.
const NO_FD: u64 = 0xffff_ffff;
/// fds no process has open: -1, and numbers above any fd limit.
const BAD_FD: &[u64] = &[NO_FD, 0x7fff_ffff, 1_000_000];
const COUNT: &[u64] = &[0, 8, 4096];
const LENS: &[u64] = &[0, 4096];
const WHENCE: &[u64] = &[0, 1, 2, 9];
/// F_DUPFD .. F_SETOWN_EX, and F_SETLEASE (1024, on the floor).
const FCNTL_CMD: &[u64] = &[0, 1, 2, 3, 8, 9, 15, 1024];
const IOCTL_CMD: &[u64] = &[
    libc::TCGETS,
    libc::TIOCGWINSZ,
    libc::FIONREAD,
    libc::FIONBIO,
    0x8901, // FIOSETOWN
    0x8902, // SIOCSPGRP
    libc::TIOCSTI,
    libc::TIOCLINUX,
    0x1234,
];
/// kill(2) targets with signal 0: the own group, init, everyone, nobody.
const PIDS: &[u64] = &[0, 1, 0xffff_ffff, 0x7fff_fff0];
const TIDS: &[u64] = &[1, 0x7fff_fff0];
const NO_PID: &[u64] = &[0x7fff_fff0];
const DIRFD: &[u64] = &[libc::AT_FDCWD as u32 as u64, 0xffff_ffff];
const OPEN_FLAGS: &[u64] = &[
    libc::O_RDONLY as u64,
    libc::O_WRONLY as u64,
    libc::O_RDWR as u64,
    (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u64,
    libc::O_APPEND as u64,
    libc::O_DIRECTORY as u64,
    (libc::O_TMPFILE | libc::O_RDWR) as u64,
    libc::O_CLOEXEC as u64,
    (libc::O_RDONLY | libc::O_TRUNC) as u64,
];
const MODES: &[u64] = &[0, 0o644];
const STAT_FLAGS: &[u64] = &[
    0,
    libc::AT_EMPTY_PATH as u64,
    libc::AT_SYMLINK_NOFOLLOW as u64,
    (libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW) as u64,
];
const PROTS: &[u64] = &[
    0,
    libc::PROT_READ as u64,
    libc::PROT_WRITE as u64,
    libc::PROT_EXEC as u64,
    (libc::PROT_READ | libc::PROT_EXEC) as u64,
    (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64,
];
const MMAP_ADDR: &[u64] = &[0, 0x10000];
const MMAP_FLAGS: &[u64] = &[
    (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64,
    libc::MAP_SHARED as u64,
    (libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64,
];
/// Not page-aligned: mprotect and munmap refuse them first.
const UNALIGNED: &[u64] = &[1, 0x1001];
/// Flags clone refuses with EINVAL before it copies anything: a thread
/// without shared signal handlers, shared handlers without shared memory, a
/// new mount namespace sharing the filesystem root.
const CLONE_FLAGS: &[u64] = &[
    libc::CLONE_THREAD as u64,
    libc::CLONE_SIGHAND as u64,
    (libc::CLONE_NEWNS | libc::CLONE_FS) as u64,
    (libc::CLONE_THREAD | libc::CLONE_VM) as u64,
    (libc::CLONE_SIGHAND | libc::CLONE_SETTLS) as u64,
    (libc::CLONE_THREAD | libc::CLONE_FILES) as u64,
];
const DOMAINS: &[u64] = &[
    libc::AF_UNIX as u64,
    libc::AF_INET as u64,
    libc::AF_INET6 as u64,
    9999,
];
const SOCK_TYPES: &[u64] = &[libc::SOCK_STREAM as u64, libc::SOCK_DGRAM as u64, 0xfff];
const ADDR_LEN: &[u64] = &[0, 8, 16];
/// prctl options no kernel has, and the floor's PR_SET_SECCOMP (22) and
/// PR_SET_SYSCALL_USER_DISPATCH (59), which with zero arguments only fail
/// (mode 0) or switch dispatch off.
const PRCTL_OPT: &[u64] = &[0x7fff_0001, 0x7fff_0002, 0x7fff_0100, 0x7fff_ff00, 22, 59];
/// setpriority's and ioprio_set's `which`: process, group, user, and none.
const WHICH: &[u64] = &[0, 1, 2, 3, 99];
/// Nice values and I/O priorities no call can set (out of range).
const BAD_PRIO: &[u64] = &[0x7fff_0000];
/// Send flags: none, MSG_DONTWAIT, MSG_FASTOPEN.
const SEND_FLAGS: &[u64] = &[0, 0x40, 0x2000_0000];
const PROTOCOLS: &[u64] = &[0, 6, 17, 132, 262];
const PRLIMIT_PID: &[u64] = &[0, 1, 0x7fff_fff0];
const RLIMIT_RES: &[u64] = &[libc::RLIMIT_NOFILE as u64, 999];
/// NULL, or an address that faults.
const NEW_LIMIT: &[u64] = &[0, 1];
/// PTRACE_PEEKDATA and PTRACE_GETREGS, never PTRACE_TRACEME (0).
const PTRACE_REQ: &[u64] = &[2, 12];

/// The calls the generator draws from.
static TEMPLATES: &[Template] = &[
    t("read", [BAD_FD, ZERO, COUNT, N, N, N], 0b1),
    t("write", [BAD_FD, ZERO, COUNT, N, N, N], 0b1),
    t("pread64", [BAD_FD, ZERO, COUNT, LENS, N, N], 0b1),
    t("close", [BAD_FD, N, N, N, N, N], 0b1),
    t("lseek", [BAD_FD, LENS, WHENCE, N, N, N], 0b101),
    t("fstat", [BAD_FD, ZERO, N, N, N, N], 0b1),
    t("fcntl", [BAD_FD, FCNTL_CMD, NEW_LIMIT, N, N, N], 0b111),
    t("ioctl", [BAD_FD, IOCTL_CMD, ZERO, N, N, N], 0b11),
    t("dup", [BAD_FD, N, N, N, N, N], 0b1),
    t("getpid", [JUNK, JUNK, N, N, N, N], 0),
    t("getppid", [JUNK, N, N, N, N, N], 0),
    t("gettid", [JUNK, N, N, N, N, N], 0),
    t("kill", [PIDS, ZERO, N, N, N, N], 0b11),
    t("tkill", [NO_PID, ZERO, N, N, N, N], 0b11),
    t("tgkill", [TIDS, TIDS, ZERO, N, N, N], 0b111),
    with_path("openat", [DIRFD, N, OPEN_FLAGS, MODES, N, N], 0b101, 1),
    with_path("open", [N, OPEN_FLAGS, MODES, N, N, N], 0b10, 0),
    with_path("newfstatat", [DIRFD, N, ZERO, STAT_FLAGS, N, N], 0b1001, 1),
    t(
        "mmap",
        [MMAP_ADDR, ZERO, PROTS, MMAP_FLAGS, BAD_FD, ZERO],
        0b100,
    ),
    t("mprotect", [UNALIGNED, LENS, PROTS, N, N, N], 0b100),
    t("munmap", [UNALIGNED, LENS, N, N, N, N], 0),
    t("clone", [CLONE_FLAGS, ZERO, ZERO, ZERO, ZERO, N], 0b1),
    t("clone3", [ZERO, ZERO, N, N, N, N], 0),
    t("execve", [ZERO, ZERO, ZERO, N, N, N], 0),
    t("socket", [DOMAINS, SOCK_TYPES, PROTOCOLS, N, N, N], 0b101),
    t("setpriority", [WHICH, NO_PID, BAD_PRIO, N, N, N], 0b111),
    t("ioprio_set", [WHICH, NO_PID, BAD_PRIO, N, N, N], 0b111),
    t("sched_setaffinity", [NO_PID, ZERO, ZERO, N, N, N], 0b1),
    t("sendmsg", [BAD_FD, ZERO, SEND_FLAGS, N, N, N], 0b101),
    t("sendmmsg", [BAD_FD, ZERO, ZERO, SEND_FLAGS, N, N], 0b1001),
    t("connect", [BAD_FD, ZERO, ADDR_LEN, N, N, N], 0b101),
    t(
        "sendto",
        [BAD_FD, ZERO, COUNT, SEND_FLAGS, ZERO, ZERO],
        0b1001,
    ),
    t("prctl", [PRCTL_OPT, ZERO, ZERO, ZERO, ZERO, N], 0b1),
    t(
        "prlimit64",
        [PRLIMIT_PID, RLIMIT_RES, NEW_LIMIT, ZERO, N, N],
        0b11,
    ),
    t("ptrace", [PTRACE_REQ, NO_PID, ZERO, ZERO, N, N], 0),
    t("bpf", [&[0x7fff], ZERO, ZERO, N, N, N], 0b1),
    t("io_uring_setup", [ZERO, ZERO, N, N, N, N], 0),
    t("mount", [ZERO, ZERO, ZERO, ZERO, ZERO, N], 0),
    t("uname", [ZERO, N, N, N, N, N], 0),
];

/// Numbers no x86_64 syscall has (512 starts the x32-only range; -1 is what
/// a tracer uses to skip a call). Not 335: since Linux 6.11 that is
/// `uretprobe`, which raises SIGILL outside a uretprobe trampoline.
const UNKNOWN_NRS: &[i64] = &[1000, 999, 512, 0x3fff_ffff, -1];

fn nr_of(name: &str) -> i64 {
    number_of(name).unwrap_or_else(|| panic!("unknown syscall {name}"))
}

/// A value for argument `index` of `tpl`.
fn draw_arg(rng: &mut Prng, tpl: &Template, index: usize) -> u64 {
    if tpl.path == Some(index) {
        return rng.pick(&[MISSING.as_ptr() as u64, 0]);
    }
    let pool = tpl.pools[index];
    let low = if pool.is_empty() { 0 } else { rng.pick(pool) };
    if tpl.wide & (1 << index) != 0 {
        low | rng.upper()
    } else {
        low
    }
}

fn draw_call(rng: &mut Prng, tpl: &Template) -> Case {
    let mut args = [0; 6];
    for (i, arg) in args.iter_mut().enumerate() {
        *arg = draw_arg(rng, tpl, i);
    }
    Case {
        nr: nr_of(tpl.name),
        args,
        entry: Entry::Syscall,
    }
}

/// `count` calls: mostly from the templates, some through x32 numbers, some
/// with junk in the number's upper half (the kernel reads an int), some with
/// numbers no syscall has.
fn generate(rng: &mut Prng, count: usize) -> Vec<Case> {
    (0..count)
        .map(|_| {
            let tpl = &TEMPLATES[rng.below(TEMPLATES.len())];
            let mut case = draw_call(rng, tpl);
            match rng.below(20) {
                0 => case.nr = rng.pick(UNKNOWN_NRS),
                1 | 2 => case.nr |= X32_SYSCALL_BIT,
                3 => case.nr |= rng.pick(&[1i64, 0x7fff_ffff, -1]) << 32,
                _ => {}
            }
            case
        })
        .collect()
}

/// Calls that reach every route of every preset, whatever the seed.
fn route_cases() -> Vec<Case> {
    let call = |name: &str, args: [u64; 6]| Case {
        nr: nr_of(name),
        args,
        entry: Entry::Syscall,
    };
    let path = MISSING.as_ptr() as u64;
    let at_fdcwd = libc::AT_FDCWD as u32 as u64;
    let anonymous = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    let (unix, stream) = (libc::AF_UNIX as u64, libc::SOCK_STREAM as u64);
    let mut cases = vec![
        call("getpid", [0; 6]),
        call("read", [NO_FD, 0, 8, 0, 0, 0]),
        call("clone3", [0; 6]),
        call("clone", [libc::CLONE_THREAD as u64, 0, 0, 0, 0, 0]),
        call("clone", [libc::CLONE_SIGHAND as u64, 0, 0, 0, 0, 0]),
        call("kill", [0, 0, 0, 0, 0, 0]),
        call("fcntl", [NO_FD, libc::F_SETOWN as u64, 0, 0, 0, 0]),
        call("fcntl", [NO_FD, libc::F_GETFD as u64, 0, 0, 0, 0]),
        call("openat", [at_fdcwd, path, libc::O_RDONLY as u64, 0, 0, 0]),
        call("openat", [at_fdcwd, path, libc::O_WRONLY as u64, 0, 0, 0]),
        call("openat", [at_fdcwd, path, libc::O_CREAT as u64, 0, 0, 0]),
        call("mmap", [0, 0, libc::PROT_EXEC as u64, anonymous, NO_FD, 0]),
        call("mmap", [0, 0, libc::PROT_READ as u64, anonymous, NO_FD, 0]),
        call("ioctl", [NO_FD, libc::TCGETS, 0, 0, 0, 0]),
        call("ioctl", [NO_FD, libc::TCGETS | 1 << 32, 0, 0, 0, 0]),
        call("socket", [unix, stream, 0, 0, 0, 0]),
        call("socket", [libc::AF_INET6 as u64, 0xfff, 0, 0, 0, 0]),
        call("socket", [1 << 32 | unix, stream, 0, 0, 0, 0]),
        call("prctl", [0x7fff_0002, 0, 0, 0, 0, 0]),
        call("prctl", [0x7fff_0100, 0, 0, 0, 0, 0]),
        call("sendto", [NO_FD, 0, 0, 0, 0, 0]),
        call("connect", [NO_FD, 0, 8, 0, 0, 0]),
        call("prlimit64", [1, libc::RLIMIT_NOFILE as u64, 0, 0, 0, 0]),
        call("execve", [0; 6]),
        // The issue-9 routes: stacked filters, terminal input, leases...
        call("prctl", [22, 0x7fff, 0, 0, 0, 0]),
        call("prctl", [1 << 32 | 22, 0x7fff, 0, 0, 0, 0]),
        call("prctl", [59, 0x7fff, 0, 0, 0, 0]),
        call("ioctl", [NO_FD, libc::TIOCSTI, 0, 0, 0, 0]),
        call("ioctl", [NO_FD, libc::TIOCLINUX | 1 << 32, 0, 0, 0, 0]),
        call("fcntl", [NO_FD, libc::F_SETLEASE as u64, 0, 0, 0, 0]),
        call(
            "fcntl",
            [NO_FD, 1 << 32 | libc::F_SETLEASE as u64, 0, 0, 0, 0],
        ),
        // ...calls aimed at another process, or at the caller (pid 0)...
        call("prlimit64", [0, libc::RLIMIT_NOFILE as u64, 0, 0, 0, 0]),
        call(
            "prlimit64",
            [1 << 32, libc::RLIMIT_NOFILE as u64, 0, 0, 0, 0],
        ),
        call(
            "prlimit64",
            [0x7fff_fff0, libc::RLIMIT_NOFILE as u64, 0, 0, 0, 0],
        ),
        call("setpriority", [0, 0x7fff_fff0, 0x7fff_0000, 0, 0, 0]),
        call("setpriority", [1 << 32, 1 << 32, 0x7fff_0000, 0, 0, 0]),
        call("setpriority", [2, 0, 0x7fff_0000, 0, 0, 0]),
        call("ioprio_set", [1, 0, 0x7fff_0000, 0, 0, 0]),
        call("ioprio_set", [1, 0x7fff_fff0, 0x7fff_0000, 0, 0, 0]),
        call("ioprio_set", [3, 0, 0x7fff_0000, 0, 0, 0]),
        call("sched_setaffinity", [0x7fff_fff0, 0, 0, 0, 0, 0]),
        call("sched_setaffinity", [0, 0, 0, 0, 0, 0]),
        call("sched_setscheduler", [0x7fff_fff0, 0, 0, 0, 0, 0]),
        call("sched_setparam", [0x7fff_fff0, 0, 0, 0, 0, 0]),
        call("sched_setattr", [0x7fff_fff0, 0, 0, 0, 0, 0]),
        call("migrate_pages", [0x7fff_fff0, 0, 0, 0, 0, 0]),
        call("move_pages", [0x7fff_fff0, 0, 0, 0, 0, 0]),
        // ...connections without connect(), and new threads.
        call("socket", [libc::AF_INET as u64, stream, 262, 0, 0, 0]),
        call(
            "socket",
            [libc::AF_INET as u64, stream, 1 << 32 | 262, 0, 0, 0],
        ),
        call("socket", [libc::AF_INET6 as u64, stream, 132, 0, 0, 0]),
        call("socket", [libc::AF_INET as u64, stream, 6, 0, 0, 0]),
        call(
            "socket",
            [libc::AF_INET as u64, libc::SOCK_DGRAM as u64, 0, 0, 0, 0],
        ),
        call("sendto", [NO_FD, 0, 0, 0x2000_0000, 0, 0]),
        call("sendmsg", [NO_FD, 0, 0x2000_0000, 0, 0, 0]),
        call("sendmmsg", [NO_FD, 0, 0, 0x2000_0000, 0, 0]),
        call(
            "clone",
            [(libc::CLONE_THREAD | libc::CLONE_VM) as u64, 0, 0, 0, 0, 0],
        ),
    ];
    let getpid = nr_of("getpid");
    let numbers = [getpid | X32_SYSCALL_BIT, getpid | 1 << 32];
    cases.extend(numbers.iter().chain(UNKNOWN_NRS).map(|&nr| Case {
        nr,
        args: [0; 6],
        entry: Entry::Syscall,
    }));
    cases
}

/// Runs `args` as syscall `nr` with the `syscall` instruction and returns the
/// raw result (`-errno` on failure).
///
/// # Safety
///
/// The call itself must be sound: one of the harmless calls above, or one
/// whose effect on this process the caller owns.
unsafe fn raw_syscall(nr: i64, args: &[u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: the `syscall` instruction reads only the registers given here
    // and clobbers rcx and r11 (declared) besides rax; the caller vouches for
    // what the call does.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Runs syscall `nr` through the 32-bit `int 0x80` entry, with no arguments.
///
/// # Safety
///
/// As for [`raw_syscall`], for the i386 syscall `nr`.
unsafe fn int80_syscall(nr: i64) -> i64 {
    let ret: i64;
    // SAFETY: `int 0x80` reads eax (and the argument registers, unused by the
    // calls made here) and may clear r8 to r11 (declared clobbered).
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inlateout("rax") nr => ret,
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Writes one word to the report pipe; false if it did not go through.
fn report(fd: RawFd, word: i64) -> bool {
    let bytes = word.to_ne_bytes();
    // SAFETY: write reads 8 bytes from a live local array; a bad fd only
    // makes it fail.
    let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    written == bytes.len() as isize
}

fn child_exit(code: i32) -> ! {
    // SAFETY: _exit ends this child at once, running no atexit handlers and
    // touching no state shared with the parent's other threads.
    unsafe { libc::_exit(code) }
}

/// The child's whole life: install `filter` (if any), with its listener fd as
/// the first report, then make each call and report its result.
fn child(filter: Option<&libc::sock_fprog>, cases: &[Case], pipe: RawFd) -> ! {
    if let Some(prog) = filter {
        let no_new_privs = [libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0, 0];
        // SAFETY: PR_SET_NO_NEW_PRIVS only sets a flag on this child's credentials.
        if unsafe { raw_syscall(libc::SYS_prctl, &no_new_privs) } != 0 {
            child_exit(EXIT_SETUP);
        }
        let install = [
            libc::SECCOMP_SET_MODE_FILTER as u64,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            prog as *const libc::sock_fprog as u64,
            0,
            0,
            0,
        ];
        // SAFETY: `prog` and the instructions it points to were built before
        // the fork and live in this child's copy of the parent's memory; the
        // kernel copies them and only confines this child.
        let listener = unsafe { raw_syscall(libc::SYS_seccomp, &install) };
        if listener < 0 || !report(pipe, listener) {
            child_exit(EXIT_SETUP);
        }
    }
    for case in cases {
        let ret = match case.entry {
            // SAFETY: every case comes from the templates, whose calls fail
            // before they change anything, only probe (signal 0, a stat), or
            // change only this child, which exits right after.
            Entry::Syscall => unsafe { raw_syscall(case.nr, &case.args) },
            // SAFETY: the i386 getpid reads and changes nothing.
            Entry::Int80 => unsafe { int80_syscall(case.nr) },
        };
        if !report(pipe, ret) {
            child_exit(EXIT_REPORT);
        }
    }
    child_exit(0)
}

fn last_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// A forked child, killed and reaped if the test gives up on it.
struct Child {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    reaped: bool,
}

impl Child {
    /// Blocks until the child (which has exited: its pidfd said so) is
    /// reaped, and returns its wait status.
    fn reap(&mut self) -> Result<i32, String> {
        let mut status = 0;
        // SAFETY: waitpid writes the status to a live local; the pid is our
        // unreaped child, so it names no one else.
        let got = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        self.reaped = true;
        if got == self.pid {
            Ok(status)
        } else {
            Err(last_error("waitpid"))
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: the pid is our unreaped child, so SIGKILL reaches no one else.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = self.reap();
        }
    }
}

/// Forks a child that runs [`child`]; returns it and the read end of its
/// report pipe (non-blocking).
fn spawn(filter: Option<&libc::sock_fprog>, cases: &[Case]) -> Result<(Child, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into a live local array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(last_error("pipe2"));
    }
    // SAFETY: pipe2 just returned these fds, owned by no one else.
    let read = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: as above.
    let write = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    // SAFETY: the child runs only `child`, which makes raw syscalls on memory
    // built before the fork: no allocation, no lock, no unwinding, so the
    // other threads' state it inherits is never touched.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        child(filter, cases, write.as_raw_fd());
    }
    if pid < 0 {
        return Err(last_error("fork"));
    }
    drop(write);
    // SAFETY: pidfd_open takes plain integers; the pid is our unreaped child.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        let error = last_error("pidfd_open");
        // SAFETY: the pid is our unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        // SAFETY: reaps that child; a null status pointer is allowed.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        return Err(error);
    }
    // SAFETY: pidfd_open just returned this fd, owned by no one else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    Ok((
        Child {
            pid,
            pidfd,
            reaped: false,
        },
        read,
    ))
}

/// Copies the child's fd `fd` (its seccomp listener) into this process.
fn take_fd(pidfd: &OwnedFd, fd: i64) -> Result<OwnedFd, String> {
    // SAFETY: pidfd_getfd takes plain integers and returns a new fd or -1.
    let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if got < 0 {
        return Err(last_error("pidfd_getfd"));
    }
    // SAFETY: pidfd_getfd just returned this fd, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(got as RawFd) })
}

/// Reads every word waiting in the pipe; false once the pipe is at its end.
fn drain(pipe: &OwnedFd, words: &mut Vec<i64>) -> bool {
    loop {
        let mut bytes = [0u8; 8];
        // SAFETY: read writes at most 8 bytes into a live local array.
        let got = unsafe { libc::read(pipe.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len()) };
        match got {
            8 => words.push(i64::from_ne_bytes(bytes)),
            0 => return false,
            // EAGAIN: nothing more for now. (Writes of 8 bytes are atomic.)
            _ => return true,
        }
    }
}

/// Receives one notification, records it and fails the call with
/// [`NOTIFIED_ERRNO`] so that the child goes on.
fn answer(listener: &OwnedFd, seen: &mut Vec<libc::seccomp_data>) -> Result<(), String> {
    let mut notif = libc::seccomp_notif {
        id: 0,
        pid: 0,
        flags: 0,
        data: libc::seccomp_data {
            nr: 0,
            arch: 0,
            instruction_pointer: 0,
            args: [0; 6],
        },
    };
    let fd = listener.as_raw_fd();
    // SAFETY: the kernel fills a zeroed seccomp_notif we own; the fd is a
    // seccomp listener.
    let received = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut notif) };
    if received != 0 {
        return Err(last_error("SECCOMP_IOCTL_NOTIF_RECV"));
    }
    seen.push(notif.data);
    let mut response = libc::seccomp_notif_resp {
        id: notif.id,
        val: 0,
        error: -NOTIFIED_ERRNO,
        flags: 0,
    };
    // SAFETY: the kernel reads a seccomp_notif_resp we own.
    let sent = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut response) };
    if sent != 0 {
        return Err(last_error("SECCOMP_IOCTL_NOTIF_SEND"));
    }
    Ok(())
}

/// What a child did: the words it reported, the notifications it caused,
/// and its wait status.
struct Run {
    words: Vec<i64>,
    notifications: Vec<libc::seccomp_data>,
    status: i32,
}

/// Runs `cases` in one child under `filter`, answering its notifications,
/// for at most `timeout`.
fn run_child(
    filter: Option<&libc::sock_fprog>,
    cases: &[Case],
    timeout: Duration,
) -> Result<Run, String> {
    let (mut child, pipe) = spawn(filter, cases)?;
    let deadline = Instant::now() + timeout;
    let (mut words, mut notifications) = (Vec::new(), Vec::new());
    let mut listener: Option<OwnedFd> = None;
    let (mut want_listener, mut pipe_open) = (filter.is_some(), true);
    let mut no_listener = None;
    loop {
        if want_listener && listener.is_none() {
            if let Some(&fd) = words.first() {
                // A child that died at once (killed by its filter) has no
                // fd to take; one that waits for an answer times out below.
                match take_fd(&child.pidfd, fd) {
                    Ok(fd) => listener = Some(fd),
                    Err(e) => (want_listener, no_listener) = (false, Some(e)),
                }
            }
        }
        let fd_or_off = |on: bool, fd: RawFd| if on { fd } else { -1 };
        let mut polled = [
            fd_or_off(pipe_open, pipe.as_raw_fd()),
            child.pidfd.as_raw_fd(),
            listener
                .as_ref()
                .map_or(-1, |l| fd_or_off(want_listener, l.as_raw_fd())),
        ]
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "the child did not finish within {timeout:?} (reported {words:?}, {} notifications{})",
                notifications.len(),
                no_listener.map_or(String::new(), |e| format!(", {e}"))
            ));
        }
        let millis = left.as_millis().clamp(1, 60_000) as libc::c_int;
        // SAFETY: poll reads and writes an array of 3 pollfds we own.
        if unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, millis) } < 0 {
            return Err(last_error("poll"));
        }
        let [from_pipe, from_pidfd, from_listener] = polled.map(|p| p.revents);
        if from_pipe != 0 {
            pipe_open = drain(&pipe, &mut words);
        }
        if from_listener & libc::POLLIN != 0 {
            if let Some(l) = &listener {
                answer(l, &mut notifications)?;
            }
        } else if from_listener != 0 {
            // POLLHUP: the filter has no task left, so no more notifications.
            want_listener = false;
        }
        if from_pidfd != 0 {
            break;
        }
    }
    drain(&pipe, &mut words);
    let status = child.reap()?;
    Ok(Run {
        words,
        notifications,
        status,
    })
}

/// A syscall's result, as far as it is the same in every child: an errno, or
/// zero, or some positive number (a pid, an fd).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ret {
    Zero,
    Positive,
    Errno(i64),
}

impl Ret {
    fn of(raw: i64) -> Self {
        match raw {
            0 => Ret::Zero,
            r if r > 0 => Ret::Positive,
            r => Ret::Errno(-r),
        }
    }
}

/// What happened to one call, in the kernel or by the interpreter's word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// It returned (ran, or was failed with an errno).
    Returned(Ret),
    /// The listener got a notification for it.
    Notified,
    /// The child died by this signal.
    Killed(i32),
}

/// What the kernel did with the one call `run` made under a filter.
fn observe(run: &Run, case: &Case) -> Result<Outcome, String> {
    if libc::WIFSIGNALED(run.status) {
        return Ok(Outcome::Killed(libc::WTERMSIG(run.status)));
    }
    let &[_listener, ret] = run.words.as_slice() else {
        let why = match libc::WEXITSTATUS(run.status) {
            EXIT_SETUP => "it could not install the filter",
            EXIT_REPORT => "it could not report",
            _ => "it exited",
        };
        return Err(format!("{why}; it reported {:?}", run.words));
    };
    match run.notifications.as_slice() {
        [] => Ok(Outcome::Returned(Ret::of(ret))),
        [seen] => {
            let expected = (case.nr as i32, AUDIT_ARCH_X86_64, case.args);
            let (nr, arch, args) = (seen.nr, seen.arch, seen.args);
            if case.entry == Entry::Syscall && (nr, arch, args) != expected {
                return Err(format!(
                    "notified of nr {nr:#x} arch {arch:#x} args {args:#x?}, not of this call"
                ));
            }
            if ret != -i64::from(NOTIFIED_ERRNO) {
                return Err(format!(
                    "notified, but the call returned {ret}, not the answer"
                ));
            }
            Ok(Outcome::Notified)
        }
        many => Err(format!("{} notifications for one call", many.len())),
    }
}

/// What the kernel does, by the action `word` the program returned, to a
/// call that returns `unfiltered` with no filter.
fn expected(word: u32, unfiltered: Ret) -> Outcome {
    let data = word & SECCOMP_RET_DATA;
    match word & SECCOMP_RET_ACTION_FULL {
        SECCOMP_RET_ALLOW | SECCOMP_RET_LOG => Outcome::Returned(unfiltered),
        SECCOMP_RET_ERRNO => Outcome::Returned(Ret::of(-i64::from(data.min(MAX_ERRNO)))),
        SECCOMP_RET_USER_NOTIF => Outcome::Notified,
        SECCOMP_RET_KILL_PROCESS | SECCOMP_RET_KILL_THREAD | SECCOMP_RET_TRAP => {
            Outcome::Killed(libc::SIGSYS)
        }
        // TRACE with no tracer: the call fails with ENOSYS.
        _ => Outcome::Returned(Ret::Errno(libc::ENOSYS.into())),
    }
}

/// How many cases the interpreter sent down each route.
#[derive(Debug, Default)]
struct Routes {
    allow: usize,
    log: usize,
    errno: usize,
    notify: usize,
    kill: usize,
}

impl Routes {
    fn count(&mut self, word: u32) {
        match word & SECCOMP_RET_ACTION_FULL {
            SECCOMP_RET_ALLOW => self.allow += 1,
            SECCOMP_RET_LOG => self.log += 1,
            SECCOMP_RET_ERRNO => self.errno += 1,
            SECCOMP_RET_USER_NOTIF => self.notify += 1,
            _ => self.kill += 1,
        }
    }
}

fn interpret(filter: &CompiledFilter, case: &Case) -> u32 {
    interp::evaluate(filter, case.nr, &case.args)
        .unwrap_or_else(|e| panic!("the interpreter cannot run the program: {e}"))
}

/// The results of `cases` in one child with no filter, in order.
fn unfiltered(cases: &[Case]) -> Vec<Ret> {
    let run = run_child(None, cases, CASE_TIMEOUT * 2)
        .unwrap_or_else(|e| panic!("the unfiltered child failed: {e}"));
    if let Some(case) = cases.get(run.words.len()) {
        panic!(
            "the unfiltered child stopped at {} (status {:#x})",
            case.describe(),
            run.status
        );
    }
    run.words.into_iter().map(Ret::of).collect()
}

/// The `sock_fprog` for `instructions`, which must outlive it.
fn program(instructions: &[libc::sock_filter]) -> libc::sock_fprog {
    libc::sock_fprog {
        len: u16::try_from(instructions.len()).expect("at most 4096 instructions"),
        // The kernel only reads through this pointer.
        filter: instructions.as_ptr().cast_mut(),
    }
}

/// What the kernel did with each case under `filter`, each in its own
/// child, beside what the case returns with no filter.
struct KernelRuns {
    unfiltered: Vec<Ret>,
    outcomes: Vec<Result<Outcome, String>>,
}

fn run_under(filter: &CompiledFilter, cases: &[Case]) -> KernelRuns {
    let instructions = filter.to_sock_filters();
    let prog = program(&instructions);
    let outcomes = cases
        .iter()
        .map(|case| {
            run_child(Some(&prog), std::slice::from_ref(case), CASE_TIMEOUT)
                .and_then(|run| observe(&run, case))
        })
        .collect();
    KernelRuns {
        unfiltered: unfiltered(cases),
        outcomes,
    }
}

/// The cases where `interpreter`'s word does not predict what the kernel
/// did, and the routes its words took.
fn disagreements(
    runs: &KernelRuns,
    cases: &[Case],
    interpreter: impl Fn(&Case) -> u32,
) -> (Routes, Vec<String>) {
    let mut routes = Routes::default();
    let mut failures = Vec::new();
    for ((case, &unfiltered), got) in cases.iter().zip(&runs.unfiltered).zip(&runs.outcomes) {
        let word = interpreter(case);
        routes.count(word);
        let want = expected(word, unfiltered);
        if got.as_ref() != Ok(&want) {
            failures.push(format!(
                "{}: interpreter {word:#010x} means {want:?}, kernel {got:?} (unfiltered {unfiltered:?})",
                case.describe()
            ));
        }
    }
    (routes, failures)
}

/// Runs every case under `filter` in the kernel and compares with the
/// interpreter; panics with the seed on any difference.
fn check(label: &str, seed: u64, filter: &CompiledFilter, cases: &[Case]) -> Routes {
    let runs = run_under(filter, cases);
    let (routes, failures) = disagreements(&runs, cases, |case| interpret(filter, case));
    let base = base_seed();
    assert!(
        failures.is_empty(),
        "{label}: the kernel and the interpreter disagree on {} of {} calls \
         (seed {seed:#x}; replay with FFB_ORACLE_SEED={base:#x}):\n{}",
        failures.len(),
        cases.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    println!(
        "{label}: {} calls agree (seed {seed:#x}): {routes:?}",
        cases.len()
    );
    routes
}

/// The route cases and `count` calls generated from `seed`.
fn cases_for(seed: u64, count: usize) -> Vec<Case> {
    let mut cases = route_cases();
    cases.extend(generate(&mut Prng::new(seed), count));
    cases
}

/// Compiles `policy` and checks the route cases and `count` generated calls.
fn check_policy(label: &str, policy: &SandboxPolicy, count: usize) -> Routes {
    let seed = seed_for(label);
    let filter = policy
        .compile()
        .unwrap_or_else(|e| panic!("{label} does not compile: {e}"));
    check(label, seed, &filter, &cases_for(seed, count))
}

/// A rule: syscall, action, and at most one condition `(index, op, value)`.
type RuleRow = (&'static str, Action, Option<(u8, CmpOp, u64)>);

/// Adds one rule per row.
fn with_rules(mut policy: SandboxPolicy, rows: &[RuleRow]) -> SandboxPolicy {
    for &(name, action, condition) in rows {
        let conditions = condition
            .map(|(index, op, value)| ArgCondition::new(index, op, value))
            .into_iter()
            .collect();
        let rule = SyscallRule::new(name, action, conditions).expect("a real syscall");
        policy = policy.with_rule(rule).expect("no floor syscall");
    }
    policy
}

/// pure, with errno, log and allow rules on argument conditions of every
/// comparison, some behind the supervised routes (which must still win),
/// errno 0 (success without the call) and errno 5000 (the kernel caps it).
fn conditions_policy() -> SandboxPolicy {
    let accmode = CmpOp::MaskedEq(libc::O_ACCMODE as u64);
    let creat = libc::O_CREAT as u64;
    #[rustfmt::skip]
    let rows = [
        ("openat", Action::Errno(4001), Some((2, accmode, libc::O_WRONLY as u64))),
        ("openat", Action::Log, Some((2, CmpOp::MaskedEq(creat), creat))),
        ("openat", Action::Allow, Some((2, accmode, libc::O_RDONLY as u64))),
        ("socket", Action::Errno(4002), Some((0, CmpOp::Eq, libc::AF_INET6 as u64))),
        ("socket", Action::Allow, Some((0, CmpOp::Lt, 3))),
        ("prctl", Action::Errno(5000), Some((0, CmpOp::Eq, 0x7fff_0002))),
        ("prctl", Action::Errno(0), Some((0, CmpOp::Ge, 0x7fff_0100))),
        ("fcntl", Action::Errno(4003), Some((1, CmpOp::Eq, libc::F_GETFD as u64))),
        ("fcntl", Action::Errno(4004), Some((1, CmpOp::Eq, libc::F_SETOWN as u64))),
        ("kill", Action::Errno(4005), None),
        ("ioctl", Action::Errno(4006), Some((1, CmpOp::Gt, 0x8000))),
        ("connect", Action::Errno(4007), Some((2, CmpOp::Le, 8))),
        ("sendto", Action::Log, Some((2, CmpOp::Ne, 8))),
        ("prlimit64", Action::Errno(4008), Some((0, CmpOp::Ne, 0))),
        ("lseek", Action::Errno(4009), None),
        ("dup", Action::Kill, None),
    ];
    with_rules(SandboxPolicy::pure(), &rows)
}

/// A random policy: preset `k` (in turn), a random default, and rules on the templates'
/// arguments with values from their pools (so that calls hit both ways).
fn generated_policy(rng: &mut Prng, k: u32) -> SandboxPolicy {
    let base = PRESETS[k as usize % PRESETS.len()];
    let mut policy = SandboxPolicy::preset(base).expect("a preset");
    policy.default_action = rng.pick(&[Action::Kill, Action::Errno(4100 + k), Action::Log]);
    for j in 0..3 + rng.below(8) as u32 {
        let tpl = &TEMPLATES[rng.below(TEMPLATES.len())];
        let action = match rng.below(5) {
            0 => Action::Allow,
            1 => Action::Log,
            2 => Action::Kill,
            3 => Action::Errno(rng.pick(&[0, 4095, 4096])),
            _ => Action::Errno(4200 + j),
        };
        let conditions = (0..rng.below(3))
            .filter_map(|_| condition(rng, tpl))
            .collect();
        let Ok(rule) = SyscallRule::new(tpl.name, action, conditions) else {
            continue;
        };
        if let Ok(p) = policy.clone().with_rule(rule) {
            policy = p;
        }
    }
    policy
}

fn condition(rng: &mut Prng, tpl: &Template) -> Option<ArgCondition> {
    let index = rng.below(6);
    if tpl.pools[index].is_empty() || tpl.path == Some(index) {
        return None;
    }
    let value = draw_arg(rng, tpl, index);
    let op = match rng.below(7) {
        0 => CmpOp::Eq,
        1 => CmpOp::Ne,
        2 => CmpOp::Lt,
        3 => CmpOp::Le,
        4 => CmpOp::Gt,
        5 => CmpOp::Ge,
        _ => {
            let mask = rng.pick(&[0xffff_ffff, u64::MAX, 0xff, 0xffff_ffff_0000_0000, value]);
            return Some(ArgCondition::new(
                index as u8,
                CmpOp::MaskedEq(mask),
                value & mask,
            ));
        }
    };
    Some(ArgCondition::new(index as u8, op, value))
}

/// Checks a preset, which must send calls down its allow, errno (clone3)
/// and notification routes.
fn check_preset(name: &str, count: usize) {
    let policy = SandboxPolicy::preset(name).expect("a preset");
    let routes = check_policy(name, &policy, count);
    assert!(
        routes.allow > 0 && routes.errno > 0 && routes.notify > 0,
        "{routes:?}"
    );
}

#[test]
fn pure_agrees_with_the_kernel() {
    check_preset("pure", 150);
}

#[test]
fn fs_read_agrees_with_the_kernel() {
    check_preset("fs-read", 120);
}

#[test]
fn db_client_agrees_with_the_kernel() {
    check_preset("db-client", 120);
}

#[test]
fn argument_conditions_agree_with_the_kernel() {
    let routes = check_policy("conditions", &conditions_policy(), 200);
    let Routes {
        allow,
        log,
        errno,
        notify,
        ..
    } = routes;
    assert!(
        allow > 0 && log > 0 && errno > 0 && notify > 0,
        "{routes:?}"
    );
}

#[test]
fn errno_and_log_defaults_agree_with_the_kernel() {
    let mut errno_default = with_rules(
        SandboxPolicy::fs_read(),
        &[
            ("socket", Action::Log, None),
            ("prctl", Action::Log, Some((0, CmpOp::Lt, 0x7fff_0100))),
            ("sendto", Action::Kill, None),
        ],
    );
    errno_default.default_action = Action::Errno(4011);
    let routes = check_policy("errno-default", &errno_default, 100);
    assert!(routes.errno > 0 && routes.log > 0, "{routes:?}");

    let mut log_default = with_rules(
        SandboxPolicy::pure(),
        &[(
            "prctl",
            Action::Errno(4012),
            Some((0, CmpOp::Gt, 0x7fff_0001)),
        )],
    );
    log_default.default_action = Action::Log;
    let routes = check_policy("log-default", &log_default, 100);
    assert!(routes.errno > 0 && routes.log > 0, "{routes:?}");
}

#[test]
fn generated_policies_agree_with_the_kernel() {
    let seed = seed_for("generated");
    let mut rng = Prng::new(seed);
    let mut total = Routes::default();
    for k in 0..4 {
        let policy = generated_policy(&mut rng, k);
        let label = format!(
            "generated-{k} ({} rules on {})",
            policy.rules.len(),
            policy.name
        );
        let routes = check_policy(&label, &policy, 50);
        total.allow += routes.allow;
        total.log += routes.log;
        total.errno += routes.errno;
        total.notify += routes.notify;
    }
    assert!(
        total.allow > 0 && total.errno > 0 && total.notify > 0,
        "{total:?}"
    );
}

#[test]
fn policy_file_fixtures_agree_with_the_kernel() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/policies");
    for file in [
        "minimal.toml",
        "db-client.toml",
        "risky.toml",
        "docker-small.json",
        "seccompiler.json",
    ] {
        let path = format!("{dir}/{file}");
        let policy = crate::source::load_policy(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        check_policy(file, &policy, 40);
    }
}

#[test]
fn supervised_routes_win_over_allow_rules_in_the_kernel() {
    // Every syscall of the issue-9 routes allowed outright: the floor's
    // commands, calls aimed at other processes, connections without connect()
    // and new threads must still reach the listener.
    let names = [
        "prctl",
        "ioctl",
        "fcntl",
        "prlimit64",
        "setpriority",
        "ioprio_set",
        "sched_setaffinity",
        "sched_setscheduler",
        "sched_setparam",
        "sched_setattr",
        "migrate_pages",
        "move_pages",
        "socket",
        "sendto",
        "sendmsg",
        "sendmmsg",
    ];
    let policy = names
        .iter()
        .try_fold(SandboxPolicy::pure(), |p, n| p.allow(n))
        .expect("no floor syscall");
    let routes = check_policy("supervised-routes", &policy, 150);
    assert!(routes.allow > 0 && routes.notify > 0, "{routes:?}");
    // The interpreter's own word for a few: the kernel agreed with it above.
    let filter = policy.compile().expect("compiles");
    let word = |name: &str, args: [u64; 6]| interp::evaluate(&filter, nr_of(name), &args).unwrap();
    let stream = libc::SOCK_STREAM as u64;
    for (name, args) in [
        ("prctl", [1 << 32 | 22, 0, 0, 0, 0, 0]),
        ("ioctl", [0, libc::TIOCSTI | 1 << 32, 0, 0, 0, 0]),
        ("fcntl", [0, libc::F_SETLEASE as u64, 0, 0, 0, 0]),
        ("prlimit64", [1, 0, 0, 0, 0, 0]),
        ("setpriority", [1, 0, 0, 0, 0, 0]),
        ("ioprio_set", [1, 7, 0, 0, 0, 0]),
        ("socket", [2, stream, 262, 0, 0, 0]),
        ("sendto", [3, 0, 0, 0x2000_0000, 0, 0]),
        ("clone", [libc::CLONE_THREAD as u64, 0, 0, 0, 0, 0]),
    ] {
        assert_eq!(word(name, args), SECCOMP_RET_USER_NOTIF, "{name}{args:?}");
    }
    for (name, args) in [
        ("prctl", [libc::PR_SET_NAME as u64, 0, 0, 0, 0, 0]),
        ("prlimit64", [1 << 32, 0, 0, 0, 0, 0]),
        ("setpriority", [0, 0, 0, 0, 0, 0]),
        ("ioprio_set", [1, 0, 0, 0, 0, 0]),
        ("socket", [2, stream, 6, 0, 0, 0]),
        ("sendto", [3, 0, 0, 0x40, 0, 0]),
    ] {
        assert_eq!(word(name, args), SECCOMP_RET_ALLOW, "{name}{args:?}");
    }
}

#[test]
fn calls_through_the_32_bit_entry_die_by_sigsys() {
    // The interpreter models only the x86_64 entry, so here the kernel alone
    // speaks: every program's first check kills a foreign architecture.
    let int80 = Case {
        nr: I386_GETPID,
        args: [0; 6],
        entry: Entry::Int80,
    };
    let unfiltered = run_child(None, &[int80], CASE_TIMEOUT).expect("an unfiltered child");
    assert!(
        matches!(unfiltered.words.as_slice(), [pid] if *pid > 0),
        "int 0x80 getpid does not work here: {:?}, status {:#x}",
        unfiltered.words,
        unfiltered.status
    );
    let policies = PRESETS
        .iter()
        .map(|name| SandboxPolicy::preset(name).expect("a preset"))
        .chain([conditions_policy()]);
    for policy in policies {
        let instructions = policy.compile().expect("compiles").to_sock_filters();
        let prog = program(&instructions);
        let run = run_child(Some(&prog), &[int80], CASE_TIMEOUT).expect("a filtered child");
        assert_eq!(
            observe(&run, &int80),
            Ok(Outcome::Killed(libc::SIGSYS)),
            "{}: int 0x80",
            policy.name
        );
    }
}

#[test]
fn the_harness_tells_every_route_apart() {
    // A hand-built program: KILL_PROCESS for getpid, ERRNO 4001 for gettid,
    // USER_NOTIF for getppid, ALLOW for the rest.
    let insn = |code: u16, jt: u8, jf: u8, k: u32| {
        u64::from(code) | u64::from(jt) << 16 | u64::from(jf) << 24 | u64::from(k) << 32
    };
    let mut instructions = vec![insn(LD_W_ABS, 0, 0, SECCOMP_DATA_NR)];
    for (name, ret) in [
        ("getpid", SECCOMP_RET_KILL_PROCESS),
        ("gettid", SECCOMP_RET_ERRNO | 4001),
        ("getppid", SECCOMP_RET_USER_NOTIF),
    ] {
        instructions.push(insn(JMP_JEQ_K, 0, 1, nr_of(name) as u32));
        instructions.push(insn(RET_K, 0, 0, ret));
    }
    instructions.push(insn(RET_K, 0, 0, SECCOMP_RET_ALLOW));
    let filter = CompiledFilter { instructions };
    let cases: Vec<Case> = ["getpid", "gettid", "getppid", "getuid"]
        .iter()
        .map(|name| Case {
            nr: nr_of(name),
            args: [0; 6],
            entry: Entry::Syscall,
        })
        .collect();
    let routes = check("hand-built", 0, &filter, &cases);
    assert_eq!(
        (routes.kill, routes.errno, routes.notify, routes.allow),
        (1, 1, 1, 1)
    );

    // A wrong expectation must not pass: each outcome differs from the others.
    let runs = run_under(&filter, &cases);
    for wrong in [
        SECCOMP_RET_ALLOW,
        SECCOMP_RET_ERRNO | 4001,
        SECCOMP_RET_ERRNO | 4002,
        SECCOMP_RET_USER_NOTIF,
        SECCOMP_RET_KILL_PROCESS,
    ] {
        let (_, failures) = disagreements(&runs, &cases, |_| wrong);
        let fits = cases
            .iter()
            .filter(|c| interpret(&filter, c) == wrong)
            .count();
        assert_eq!(
            failures.len(),
            cases.len() - fits,
            "the word {wrong:#x} passes where it is wrong: {failures:#?}"
        );
    }
}

#[test]
fn a_wrong_interpreter_is_caught() {
    // Interpreters with the mistakes a BPF backend is likely to make: the
    // argument halves swapped, the upper halves ignored, the x32 bit ignored.
    let seed = seed_for("wrong");
    let filter = conditions_policy().compile().expect("compiles");
    let cases = cases_for(seed, 60);
    let runs = run_under(&filter, &cases);
    let (_, right) = disagreements(&runs, &cases, |case| interpret(&filter, case));
    assert_eq!(right, Vec::<String>::new(), "seed {seed:#x}");
    let run = |nr: i64, args: [u64; 6]| {
        interp::evaluate(&filter, nr, &args).expect("the interpreter runs the program")
    };
    type Mutant<'a> = &'a dyn Fn(&Case) -> u32;
    let mutants: [(&str, Mutant); 3] = [
        ("halves swapped", &|c| {
            run(c.nr, c.args.map(|a| a.rotate_left(32)))
        }),
        ("upper halves ignored", &|c| {
            run(c.nr, c.args.map(|a| a & 0xffff_ffff))
        }),
        ("x32 bit ignored", &|c| run(c.nr & !X32_SYSCALL_BIT, c.args)),
    ];
    for (mistake, mutant) in mutants {
        let (_, failures) = disagreements(&runs, &cases, mutant);
        assert!(
            !failures.is_empty(),
            "an interpreter with its {mistake} passes (seed {seed:#x})"
        );
    }
}
