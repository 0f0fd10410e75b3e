//! # ffb-policy
//!
//! Pure data and rules for ffb, the sandboxed loader for legacy native code:
//!
//! * [`effects`]: the effect model of Molt's Foreign Function Boundary
//!   (`pure`, `alloc`, `io`, `mutates`, `throws`, `nondet`) and its worst case.
//! * [`signature`]: declared C signatures, `name(type, ...) -> ret`.
//! * [`sandbox`]: sandbox policies, the floor, and their compilation to one
//!   seccomp-BPF program.
//! * [`file`](mod@file): policy files (TOML), [`file::load_policy`] and [`file::policy_hash`].
//! * [`import`]: Docker/OCI seccomp profiles and seccompiler JSON filters, as they are.
//! * [`lint`]: findings about valid policies that are probably not meant for production.
//! * [`explain`]: what a policy does, as a table or as JSON.
//! * [`syscalls`]: x86_64 syscall names and numbers.
//! * [`wire`]: the shared-arena layout and handshake messages between host and helper.
//!
//! Nothing here starts a process or touches the kernel. (Loading a policy reads
//! its file, `/etc/passwd` and `/etc/group` for `run_as`, and the kernel version.)
#![warn(missing_docs)]

pub mod effects;
pub mod explain;
pub mod file;
pub mod import;
pub mod lint;
pub mod sandbox;
pub mod signature;
pub mod spin;
mod syscall_table;
pub mod syscalls;
pub mod wire;
