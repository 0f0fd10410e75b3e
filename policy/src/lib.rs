//! # ffb-policy
//!
//! Pure data and rules for ffb, the sandboxed loader for legacy native code:
//!
//! * [`effects`]: the effect model of Molt's Foreign Function Boundary
//!   (`pure`, `alloc`, `io`, `mutates`, `throws`, `nondet`) and its worst case.
//! * [`signature`]: declared C signatures, `name(type, ...) -> ret`.
//! * [`sandbox`]: sandbox policies, the floor, and their compilation to one
//!   seccomp-BPF program.
//! * [`syscalls`]: x86_64 syscall names and numbers.
//! * [`wire`]: the shared-arena layout and handshake messages between host and helper.
//!
//! Nothing here starts a process or touches the kernel.
#![warn(missing_docs)]

pub mod effects;
pub mod sandbox;
pub mod signature;
mod syscall_table;
pub mod syscalls;
pub mod wire;
