//! Sandbox policies and their compilation to one seccomp-BPF program.
//!
//! A [`SandboxPolicy`] says which syscalls the extension may make. It compiles
//! to a single BPF program that the helper installs *before* it loads the
//! library, with a user-notification listener that the host holds. Every
//! syscall the policy does not allow is routed either to the policy's default
//! action or to that listener, where the host (never the helper) decides:
//!
//! | route | syscalls | the host's answer |
//! |---|---|---|
//! | x32 | numbers with [`X32_SYSCALL_BIT`] (checked before anything else) | always a violation |
//! | floor | [`FLOOR`]: exec, new processes, ptrace, bpf, io_uring, ... | always a violation |
//! | supervised signals | [`SUPERVISED_SIGNALS`]: kill, tkill, tgkill, rt_(tg)sigqueueinfo | allowed when aimed at the helper itself |
//! | supervised file owners | [`SUPERVISED_OWNERS`]: fcntl `F_SETOWN`/`F_SETOWN_EX`, ioctl `FIOSETOWN`/`SIOCSPGRP` | `F_SETOWN` allowed when it names the helper itself (or no one) |
//! | loading | [`LOADING_SYSCALLS`]: read-only file access and exec mappings that `dlopen` needs | allowed until the helper reports it has loaded |
//! | default | everything else not allowed | the policy's default action |
//!
//! Calls through another architecture's entry (32-bit `int 0x80`) kill the
//! helper in the kernel, and `clone3` fails with `ENOSYS`; neither reaches
//! the host.
//!
//! seccompiler compiles each route as one segment (it supports one match
//! action per filter); [`SandboxPolicy::compile`] chains the segments into one
//! program, so the first segment that matches decides.
//!
//! ```
//! use ffb_policy::sandbox::SandboxPolicy;
//! let policy = SandboxPolicy::preset("pure").unwrap();
//! let filter = policy.compile().unwrap();
//! assert!(filter.len() > 10);
//! ```

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use serde::{Deserialize, Serialize};

pub use ffb_contract::artefacts::{CompiledFilter, Identity, Limits, Namespace, NetworkRules};

use crate::syscalls::{display_name, number_of};

/// `SECCOMP_RET_USER_NOTIF`: the syscall waits while the host's listener decides.
pub const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// Placeholder actions: seccompiler has no user-notification action and no
/// "continue with the next segment", so segments are compiled with these
/// TRACE values and patched afterwards. No policy can ask for TRACE.
const MARK_NOTIFY: u32 = libc::SECCOMP_RET_TRACE | 0xfeed;
const MARK_NEXT_SEGMENT: u32 = libc::SECCOMP_RET_TRACE | 0xfee1;

const CLONE_THREAD: u64 = libc::CLONE_THREAD as u64;
const PROT_EXEC: u64 = libc::PROT_EXEC as u64;
const AT_EMPTY_PATH: u64 = libc::AT_EMPTY_PATH as u64;
/// `open(2)` flags that make an open more than a read.
const OPEN_WRITE_FLAGS: u64 = (libc::O_WRONLY
    | libc::O_RDWR
    | libc::O_CREAT
    | libc::O_TRUNC
    | libc::O_APPEND
    // O_TMPFILE includes O_DIRECTORY's bit; only its own bit means "create".
    | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u64;

/// Errors in building or compiling a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A syscall name that x86_64 does not have.
    #[error("unknown syscall '{0}'")]
    UnknownSyscall(String),
    /// A preset name that does not exist.
    #[error("unknown policy preset '{0}' (presets: {presets})", presets = PRESETS.join(", "))]
    UnknownPreset(String),
    /// A condition on an argument index above 5.
    #[error("syscall '{syscall}': argument index {index} is out of range (0 to 5)")]
    BadArgIndex {
        /// The syscall the rule is for.
        syscall: String,
        /// The index that was given.
        index: u8,
    },
    /// A policy that asks for a syscall the floor forbids.
    #[error("syscall '{syscall}' can never be allowed: {reason}")]
    Floor {
        /// The syscall's name.
        syscall: String,
        /// Why the floor forbids it.
        reason: &'static str,
    },
    /// seccompiler refused the program.
    #[error("the seccomp filter does not compile: {0}")]
    Compile(String),
}

