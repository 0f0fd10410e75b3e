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
//! | floor | [`FLOOR`]: exec, new processes, ptrace, bpf, io_uring, stacked filters, `TIOCSTI`, leases, ... | always a violation |
//! | supervised signals | [`SUPERVISED_SIGNALS`]: kill, tkill, tgkill, rt_(tg)sigqueueinfo | allowed when aimed at the helper itself |
//! | supervised file owners | [`SUPERVISED_OWNERS`]: fcntl `F_SETOWN`/`F_SETOWN_EX`, ioctl `FIOSETOWN`/`SIOCSPGRP` | `F_SETOWN` allowed when it names the helper itself (or no one) |
//! | supervised targets | [`SUPERVISED_TARGETS`]: prlimit64, setpriority, ioprio_set, sched_set{affinity,scheduler,param,attr}, migrate_pages, move_pages aimed at another process | allowed (then the policy decides) only when aimed at the helper itself |
//! | supervised locks | [`SUPERVISED_LOCKS`]: fcntl `F_SETLK`/`F_SETLKW`/`F_OFD_SETLK`/`F_OFD_SETLKW`, `flock` with `LOCK_SH`/`LOCK_EX` | the rules decide, then the host lets it run only on a file within a write grant; else [`LOCK_REFUSED`] |
//! | supervised connects | [`SUPERVISED_CONNECTS`]: MPTCP and SCTP sockets, sends with `MSG_FASTOPEN` | only when a rule names that value |
//! | threads | `clone` with `CLONE_THREAD` | the policy decides, then the host fails it with `EAGAIN` at [`Limits::threads`] |
//! | loading | [`LOADING_SYSCALLS`]: read-only file access and exec mappings that `dlopen` needs | allowed until the helper reports it has loaded |
//! | default | everything else not allowed | the policy's default action |
//!
//! Calls through another architecture's entry (32-bit `int 0x80`) kill the
//! helper in the kernel, and `clone3` fails with `ENOSYS`; neither reaches
//! the host.
//!
//! The policy compiles to BPF in [`crate::bpf`]: seccompiler compiles each
//! route as one segment (it supports one match action per filter), and
//! [`SandboxPolicy::compile`] chains the segments into one program, so the
//! first segment that matches decides.
//!
//! | module | concept |
//! |---|---|
//! | `model` | [`SandboxPolicy`], [`SyscallRule`], [`ArgCondition`], [`CmpOp`], [`Action`] |
//! | `presets` | [`PRESETS`]: `pure`, `fs-read`, `db-client` |
//! | `floor` | [`FLOOR`] and the supervised and loading routes |
//! | `verdict` | [`SandboxPolicy::verdict`]: the host's answer to a notification |
//!
//! ```
//! use ffb_policy::sandbox::SandboxPolicy;
//! let policy = SandboxPolicy::preset("pure").unwrap();
//! let filter = policy.compile().unwrap();
//! assert!(filter.len() > 10);
//! ```

mod floor;
mod model;
mod presets;
mod verdict;

pub use crate::bpf::SECCOMP_RET_USER_NOTIF;
pub(crate) use floor::threads_only;
pub use floor::{
    floor_entry_for_call, floor_entry_granted_by, is_supervised, is_thread_clone, names_value,
    supervised_connect_call, supervised_lock_call, supervised_owner_call, supervised_target,
    FloorEntry, LockCall, LockOwner, Target, FLOOR, LOADING_SYSCALLS, LOCK_REFUSED,
    SUPERVISED_CONNECTS, SUPERVISED_LOCKS, SUPERVISED_OWNERS, SUPERVISED_SIGNALS,
    SUPERVISED_TARGETS, X32_SYSCALL_BIT,
};
pub(crate) use model::arg_index;
pub use model::{
    Action, ArgCondition, CmpOp, CompiledFilter, FilesystemRules, Identity, Limits, Namespace,
    NetworkRules, PolicyError, SandboxPolicy, SyscallRule,
};
pub use presets::PRESETS;
pub use verdict::{Phase, Verdict};
