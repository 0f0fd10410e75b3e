//! The presets: `pure`, `fs-read` and `db-client`, each the one before it
//! and more. A policy file starts from one (`extends`), so a file can only
//! add to what its preset allows.

use super::floor::{floor_entry_granted_by, threads_only};
use super::model::{
    Action, ArgCondition, CmpOp, FilesystemRules, Limits, NetworkRules, PolicyError, SandboxPolicy,
    SyscallRule,
};

const PROT_EXEC: u64 = libc::PROT_EXEC as u64;
const AT_EMPTY_PATH: u64 = libc::AT_EMPTY_PATH as u64;
/// The bits of `socket(2)`'s type that name the type (the rest are
/// `SOCK_NONBLOCK` and `SOCK_CLOEXEC`).
const SOCK_TYPE_MASK: u64 = 0xf;

/// Named presets: `pure` (the default), `fs-read` (pure and read-only files),
/// `db-client` (fs-read and what a database client library needs) and
/// `python` (fs-read and what an embedded CPython needs).
pub const PRESETS: &[&str] = &["pure", "fs-read", "db-client", "python"];

impl SandboxPolicy {
    /// A preset by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self, PolicyError> {
        match name {
            "pure" => Ok(Self::pure()),
            "fs-read" => Ok(Self::fs_read()),
            "db-client" => Ok(Self::db_client()),
            "python" => Ok(Self::python()),
            other => Err(PolicyError::UnknownPreset(other.to_string())),
        }
    }

    /// The strictest preset and the default: compute, memory, threads, time and
    /// sleep. No files, no network, no processes, no signals to anyone else.
    pub fn pure() -> Self {
        let always = |name: &str| SyscallRule::new(name, Action::Allow, vec![]);
        let when = |name: &str, conditions: Vec<ArgCondition>| {
            SyscallRule::new(name, Action::Allow, conditions)
        };
        let no_exec = || vec![ArgCondition::new(2, CmpOp::MaskedEq(PROT_EXEC), 0)];
        let mut rules: Vec<Result<SyscallRule, PolicyError>> =
            PURE_UNCONDITIONAL.iter().map(|name| always(name)).collect();
        rules.extend([
            when("mmap", no_exec()),
            when("mprotect", no_exec()),
            // Threads only: a clone that shares the address space and thread group.
            when("clone", vec![threads_only()]),
            // fstat(fd) is newfstatat(fd, "", buf, AT_EMPTY_PATH) in glibc.
            when(
                "newfstatat",
                vec![ArgCondition::new(
                    3,
                    CmpOp::MaskedEq(AT_EMPTY_PATH),
                    AT_EMPTY_PATH,
                )],
            ),
            // stdio asks whether stdout is a terminal.
            when("ioctl", vec![ArgCondition::new(1, CmpOp::Eq, libc::TCGETS)]),
            when(
                "ioctl",
                vec![ArgCondition::new(1, CmpOp::Eq, libc::TIOCGWINSZ)],
            ),
            // getrlimit: reading the helper's own limits, never setting them.
            when(
                "prlimit64",
                vec![
                    ArgCondition::new(0, CmpOp::Eq, 0),
                    ArgCondition::new(2, CmpOp::Eq, 0),
                ],
            ),
        ]);
        Self {
            name: "pure".to_string(),
            default_action: Action::Kill,
            rules: rules
                .into_iter()
                .collect::<Result<_, _>>()
                .expect("the pure preset names only real syscalls"),
            limits: Limits::default(),
            filesystem: FilesystemRules::default(),
            network: NetworkRules::default(),
            connect_unix: Vec::new(),
            namespaces: Vec::new(),
            run_as: None,
            warnings: Vec::new(),
            confine: true,
        }
    }

    /// The `fs-read` preset: [`pure`](Self::pure) and read-only file access.
    ///
    /// `open` and `openat` are allowed only when their flags ask for no write
    /// (`O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND` masked equal to 0). Which
    /// paths can be opened is Landlock's business: the policy's
    /// [`FilesystemRules`]; none listed means nothing beyond what the dynamic
    /// loader reads.
    pub fn fs_read() -> Self {
        let mut p = Self::pure();
        p.name = "fs-read".to_string();
        let read_only = |index| {
            vec![ArgCondition::new(
                index,
                CmpOp::MaskedEq(FS_READ_WRITE_FLAGS),
                0,
            )]
        };
        p.push_preset_rule("open", read_only(1));
        p.push_preset_rule("openat", read_only(2));
        for name in FS_READ_UNCONDITIONAL {
            p.push_preset_rule(name, vec![]);
        }
        p
    }

    /// The `db-client` preset: [`fs-read`](Self::fs_read) and what a typical
    /// database client library needs: TCP sockets (`AF_INET` or `AF_INET6`,
    /// `SOCK_STREAM`, protocol 0 or `IPPROTO_TCP`) only, connecting, sending and receiving, polling,
    /// `epoll`, pipes and eventfds, `dup`, and the `ioctl`s `FIONREAD` and
    /// `FIONBIO`. Which TCP ports it reaches is Landlock's business: the
    /// policy's [`NetworkRules`].
    pub fn db_client() -> Self {
        let mut p = Self::fs_read();
        p.name = "db-client".to_string();
        // TCP only: plain stream sockets of the internet families, which
        // Landlock's port rules bound. No UDP, no unix sockets, no raw sockets,
        // no MPTCP or SCTP: Landlock cannot bound where those reach.
        for family in [libc::AF_INET, libc::AF_INET6] {
            for protocol in [0, libc::IPPROTO_TCP] {
                p.push_preset_rule(
                    "socket",
                    vec![
                        ArgCondition::new(0, CmpOp::Eq, family as u64),
                        ArgCondition::new(
                            1,
                            CmpOp::MaskedEq(SOCK_TYPE_MASK),
                            libc::SOCK_STREAM as u64,
                        ),
                        ArgCondition::new(2, CmpOp::Eq, protocol as u64),
                    ],
                );
            }
        }
        for name in DB_CLIENT_UNCONDITIONAL {
            p.push_preset_rule(name, vec![]);
        }
        for request in [libc::FIONREAD, libc::FIONBIO] {
            p.push_preset_rule("ioctl", vec![ArgCondition::new(1, CmpOp::Eq, request)]);
        }
        p
    }

    /// The `python` preset: [`fs-read`](Self::fs_read) and what an embedded
    /// CPython needs to run and to import extension modules: executable
    /// mappings of files (`mmap` with `PROT_EXEC` but never
    /// `MAP_ANONYMOUS`, so the interpreter can load `.so` modules and nothing
    /// can map fresh executable memory; `mprotect` still never adds
    /// `PROT_EXEC`), `getcwd`, `sysinfo`, `statfs`/`fstatfs`, polling and
    /// `pipe2`/`eventfd2` within the helper, `dup`, and the `ioctl`s of
    /// [`pure`](Self::pure) and `FIONREAD`/`FIONBIO`. No network, no new
    /// processes, no exec: a policy that extends it grants those. Which
    /// files the interpreter reads is Landlock's business: the Python bridge
    /// adds its standard library, the allowed modules' distributions and the
    /// module paths to the policy's `[filesystem] read`.
    pub fn python() -> Self {
        let mut p = Self::fs_read();
        p.name = "python".to_string();
        p.push_preset_rule(
            "mmap",
            vec![ArgCondition::new(
                3,
                CmpOp::MaskedEq(libc::MAP_ANONYMOUS as u64),
                0,
            )],
        );
        for name in PYTHON_UNCONDITIONAL {
            p.push_preset_rule(name, vec![]);
        }
        for request in [libc::FIONREAD, libc::FIONBIO] {
            p.push_preset_rule("ioctl", vec![ArgCondition::new(1, CmpOp::Eq, request)]);
        }
        // Thread names (jemalloc's background thread in pyarrow, OpenBLAS).
        for option in [libc::PR_SET_NAME, libc::PR_GET_NAME] {
            p.push_preset_rule(
                "prctl",
                vec![ArgCondition::new(0, CmpOp::Eq, option as u64)],
            );
        }
        p
    }

    /// Adds an allow rule for a preset unless the same rule is already there.
    fn push_preset_rule(&mut self, name: &str, conditions: Vec<ArgCondition>) {
        let rule = SyscallRule::new(name, Action::Allow, conditions)
            .expect("presets name only real syscalls");
        debug_assert!(
            floor_entry_granted_by(&rule).is_none(),
            "{name} is on the floor"
        );
        if !self.rules.contains(&rule) {
            self.rules.push(rule);
        }
    }
}