/// Comparison operators for argument conditions (seccompiler's set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    /// `arg == value`
    Eq,
    /// `arg != value`
    Ne,
    /// `arg < value`
    Lt,
    /// `arg <= value`
    Le,
    /// `arg > value`
    Gt,
    /// `arg >= value`
    Ge,
    /// `arg & mask == value`
    MaskedEq(u64),
}

/// One condition on a syscall argument. All conditions of a rule must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgCondition {
    /// Argument index, 0 to 5.
    pub index: u8,
    /// The comparison.
    pub op: CmpOp,
    /// The value compared against (all 64 bits).
    pub value: u64,
}

impl ArgCondition {
    /// A condition `arg[index] <op> value`.
    pub fn new(index: u8, op: CmpOp, value: u64) -> Self {
        Self { index, op, value }
    }

    /// Whether the condition holds for these syscall arguments.
    pub fn holds(&self, args: &[u64; 6]) -> bool {
        let Some(&arg) = args.get(self.index as usize) else {
            return false;
        };
        match self.op {
            CmpOp::Eq => arg == self.value,
            CmpOp::Ne => arg != self.value,
            CmpOp::Lt => arg < self.value,
            CmpOp::Le => arg <= self.value,
            CmpOp::Gt => arg > self.value,
            CmpOp::Ge => arg >= self.value,
            CmpOp::MaskedEq(mask) => arg & mask == self.value,
        }
    }

    fn to_seccompiler(&self) -> Result<SeccompCondition, String> {
        let op = match self.op {
            CmpOp::Eq => SeccompCmpOp::Eq,
            CmpOp::Ne => SeccompCmpOp::Ne,
            CmpOp::Lt => SeccompCmpOp::Lt,
            CmpOp::Le => SeccompCmpOp::Le,
            CmpOp::Gt => SeccompCmpOp::Gt,
            CmpOp::Ge => SeccompCmpOp::Ge,
            CmpOp::MaskedEq(mask) => SeccompCmpOp::MaskedEq(mask),
        };
        SeccompCondition::new(self.index, SeccompCmpArgLen::Qword, op, self.value)
            .map_err(|e| e.to_string())
    }
}

/// What happens to a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The syscall runs.
    Allow,
    /// The syscall fails with this errno; the helper goes on.
    Errno(u32),
    /// The syscall runs and the kernel logs it.
    Log,
    /// The helper is killed and the call returns `policy_violation` naming the syscall.
    Kill,
}

/// A rule: `syscall` gets `action` when every condition holds (always, if there are none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallRule {
    /// The syscall's name.
    pub syscall: String,
    /// Its x86_64 number.
    pub nr: i64,
    /// What happens when the rule matches.
    pub action: Action,
    /// Conditions that must all hold.
    pub conditions: Vec<ArgCondition>,
}

impl SyscallRule {
    /// A rule for the syscall called `name`.
    pub fn new(
        name: &str,
        action: Action,
        conditions: Vec<ArgCondition>,
    ) -> Result<Self, PolicyError> {
        let nr = number_of(name).ok_or_else(|| PolicyError::UnknownSyscall(name.to_string()))?;
        if let Some(c) = conditions.iter().find(|c| c.index > 5) {
            return Err(PolicyError::BadArgIndex {
                syscall: name.to_string(),
                index: c.index,
            });
        }
        Ok(Self {
            syscall: name.to_string(),
            nr,
            action,
            conditions,
        })
    }

    fn matches(&self, nr: i64, args: &[u64; 6]) -> bool {
        self.nr == nr && self.conditions.iter().all(|c| c.holds(args))
    }
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
const F_SETOWN_EX: u64 = 15;
const FIOSETOWN: u64 = 0x8901;
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

/// Where a notification stands in the helper's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Loading the library and resolving symbols.
    Loading,
    /// Serving calls.
    Serving,
}

/// The host's answer to a user notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the syscall run.
    Continue,
    /// Fail the syscall with this errno.
    Fail(u32),
    /// Let it run, and log it.
    Log,
    /// Kill the helper: a policy violation.
    Violation,
}

/// Named presets: `pure` (the default), `fs-read` (pure and read-only files)
/// and `db-client` (fs-read and what a database client library needs).
pub const PRESETS: &[&str] = &["pure", "fs-read", "db-client"];

