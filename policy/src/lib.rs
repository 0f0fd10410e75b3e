//! # ffb-policy
//!
//! Sandbox policies and their compilers for ffb, the sandboxed loader for legacy native code:
//!
//! * [`sandbox`]: sandbox policies, the floor, and their compilation to one
//!   seccomp-BPF program.
//! * [`file`](mod@file): policy files (TOML), [`file::load_policy`] and [`file::policy_hash`].
//! * [`import`]: Docker/OCI seccomp profiles and seccompiler JSON filters, as they are.
//! * [`lint`]: findings about valid policies that are probably not meant for production.
//! * [`explain`]: what a policy does, as a table or as JSON.
//! * [`syscalls`]: x86_64 syscall names and numbers.
//!
//! Nothing here starts a process or touches the kernel. (Loading a policy reads
//! its file, `/etc/passwd` and `/etc/group` for `run_as`, and the kernel version.)
#![warn(missing_docs)]

pub mod explain;
pub mod file;
pub mod import;
pub mod lint;
pub mod sandbox;
mod syscall_table;
pub mod syscalls;