/// Syscalls the pure preset allows with any arguments.
const PURE_UNCONDITIONAL: &[&str] = &[
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "close",
    "lseek",
    "fstat",
    "munmap",
    "mremap",
    "brk",
    "madvise",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "sched_yield",
    // sched_getcpu() falls back to it where the vDSO cannot answer.
    "getcpu",
    "nanosleep",
    "clock_nanosleep",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "getpid",
    "gettid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "futex",
    "set_robust_list",
    "rseq",
    "exit",
    "exit_group",
    "getrandom",
    "sched_getaffinity",
    "restart_syscall",
    "getrusage",
    "times",
    "uname",
];

/// The `open(2)` flags the `fs-read` preset refuses. (`O_TMPFILE` needs
/// `O_WRONLY` or `O_RDWR`, so it is refused too; `O_DIRECTORY` stays allowed.)
const FS_READ_WRITE_FLAGS: u64 =
    (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) as u64;

/// Syscalls the `fs-read` preset adds with any arguments.
const FS_READ_UNCONDITIONAL: &[&str] = &[
    "read",
    "pread64",
    "lseek",
    "fstat",
    "newfstatat",
    "statx",
    "close",
    "getdents64",
    "readlink",
    "readlinkat",
    "access",
    "faccessat",
    "faccessat2",
    "fcntl",
];