/// A sandbox policy: which syscalls the extension may make, and the helper's limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPolicy {
    /// A name for messages and audit lines (a preset name or a file path).
    pub name: String,
    /// What happens to a syscall no rule allows. Never [`Action::Allow`].
    pub default_action: Action,
    /// Rules, in the order written.
    pub rules: Vec<SyscallRule>,
    /// Resource limits.
    pub limits: Limits,
    /// Landlock filesystem rules. When the policy confines, empty means
    /// nothing beyond what the dynamic loader reads (the system library
    /// directories, `/etc/ld.so.cache`, the library's own directory).
    pub filesystem: FilesystemRules,
    /// Landlock TCP rules.
    pub network: NetworkRules,
    /// Namespaces the helper is placed in (none unless asked).
    pub namespaces: Vec<Namespace>,
    /// Run the helper as this user and group instead of the host's.
    pub run_as: Option<Identity>,
    /// Non-fatal findings from loading the policy (for example, an imported
    /// profile that allows floor syscalls, which stay denied).
    pub warnings: Vec<String>,
    /// Whether Landlock confines the extension to [`Self::filesystem`] and
    /// [`Self::network`] (plus the system library directories, for loading):
    /// true for ffb's presets and policy files, where no paths listed means no
    /// file reachable; false for imported seccomp-only profiles, which say
    /// nothing of paths or ports.
    #[serde(default = "confined")]
    pub confine: bool,
}

fn confined() -> bool {
    true
}

/// Paths the extension may reach (Landlock). A directory grants what is beneath it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesystemRules {
    /// Readable paths.
    pub read: Vec<std::path::PathBuf>,
    /// Writable (and readable) paths.
    pub write: Vec<std::path::PathBuf>,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        Self::pure()
    }
}

