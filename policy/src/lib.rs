//! # ffb-policy
//!
//! Sandbox policies and their compilers for ffb, the sandboxed loader for legacy native code:
//!
//! * [`sandbox`]: the policy model, the presets, the floor and the supervised
//!   routes, and the host's verdicts on what the helper's filter hands it.
//! * [`bpf`]: the BPF backend: a policy compiled to one seccomp-BPF program,
//!   and the kernel's numbers it is written in.
//! * [`source`]: where policies come from: [`source::load_policy`] takes a
//!   preset name or a file in ffb's TOML format ([`source::toml`]), a
//!   Docker/OCI seccomp profile or a seccompiler JSON filter.
//! * [`diagnostics`]: [`PolicyFileError`](diagnostics::PolicyFileError), one
//!   line naming the file, line and column of what is wrong.
//! * [`errno`]: errno names and numbers; [`identity`]: `run_as` users and
//!   groups; [`kernel`]: the running kernel's version, for imported profiles.
//! * [`hash`]: [`policy_hash`](hash::policy_hash), a policy's fingerprint for audit logs.
//! * [`manifest`]: extension manifests: a library's functions, handles and policy.
//! * [`grants`]: the paths, ports and sockets a policy grants, and the syscalls derived from them.
//! * [`lint`]: findings about valid policies that are probably not meant for production.
//! * [`explain`]: what a policy does, as a table or as JSON.
//! * [`syscalls`]: x86_64 syscall names and numbers.
//!
//! Nothing here starts a process or touches the kernel. (Loading a policy reads
//! its file, `/etc/passwd` and `/etc/group` for `run_as`, and the kernel version.)
//!
//! ```
//! use ffb_policy::{hash::policy_hash, source::load_policy};
//! let policy = load_policy("db-client").unwrap();
//! let filter = policy.compile().unwrap();
//! assert!(filter.len() > 10);
//! assert_eq!(policy_hash(&policy).len(), 16);
//! ```
#![deny(missing_docs)]

pub mod bpf;
pub mod diagnostics;
pub mod errno;
pub mod explain;
pub mod files;
pub mod grants;
pub mod hash;
pub mod identity;
pub mod kernel;
pub mod lint;
pub mod manifest;
pub mod sandbox;
pub mod source;
mod syscall_table;
pub mod syscalls;
#[cfg(test)]
mod test_support;