/// Syscalls the `python` preset adds with any arguments.
const PYTHON_UNCONDITIONAL: &[&str] = &[
    // NUMA placement of the helper's own memory (OpenBLAS, at import).
    "mbind",
    "get_mempolicy",
    "set_mempolicy",
    // The old stat calls, which bundled libraries of binary wheels
    // (psycopg2-binary's) still make.
    "stat",
    "lstat",
    "getcwd",
    "sysinfo",
    "statfs",
    "fstatfs",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "pipe2",
    "eventfd2",
    "dup",
    "dup3",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
];

/// Syscalls the `db-client` preset adds with any arguments.
const DB_CLIENT_UNCONDITIONAL: &[&str] = &[
    "connect",
    "getsockopt",
    "setsockopt",
    "getsockname",
    "getpeername",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "shutdown",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "eventfd2",
    "pipe2",
    "getrandom",
    "uname",
    "sysinfo",
    "gettid",
    "sched_getaffinity",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "madvise",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::SECCOMP_RET_USER_NOTIF;
    use crate::sandbox::{Phase, Verdict};
    use crate::syscalls::number_of;
    use crate::test_support::{args, nr, run};

    #[test]
    fn fs_read_opens_read_only() {
        let p = SandboxPolicy::fs_read();
        let f = p.compile().unwrap();
        let ro = args(
            libc::AT_FDCWD as u64,
            0,
            (libc::O_RDONLY | libc::O_CLOEXEC) as u64,
        );
        let dir = args(
            libc::AT_FDCWD as u64,
            0,
            (libc::O_RDONLY | libc::O_DIRECTORY) as u64,
        );
        let wo = args(libc::AT_FDCWD as u64, 0, libc::O_WRONLY as u64);
        let creat = args(
            libc::AT_FDCWD as u64,
            0,
            (libc::O_RDONLY | libc::O_CREAT) as u64,
        );
        assert_eq!(run(&f, nr("openat"), &ro), libc::SECCOMP_RET_ALLOW);
        assert_eq!(run(&f, nr("openat"), &dir), libc::SECCOMP_RET_ALLOW);
        for a in [wo, creat] {
            assert_eq!(run(&f, nr("openat"), &a), SECCOMP_RET_USER_NOTIF);
            assert_eq!(
                p.verdict(nr("openat"), &a, Phase::Serving, |_| false),
                Verdict::Violation
            );
        }
        assert_eq!(
            run(&f, nr("open"), &args(0, libc::O_RDONLY as u64, 0)),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            run(&f, nr("open"), &args(0, libc::O_RDWR as u64, 0)),
            SECCOMP_RET_USER_NOTIF
        );
        for name in [
            "statx",
            "newfstatat",
            "getdents64",
            "readlinkat",
            "faccessat2",
            "fcntl",
            "lseek",
        ] {
            assert_eq!(
                run(&f, nr(name), &args(3, 0, 0)),
                libc::SECCOMP_RET_ALLOW,
                "{name}"
            );
        }
        for name in ["socket", "write_unknown_is_not_a_syscall"] {
            if let Some(n) = number_of(name) {
                assert_eq!(run(&f, n, &args(2, 1, 0)), SECCOMP_RET_USER_NOTIF);
            }
        }
        assert_eq!(
            run(&f, nr("unlink"), &args(0, 0, 0)),
            SECCOMP_RET_USER_NOTIF
        );
    }

    #[test]
    fn db_client_allows_inet_sockets_connect_and_poll() {
        let p = SandboxPolicy::db_client();
        let f = p.compile().unwrap();
        let stream = (libc::SOCK_STREAM | libc::SOCK_CLOEXEC) as u64;
        for family in [libc::AF_INET, libc::AF_INET6] {
            for protocol in [0, libc::IPPROTO_TCP as u64] {
                let a = args(family as u64, stream, protocol);
                assert_eq!(
                    run(&f, nr("socket"), &a),
                    libc::SECCOMP_RET_ALLOW,
                    "{family}"
                );
            }
        }
        // Landlock cannot bound these: unix, UDP, raw, MPTCP, packet.
        for refused in [
            args(libc::AF_UNIX as u64, stream, 0),
            args(libc::AF_INET as u64, libc::SOCK_DGRAM as u64, 0),
            args(libc::AF_INET6 as u64, libc::SOCK_RAW as u64, 6),
            args(libc::AF_INET as u64, stream, 262),
            args(libc::AF_PACKET as u64, libc::SOCK_RAW as u64, 0),
        ] {
            assert_eq!(run(&f, nr("socket"), &refused), SECCOMP_RET_USER_NOTIF);
            assert_eq!(
                p.verdict(nr("socket"), &refused, Phase::Serving, |_| false),
                Verdict::Violation,
                "{refused:?}"
            );
        }
        for name in [
            "connect",
            "poll",
            "ppoll",
            "epoll_pwait",
            "sendto",
            "recvfrom",
            "dup3",
            "pipe2",
            "sysinfo",
        ] {
            assert_eq!(
                run(&f, nr(name), &args(3, 0, 0)),
                libc::SECCOMP_RET_ALLOW,
                "{name}"
            );
        }
        assert_eq!(
            run(&f, nr("ioctl"), &args(3, libc::FIONREAD, 0)),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            run(&f, nr("ioctl"), &args(3, libc::FIONBIO, 0)),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            run(&f, nr("ioctl"), &args(3, 0x5412, 0)),
            SECCOMP_RET_USER_NOTIF
        );
        // Read-only files, as fs-read; still no processes.
        assert_eq!(
            run(&f, nr("openat"), &args(0, 0, libc::O_WRONLY as u64)),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            run(&f, nr("execve"), &args(0, 0, 0)),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(run(&f, nr("bind"), &args(3, 0, 0)), SECCOMP_RET_USER_NOTIF);
    }

    #[test]
    fn presets_allow_every_fcntl_but_locks_reach_the_host_and_are_refused() {
        // Neither preset has a write grant, so no file is one the helper may lock.
        for p in [SandboxPolicy::fs_read(), SandboxPolicy::db_client()] {
            let f = p.compile().unwrap();
            for command in [libc::F_GETLK, libc::F_OFD_GETLK, libc::F_GETFL] {
                let a = args(3, command as u64, 0);
                assert_eq!(run(&f, nr("fcntl"), &a), libc::SECCOMP_RET_ALLOW);
            }
            let refused = Verdict::Fail(libc::ENOLCK as u32);
            for command in [
                libc::F_SETLK,
                libc::F_SETLKW,
                libc::F_OFD_SETLK,
                libc::F_OFD_SETLKW,
            ] {
                // The kernel reads the command's low 32 bits only.
                for word in [command as u64, (1 << 32) | command as u64] {
                    let a = args(3, word, 0x1000);
                    assert_eq!(run(&f, nr("fcntl"), &a), SECCOMP_RET_USER_NOTIF);
                    for phase in [Phase::Loading, Phase::Serving] {
                        assert_eq!(p.verdict(nr("fcntl"), &a, phase, |_| false), refused);
                    }
                }
            }
        }
        // Docker's default allows flock outright; only LOCK_UN stays off the route.
        let open = SandboxPolicy::fs_read().allow("flock").unwrap();
        let f = open.compile().unwrap();
        for op in [libc::LOCK_SH, libc::LOCK_EX, libc::LOCK_EX | libc::LOCK_NB] {
            let a = args(3, op as u64, 0);
            assert_eq!(run(&f, nr("flock"), &a), SECCOMP_RET_USER_NOTIF, "{op}");
            assert_eq!(
                open.verdict(nr("flock"), &a, Phase::Serving, |_| false),
                Verdict::Fail(libc::ENOLCK as u32)
            );
        }
        let unlock = args(3, libc::LOCK_UN as u64, 0);
        assert_eq!(run(&f, nr("flock"), &unlock), libc::SECCOMP_RET_ALLOW);
        // Where the rules refuse the call, the host never looks at the file.
        assert_eq!(
            SandboxPolicy::fs_read().verdict(
                nr("flock"),
                &args(3, libc::LOCK_SH as u64, 0),
                Phase::Serving,
                |_| false
            ),
            Verdict::Violation
        );
    }

    #[test]
    fn presets_keep_the_floor_out() {
        for name in PRESETS {
            let p = SandboxPolicy::preset(name).unwrap();
            for rule in &p.rules {
                assert!(
                    floor_entry_granted_by(rule).is_none(),
                    "{name}: {}",
                    rule.syscall
                );
            }
        }
    }
}