impl SandboxPolicy {
    /// A preset by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self, PolicyError> {
        match name {
            "pure" => Ok(Self::pure()),
            "fs-read" => Ok(Self::fs_read()),
            "db-client" => Ok(Self::db_client()),
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
            when(
                "clone",
                vec![ArgCondition::new(
                    0,
                    CmpOp::MaskedEq(CLONE_THREAD),
                    CLONE_THREAD,
                )],
            ),
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
    /// database client library needs: sockets of the families `AF_UNIX`,
    /// `AF_INET` and `AF_INET6` only, connecting, sending and receiving, polling,
    /// `epoll`, pipes and eventfds, `dup`, and the `ioctl`s `FIONREAD` and
    /// `FIONBIO`. Which TCP ports it reaches is Landlock's business: the
    /// policy's [`NetworkRules`].
    pub fn db_client() -> Self {
        let mut p = Self::fs_read();
        p.name = "db-client".to_string();
        for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
            p.push_preset_rule(
                "socket",
                vec![ArgCondition::new(0, CmpOp::Eq, family as u64)],
            );
        }
        for name in DB_CLIENT_UNCONDITIONAL {
            p.push_preset_rule(name, vec![]);
        }
        for request in [libc::FIONREAD, libc::FIONBIO] {
            p.push_preset_rule("ioctl", vec![ArgCondition::new(1, CmpOp::Eq, request)]);
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

    /// Adds an unconditional allow rule for `syscall`.
    ///
    /// ```
    /// use ffb_policy::sandbox::SandboxPolicy;
    /// let p = SandboxPolicy::pure().allow("capget").unwrap();
    /// assert!(p.allow("nope").is_err());
    /// ```
    pub fn allow(self, syscall: &str) -> Result<Self, PolicyError> {
        self.with_rule(SyscallRule::new(syscall, Action::Allow, vec![])?)
    }

    /// Adds a rule. Rules that allow a floor syscall are rejected.
    pub fn with_rule(mut self, rule: SyscallRule) -> Result<Self, PolicyError> {
        if matches!(rule.action, Action::Allow | Action::Log) {
            if let Some(entry) = floor_entry_granted_by(&rule) {
                return Err(PolicyError::Floor {
                    syscall: rule.syscall.clone(),
                    reason: entry.reason,
                });
            }
        }
        self.rules.push(rule);
        Ok(self)
    }

    /// Compiles the policy, with the floor and the supervised routes, to one BPF program.
    pub fn compile(&self) -> Result<CompiledFilter, PolicyError> {
        if self.default_action == Action::Allow {
            return Err(PolicyError::Compile(
                "a policy must deny by default: its default action cannot be allow".into(),
            ));
        }
        let mut segments: Vec<(BTreeMap<i64, Vec<SeccompRule>>, u32)> = Vec::new();

        // 1. The floor and supervised signals go to the host, whatever the rules say.
        let mut notify = BTreeMap::new();
        for entry in FLOOR {
            let conditions = match entry.only_when {
                Some((index, mask, value)) => {
                    vec![ArgCondition::new(index, CmpOp::MaskedEq(mask), value)]
                }
                None => vec![],
            };
            add_rule(&mut notify, lookup(entry.syscall), &conditions)?;
        }
        for name in SUPERVISED_SIGNALS {
            add_rule(&mut notify, lookup(name), &[])?;
        }
        for (name, index, command) in SUPERVISED_OWNERS {
            // The kernel reads the command as a 32-bit int: whatever the
            // register's upper half holds, the low half decides.
            add_rule(
                &mut notify,
                lookup(name),
                &[ArgCondition::new(
                    *index,
                    CmpOp::MaskedEq(0xffff_ffff),
                    *command,
                )],
            )?;
        }
        segments.push((notify, MARK_NOTIFY));

        // 2. clone3 fails with ENOSYS so glibc falls back to clone, where flags can be checked.
        let mut enosys = BTreeMap::new();
        add_rule(&mut enosys, lookup("clone3"), &[])?;
        segments.push((enosys, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));

        // 3. The policy's own rules, in order, one segment per action.
        for rule in &self.rules {
            let ret = action_ret(rule.action);
            match segments.last_mut() {
                Some((map, last)) if *last == ret => add_rule(map, rule.nr, &rule.conditions)?,
                _ => {
                    let mut map = BTreeMap::new();
                    add_rule(&mut map, rule.nr, &rule.conditions)?;
                    segments.push((map, ret));
                }
            }
        }

        // 4. What loading needs goes to the host, which allows it only while loading.
        let mut loading = BTreeMap::new();
        for name in LOADING_SYSCALLS {
            add_rule(&mut loading, lookup(name), &[])?;
        }
        segments.push((loading, MARK_NOTIFY));

        chain_segments(segments, action_ret(self.default_action))
    }

    /// The host's answer to a notification for syscall `nr` with `args`.
    ///
    /// `aimed_at_self(arg)` tells whether a signal's target (a pid or tid) is the
    /// helper itself; `aimed_at_self(0)` whether the helper still leads its own
    /// process group (the target of `kill(0, ...)`). Only what the compiled program routes to the listener
    /// reaches this function, so it never needs to consult the allow rules.
    pub fn verdict(
        &self,
        nr: i64,
        args: &[u64; 6],
        phase: Phase,
        aimed_at_self: impl Fn(i64) -> bool,
    ) -> Verdict {
        let name = display_name(nr);
        if floor_entry_for_call(nr, args).is_some() || nr & X32_SYSCALL_BIT != 0 {
            return Verdict::Violation;
        }
        if let Some((_, _, command)) = supervised_owner_call(&name, args) {
            // F_SETOWN takes a pid (or -pgid) as an integer; the others take a
            // pointer the host could only read racily, so they are refused.
            let owner = args[2] as u32 as i32 as i64;
            let is_self = *command == libc::F_SETOWN as u64
                && (owner == 0 || aimed_at_self(owner) || aimed_at_self(-owner));
            return if is_self {
                Verdict::Continue
            } else {
                Verdict::Violation
            };
        }
        if SUPERVISED_SIGNALS.contains(&name.as_str()) {
            // kill(pid), tkill(tid), tgkill(tgid, ...), rt_(tg)sigqueueinfo(tgid, ...):
            // the target is always argument 0. kill(0, sig) is the caller's own group.
            // The target is a C int: the register's upper half means nothing.
            let target = args[0] as u32 as i32 as i64;
            // `aimed_at_self(0)` asks whether the helper's process group is
            // still only the helper (it leads it); kill(0) signals that group.
            let is_self = match name.as_str() {
                "kill" => aimed_at_self(target) || (target < 0 && aimed_at_self(-target)),
                _ => target != 0 && aimed_at_self(target),
            };
            return if is_self && target != -1 {
                Verdict::Continue
            } else {
                Verdict::Violation
            };
        }
        if phase == Phase::Loading && loading_permits(&name, args) {
            return Verdict::Continue;
        }
        // An explicit rule may have decided (e.g. an errno rule) before the loading
        // route; otherwise the default action applies.
        let action = self
            .rules
            .iter()
            .find(|r| r.matches(nr, args))
            .map_or(self.default_action, |r| r.action);
        match action {
            Action::Allow => Verdict::Continue,
            Action::Errno(e) => Verdict::Fail(e),
            Action::Log => Verdict::Log,
            Action::Kill => Verdict::Violation,
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

fn loading_permits(name: &str, args: &[u64; 6]) -> bool {
    match name {
        "open" => args[1] & OPEN_WRITE_FLAGS == 0,
        "openat" => args[2] & OPEN_WRITE_FLAGS == 0,
        other => LOADING_SYSCALLS.contains(&other),
    }
}

/// The floor entry that forbids this concrete call, if any.
pub fn floor_entry_for_call(nr: i64, args: &[u64; 6]) -> Option<&'static FloorEntry> {
    FLOOR.iter().find(|e| {
        number_of(e.syscall) == Some(nr)
            && e.only_when
                .is_none_or(|(i, mask, value)| args[i as usize] & mask == value)
    })
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

fn lookup(name: &str) -> i64 {
    number_of(name).unwrap_or_else(|| panic!("built-in syscall list names unknown '{name}'"))
}

fn action_ret(action: Action) -> u32 {
    match action {
        Action::Allow => libc::SECCOMP_RET_ALLOW,
        Action::Errno(e) => libc::SECCOMP_RET_ERRNO | (e & libc::SECCOMP_RET_DATA),
        Action::Log => libc::SECCOMP_RET_LOG,
        Action::Kill => MARK_NOTIFY,
    }
}

fn add_rule(
    map: &mut BTreeMap<i64, Vec<SeccompRule>>,
    nr: i64,
    conditions: &[ArgCondition],
) -> Result<(), PolicyError> {
    // seccompiler reads an empty chain as "unconditional", which absorbs every
    // conditional rule for the same syscall.
    if conditions.is_empty() {
        map.insert(nr, vec![]);
        return Ok(());
    }
    if map.get(&nr).is_some_and(Vec::is_empty) {
        return Ok(());
    }
    let conditions = conditions
        .iter()
        .map(ArgCondition::to_seccompiler)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PolicyError::Compile)?;
    let rule = SeccompRule::new(conditions).map_err(|e| PolicyError::Compile(e.to_string()))?;
    map.entry(nr).or_default().push(rule);
    Ok(())
}

/// Chains segments into one program: a segment that does not match jumps to the next.
fn chain_segments(
    segments: Vec<(BTreeMap<i64, Vec<SeccompRule>>, u32)>,
    default_ret: u32,
) -> Result<CompiledFilter, PolicyError> {
    let mut compiled: Vec<BpfProgram> = Vec::new();
    for (rules, ret) in segments.into_iter().filter(|(rules, _)| !rules.is_empty()) {
        let filter = SeccompFilter::new(
            rules,
            seccompiler_action(MARK_NEXT_SEGMENT),
            seccompiler_action(ret),
            TargetArch::x86_64,
        )
        .map_err(|e| PolicyError::Compile(e.to_string()))?;
        compiled
            .push(BpfProgram::try_from(filter).map_err(|e| PolicyError::Compile(e.to_string()))?);
    }
    // Before any segment: x32-ABI numbers go straight to the host, so that no
    // rule written for x86_64 numbers can be bypassed through them.
    let mut program: Vec<sock_filter> = vec![
        sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 4, // seccomp_data.arch
        },
        sock_filter {
            code: JEQ_K,
            jt: 1,
            jf: 0,
            k: AUDIT_ARCH_X86_64,
        },
        sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_KILL_PROCESS,
        },
        sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0, // seccomp_data.nr
        },
        sock_filter {
            code: JSET_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT as u32,
        },
        sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: MARK_NOTIFY,
        },
    ];
    for segment in compiled {
        let end = program.len() + segment.len();
        for insn in segment {
            let pc = program.len();
            if insn.code == RET_K && insn.k == MARK_NEXT_SEGMENT {
                program.push(sock_filter {
                    code: JA,
                    jt: 0,
                    jf: 0,
                    k: (end - (pc + 1)) as u32,
                });
            } else {
                program.push(insn);
            }
        }
    }
    program.push(sock_filter {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: default_ret,
    });
    for insn in &mut program {
        if insn.code == RET_K && insn.k == MARK_NOTIFY {
            insn.k = SECCOMP_RET_USER_NOTIF;
        }
    }
    if program.len() > BPF_MAX_INSNS {
        return Err(PolicyError::Compile(format!(
            "{} BPF instructions is more than the kernel's 4096",
            program.len()
        )));
    }
    Ok(CompiledFilter {
        instructions: program
            .into_iter()
            .map(|i| {
                u64::from(i.code)
                    | u64::from(i.jt) << 16
                    | u64::from(i.jf) << 24
                    | u64::from(i.k) << 32
            })
            .collect(),
    })
}

