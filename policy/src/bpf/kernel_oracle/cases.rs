//! The calls the oracle makes: a seeded generator over templates of calls
//! that are harmless if the kernel lets them run, and fixed cases that reach
//! every route.

use super::*;

/// A small deterministic PRNG (xorshift64*).
pub(super) struct Prng(pub(super) u64);

impl Prng {
    pub(super) fn new(seed: u64) -> Self {
        // xorshift never leaves the state 0.
        Prng(seed | 1)
    }

    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// An upper half for a 32-bit argument: mostly zero, sometimes the
    /// values that trip a compiler that compares only one half.
    pub(super) fn upper(&mut self) -> u64 {
        self.pick(&[0, 0, 0, 1, 0x8000_0000, 0xffff_ffff]) << 32
    }
}

/// `FFB_ORACLE_SEED` (decimal or `0x` hex), or the default.
pub(super) fn base_seed() -> u64 {
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
pub(super) fn seed_for(label: &str) -> u64 {
    label.bytes().fold(base_seed(), |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How a call enters the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Entry {
    /// The `syscall` instruction: `AUDIT_ARCH_X86_64`.
    Syscall,
    /// `int 0x80`: the 32-bit entry, `AUDIT_ARCH_I386`.
    Int80,
}

/// One generated call.
#[derive(Clone, Copy, Debug)]
pub(super) struct Case {
    pub(super) nr: i64,
    pub(super) args: [u64; 6],
    pub(super) entry: Entry,
}

impl Case {
    pub(super) fn describe(&self) -> String {
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
pub(super) struct Template {
    pub(super) name: &'static str,
    pub(super) pools: [&'static [u64]; 6],
    pub(super) wide: u8,
    pub(super) path: Option<usize>,
}

pub(super) const fn t(name: &'static str, pools: [&'static [u64]; 6], wide: u8) -> Template {
    Template {
        name,
        pools,
        wide,
        path: None,
    }
}

pub(super) const fn with_path(
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

pub(super) const N: &[u64] = &[];
pub(super) const ZERO: &[u64] = &[0];
pub(super) const JUNK: &[u64] = &[0, 7, u64::MAX];
/// fd -1, as the kernel reads it.
pub(super) const NO_FD: u64 = 0xffff_ffff;
/// fds no process has open: -1, and numbers above any fd limit.
pub(super) const BAD_FD: &[u64] = &[NO_FD, 0x7fff_ffff, 1_000_000];
pub(super) const COUNT: &[u64] = &[0, 8, 4096];
pub(super) const LENS: &[u64] = &[0, 4096];
pub(super) const WHENCE: &[u64] = &[0, 1, 2, 9];
/// F_DUPFD .. F_SETOWN_EX, and F_SETLEASE (1024, on the floor).
pub(super) const FCNTL_CMD: &[u64] = &[0, 1, 2, 3, 8, 9, 15, 1024];
pub(super) const IOCTL_CMD: &[u64] = &[
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
pub(super) const PIDS: &[u64] = &[0, 1, 0xffff_ffff, 0x7fff_fff0];
pub(super) const TIDS: &[u64] = &[1, 0x7fff_fff0];
pub(super) const NO_PID: &[u64] = &[0x7fff_fff0];
pub(super) const DIRFD: &[u64] = &[libc::AT_FDCWD as u32 as u64, 0xffff_ffff];
pub(super) const OPEN_FLAGS: &[u64] = &[
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
pub(super) const MODES: &[u64] = &[0, 0o644];
pub(super) const STAT_FLAGS: &[u64] = &[
    0,
    libc::AT_EMPTY_PATH as u64,
    libc::AT_SYMLINK_NOFOLLOW as u64,
    (libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW) as u64,
];
pub(super) const PROTS: &[u64] = &[
    0,
    libc::PROT_READ as u64,
    libc::PROT_WRITE as u64,
    libc::PROT_EXEC as u64,
    (libc::PROT_READ | libc::PROT_EXEC) as u64,
    (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64,
];
pub(super) const MMAP_ADDR: &[u64] = &[0, 0x10000];
pub(super) const MMAP_FLAGS: &[u64] = &[
    (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64,
    libc::MAP_SHARED as u64,
    (libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64,
];
/// Not page-aligned: mprotect and munmap refuse them first.
pub(super) const UNALIGNED: &[u64] = &[1, 0x1001];
/// Flags clone refuses with EINVAL before it copies anything: a thread
/// without shared signal handlers, shared handlers without shared memory, a
/// new mount namespace sharing the filesystem root.
pub(super) const CLONE_FLAGS: &[u64] = &[
    libc::CLONE_THREAD as u64,
    libc::CLONE_SIGHAND as u64,
    (libc::CLONE_NEWNS | libc::CLONE_FS) as u64,
    (libc::CLONE_THREAD | libc::CLONE_VM) as u64,
    (libc::CLONE_SIGHAND | libc::CLONE_SETTLS) as u64,
    (libc::CLONE_THREAD | libc::CLONE_FILES) as u64,
];
pub(super) const DOMAINS: &[u64] = &[
    libc::AF_UNIX as u64,
    libc::AF_INET as u64,
    libc::AF_INET6 as u64,
    9999,
];
pub(super) const SOCK_TYPES: &[u64] = &[libc::SOCK_STREAM as u64, libc::SOCK_DGRAM as u64, 0xfff];
pub(super) const ADDR_LEN: &[u64] = &[0, 8, 16];
/// prctl options no kernel has, and the floor's PR_SET_SECCOMP (22) and
/// PR_SET_SYSCALL_USER_DISPATCH (59), which with zero arguments only fail
/// (mode 0) or switch dispatch off.
pub(super) const PRCTL_OPT: &[u64] = &[0x7fff_0001, 0x7fff_0002, 0x7fff_0100, 0x7fff_ff00, 22, 59];
/// setpriority's and ioprio_set's `which`: process, group, user, and none.
pub(super) const WHICH: &[u64] = &[0, 1, 2, 3, 99];
/// Nice values and I/O priorities no call can set (out of range).
pub(super) const BAD_PRIO: &[u64] = &[0x7fff_0000];
/// Send flags: none, MSG_DONTWAIT, MSG_FASTOPEN.
pub(super) const SEND_FLAGS: &[u64] = &[0, 0x40, 0x2000_0000];
pub(super) const PROTOCOLS: &[u64] = &[0, 6, 17, 132, 262];
pub(super) const PRLIMIT_PID: &[u64] = &[0, 1, 0x7fff_fff0];
pub(super) const RLIMIT_RES: &[u64] = &[libc::RLIMIT_NOFILE as u64, 999];
/// NULL, or an address that faults.
pub(super) const NEW_LIMIT: &[u64] = &[0, 1];
/// PTRACE_PEEKDATA and PTRACE_GETREGS, never PTRACE_TRACEME (0).
pub(super) const PTRACE_REQ: &[u64] = &[2, 12];

/// The calls the generator draws from.
pub(super) static TEMPLATES: &[Template] = &[
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
pub(super) const UNKNOWN_NRS: &[i64] = &[1000, 999, 512, 0x3fff_ffff, -1];

pub(super) fn nr_of(name: &str) -> i64 {
    number_of(name).unwrap_or_else(|| panic!("unknown syscall {name}"))
}

/// A value for argument `index` of `tpl`.
pub(super) fn draw_arg(rng: &mut Prng, tpl: &Template, index: usize) -> u64 {
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

pub(super) fn draw_call(rng: &mut Prng, tpl: &Template) -> Case {
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
pub(super) fn generate(rng: &mut Prng, count: usize) -> Vec<Case> {
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
pub(super) fn route_cases() -> Vec<Case> {
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
        // ...locks, whose setting commands the host checks...
        call("fcntl", [NO_FD, libc::F_SETLK as u64, 0, 0, 0, 0]),
        call(
            "fcntl",
            [NO_FD, 1 << 32 | libc::F_OFD_SETLKW as u64, 0, 0, 0, 0],
        ),
        call("fcntl", [NO_FD, libc::F_OFD_GETLK as u64, 0, 0, 0, 0]),
        call("flock", [NO_FD, libc::LOCK_SH as u64, 0, 0, 0, 0]),
        call(
            "flock",
            [NO_FD, (libc::LOCK_EX | libc::LOCK_NB) as u64, 0, 0, 0, 0],
        ),
        call("flock", [NO_FD, libc::LOCK_UN as u64, 0, 0, 0, 0]),
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