const BPF_MAX_INSNS: usize = 4096;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K

fn seccompiler_action(ret: u32) -> SeccompAction {
    let data = ret & libc::SECCOMP_RET_DATA;
    match ret & libc::SECCOMP_RET_ACTION_FULL {
        libc::SECCOMP_RET_ALLOW => SeccompAction::Allow,
        libc::SECCOMP_RET_ERRNO => SeccompAction::Errno(data),
        libc::SECCOMP_RET_LOG => SeccompAction::Log,
        libc::SECCOMP_RET_TRACE => SeccompAction::Trace(data),
        libc::SECCOMP_RET_KILL_PROCESS => SeccompAction::KillProcess,
        _ => SeccompAction::KillThread,
    }
}

/// The BPF interpreter (moving to the BPF backend).
pub trait Evaluate {
    /// Runs the program on one syscall, as the kernel would, and returns the
    /// action word.
    fn evaluate(&self, nr: i64, args: &[u64; 6]) -> u32;
}

impl Evaluate for CompiledFilter {
    /// Runs the program on one syscall, as the kernel would, and returns the
    /// action word. For tests and `policy explain`; the kernel is the authority.
    fn evaluate(&self, nr: i64, args: &[u64; 6]) -> u32 {
        let mut data = [0u32; 16];
        data[0] = nr as u32;
        data[1] = AUDIT_ARCH_X86_64;
        for (i, a) in args.iter().enumerate() {
            data[4 + 2 * i] = *a as u32;
            data[5 + 2 * i] = (*a >> 32) as u32;
        }
        let prog = self.to_sock_filters();
        let (mut acc, mut pc) = (0u32, 0usize);
        while let Some(insn) = prog.get(pc) {
            pc += 1;
            let k = insn.k;
            match insn.code {
                0x20 => acc = data.get((k / 4) as usize).copied().unwrap_or(0), // LD W ABS
                0x06 => return k,                                               // RET K
                0x05 => pc += k as usize,                                       // JA
                0x15 | 0x25 | 0x35 | 0x45 => {
                    let taken = match insn.code {
                        0x15 => acc == k,
                        0x25 => acc > k,
                        0x35 => acc >= k,
                        _ => acc & k != 0,
                    };
                    pc += if taken { insn.jt } else { insn.jf } as usize;
                }
                0x54 => acc &= k, // ALU AND K
                other => panic!("unexpected BPF opcode {other:#x} at {}", pc - 1),
            }
        }
        panic!("BPF program fell off its end")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nr(name: &str) -> i64 {
        number_of(name).unwrap()
    }

    const NONE: [u64; 6] = [0; 6];

    #[test]
    fn pure_allows_the_call_loop_and_routes_the_rest_to_the_host() {
        let f = SandboxPolicy::pure().compile().unwrap();
        for name in [
            "read",
            "write",
            "futex",
            "exit_group",
            "getrandom",
            "munmap",
        ] {
            assert_eq!(
                f.evaluate(nr(name), &NONE),
                libc::SECCOMP_RET_ALLOW,
                "{name}"
            );
        }
        for name in [
            "openat",
            "socket",
            "execve",
            "ptrace",
            "bpf",
            "io_uring_setup",
            "kill",
        ] {
            assert_eq!(
                f.evaluate(nr(name), &NONE),
                SECCOMP_RET_USER_NOTIF,
                "{name}"
            );
        }
        assert_eq!(
            f.evaluate(nr("clone3"), &NONE),
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
    }

    #[test]
    fn clone_is_allowed_only_for_threads() {
        let f = SandboxPolicy::pure().compile().unwrap();
        let thread = [CLONE_THREAD | libc::CLONE_VM as u64, 0, 0, 0, 0, 0];
        let process = [libc::SIGCHLD as u64, 0, 0, 0, 0, 0];
        assert_eq!(f.evaluate(nr("clone"), &thread), libc::SECCOMP_RET_ALLOW);
        assert_eq!(f.evaluate(nr("clone"), &process), SECCOMP_RET_USER_NOTIF);
    }

    #[test]
    fn exec_mappings_are_not_allowed_after_loading() {
        let p = SandboxPolicy::pure();
        let f = p.compile().unwrap();
        let rw = [
            0,
            4096,
            (libc::PROT_READ | libc::PROT_WRITE) as u64,
            0,
            0,
            0,
        ];
        let rx = [0, 4096, (libc::PROT_READ | libc::PROT_EXEC) as u64, 0, 0, 0];
        assert_eq!(f.evaluate(nr("mmap"), &rw), libc::SECCOMP_RET_ALLOW);
        assert_eq!(f.evaluate(nr("mmap"), &rx), SECCOMP_RET_USER_NOTIF);
        assert_eq!(
            p.verdict(nr("mmap"), &rx, Phase::Loading, |_| false),
            Verdict::Continue
        );
        assert_eq!(
            p.verdict(nr("mmap"), &rx, Phase::Serving, |_| false),
            Verdict::Violation
        );
    }

    #[test]
    fn loading_may_only_open_for_reading() {
        let p = SandboxPolicy::pure();
        let read = [
            0,
            0,
            libc::O_RDONLY as u64 | libc::O_CLOEXEC as u64,
            0,
            0,
            0,
        ];
        let write = [0, 0, libc::O_WRONLY as u64, 0, 0, 0];
        assert_eq!(
            p.verdict(nr("openat"), &read, Phase::Loading, |_| false),
            Verdict::Continue
        );
        assert_eq!(
            p.verdict(nr("openat"), &write, Phase::Loading, |_| false),
            Verdict::Violation
        );
        assert_eq!(
            p.verdict(nr("openat"), &read, Phase::Serving, |_| false),
            Verdict::Violation
        );
    }

    #[test]
    fn signals_pass_only_when_aimed_at_the_helper() {
        let p = SandboxPolicy::pure();
        let me = 4242;
        let is_me = |t: i64| t == me || t == 0;
        let at = |t: i64| [t as u64, libc::SIGABRT as u64, 0, 0, 0, 0];
        assert_eq!(
            p.verdict(nr("tgkill"), &at(me), Phase::Serving, is_me),
            Verdict::Continue
        );
        assert_eq!(
            p.verdict(nr("kill"), &at(0), Phase::Serving, is_me),
            Verdict::Continue
        );
        // A helper that joined another process group no longer owns kill(0).
        let left_its_group = |t: i64| t == me;
        assert_eq!(
            p.verdict(nr("kill"), &at(0), Phase::Serving, left_its_group),
            Verdict::Violation
        );
        assert_eq!(
            p.verdict(nr("kill"), &at(1), Phase::Serving, is_me),
            Verdict::Violation
        );
        assert_eq!(
            p.verdict(nr("kill"), &at(-1), Phase::Serving, is_me),
            Verdict::Violation
        );
        assert_eq!(
            p.verdict(nr("tgkill"), &at(7), Phase::Serving, is_me),
            Verdict::Violation
        );
    }

    #[test]
    fn naming_another_process_as_a_file_owner_is_a_violation() {
        let p = SandboxPolicy::pure();
        let f = p.compile().unwrap();
        let me = 4242;
        let is_me = |t: i64| t == me;
        let setown = |owner: i64| [3, libc::F_SETOWN as u64, owner as u64, 0, 0, 0];
        assert_eq!(f.evaluate(nr("fcntl"), &setown(1)), SECCOMP_RET_USER_NOTIF);
        assert_eq!(
            p.verdict(nr("fcntl"), &setown(1), Phase::Loading, is_me),
            Verdict::Violation
        );
        assert_eq!(
            p.verdict(nr("fcntl"), &setown(me), Phase::Serving, is_me),
            Verdict::Continue
        );
        assert_eq!(
            p.verdict(nr("fcntl"), &setown(-me), Phase::Serving, is_me),
            Verdict::Continue
        );
        let ex = [3, F_SETOWN_EX, 0x1000, 0, 0, 0];
        assert_eq!(
            p.verdict(nr("fcntl"), &ex, Phase::Loading, is_me),
            Verdict::Violation
        );
        let fioset = [3, FIOSETOWN, 0x1000, 0, 0, 0];
        assert_eq!(
            p.verdict(nr("ioctl"), &fioset, Phase::Serving, is_me),
            Verdict::Violation
        );
        // Even a policy that allows every fcntl keeps the owner commands supervised.
        let open = SandboxPolicy::pure()
            .allow("fcntl")
            .unwrap()
            .compile()
            .unwrap();
        assert_eq!(
            open.evaluate(nr("fcntl"), &setown(1)),
            SECCOMP_RET_USER_NOTIF
        );
        // The kernel reads the command's low 32 bits only.
        let disguised = [3, (1 << 32) | libc::F_SETOWN as u64, 1, 0, 0, 0];
        assert_eq!(
            open.evaluate(nr("fcntl"), &disguised),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            p.verdict(nr("fcntl"), &disguised, Phase::Serving, is_me),
            Verdict::Violation
        );
        let getfl = [3, libc::F_GETFL as u64, 0, 0, 0, 0];
        assert_eq!(open.evaluate(nr("fcntl"), &getfl), libc::SECCOMP_RET_ALLOW);
    }

    #[test]
    fn x32_numbers_never_match_a_rule() {
        let p = SandboxPolicy::pure();
        let f = p.compile().unwrap();
        let x32_read = X32_SYSCALL_BIT; // read is 0 in the x32 table too
        assert_eq!(f.evaluate(x32_read, &NONE), SECCOMP_RET_USER_NOTIF);
        assert_eq!(
            p.verdict(x32_read, &NONE, Phase::Loading, |_| false),
            Verdict::Violation
        );
        let mut log = SandboxPolicy::pure();
        log.default_action = Action::Log;
        assert_eq!(
            log.compile().unwrap().evaluate(x32_read | 59, &NONE),
            SECCOMP_RET_USER_NOTIF
        );
        let mut allow = SandboxPolicy::pure();
        allow.default_action = Action::Allow;
        assert!(allow.compile().is_err());
    }

    #[test]
    fn the_floor_cannot_be_granted() {
        for name in [
            "execve", "ptrace", "bpf", "mount", "fork", "clone", "seccomp",
        ] {
            let err = SandboxPolicy::pure().allow(name).unwrap_err();
            assert!(matches!(err, PolicyError::Floor { .. }), "{name}: {err}");
        }
        let thread_only = SyscallRule::new(
            "clone",
            Action::Allow,
            vec![ArgCondition::new(
                0,
                CmpOp::MaskedEq(CLONE_THREAD),
                CLONE_THREAD,
            )],
        )
        .unwrap();
        assert!(SandboxPolicy::pure().with_rule(thread_only).is_ok());
    }

    #[test]
    fn errno_rules_and_defaults_compile_to_their_actions() {
        let mut p = SandboxPolicy::pure()
            .with_rule(
                SyscallRule::new("socket", Action::Errno(libc::EACCES as u32), vec![]).unwrap(),
            )
            .unwrap();
        p.default_action = Action::Errno(libc::EPERM as u32);
        let f = p.compile().unwrap();
        assert_eq!(
            f.evaluate(nr("socket"), &NONE),
            libc::SECCOMP_RET_ERRNO | libc::EACCES as u32
        );
        assert_eq!(
            f.evaluate(nr("mkdir"), &NONE),
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32
        );
        // The floor still reaches the host, whatever the default.
        assert_eq!(f.evaluate(nr("execve"), &NONE), SECCOMP_RET_USER_NOTIF);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            SandboxPolicy::pure().allow("frobnicate").unwrap_err(),
            PolicyError::UnknownSyscall("frobnicate".into())
        );
        assert!(SandboxPolicy::preset("nope").is_err());
    }
}
