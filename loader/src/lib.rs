//! # ffb-loader
//!
//! The host side of ffb, the sandboxed loader for legacy native code. A
//! [`Bridge`] loads an opaque C library in a helper process locked down with
//! seccomp-BPF, Landlock, no capabilities and rlimits, and calls its functions
//! through a shared-memory arena (one at a time, in [batches](Bridge::call_batch),
//! or with [zero-copy buffers](Bridge::shared_buffer)); a [`Pool`] runs several
//! helpers for many threads. Every call is a full fence
//! (`io + nondet + mutates(all) + throws(any)`); every failure is an [`Error`]
//! with a stable [`ErrorKind`]; a helper that crashes, hangs or breaks its
//! policy is replaced on the next call.
//!
//! ```
//! use ffb_loader::{Bridge, BridgeMode, ErrorKind, Value};
//!
//! let mut m = Bridge::builder("libm.so.6")
//! #   .shim(std::env::var_os("FFB_SHIM").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/ffb-shim").into()))
//!     .bridge_mode(BridgeMode::Enabled)
//!     .declare("pow(f64, f64) -> f64")
//!     .load()?;
//! let pow = m.function("pow").unwrap();
//! let out = m.call(pow, &[Value::F64(2.0), Value::F64(10.0)])?;
//! assert_eq!(out.ret, Value::F64(1024.0));
//! assert_eq!(out.effects.to_string(), "io + nondet + mutates(all) + throws(any)");
//!
//! match m.call(pow, &[Value::F64(2.0)]) {
//!     Err(e) if e.kind == ErrorKind::BadArgument => {}
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), ffb_loader::Error>(())
//! ```
//!
//! # Failures are values
//!
//! A crash, a forbidden syscall or a hang inside the library ends its helper,
//! never the host: the call returns an [`Error`] whose [`ErrorKind`] says
//! what happened ([`ErrorKind::ends_helper`] says whether the helper is gone),
//! and the next call runs in a fresh helper. The kind's name and data are
//! stable ([`Error::to_json`]), for logs and programs alike.
//!
//! ```
//! use ffb_loader::{Bridge, BridgeMode, ErrorKind, Value};
//!
//! let mut c = Bridge::builder("libc.so.6")
//! #   .shim(std::env::var_os("FFB_SHIM").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/ffb-shim").into()))
//!     .bridge_mode(BridgeMode::Enabled)
//!     // A pointer declared as an integer, on purpose: strlen reads address 1.
//!     .declare("strlen(u64) -> u64")
//!     .declare("socket(i32, i32, i32) -> i32")
//!     .declare("abs(i32) -> i32")
//!     .load()?;
//!
//! let e = c.call_by_name("strlen", &[Value::U64(1)]).unwrap_err();
//! assert!(matches!(&e.kind, ErrorKind::Crashed { signal } if signal == "SIGSEGV"), "{e}");
//! assert!(e.kind.ends_helper());
//! assert_eq!(e.to_json()["kind"], "crashed");
//!
//! // The default policy (`pure`) allows no sockets: the helper is killed.
//! let e = c
//!     .call_by_name("socket", &[Value::I32(libc::AF_INET), Value::I32(libc::SOCK_STREAM), Value::I32(0)])
//!     .unwrap_err();
//! assert!(matches!(&e.kind, ErrorKind::PolicyViolation { syscall, .. } if syscall == "socket"), "{e}");
//!
//! // Each failure cost a helper; the bridge carries on with a third.
//! assert_eq!(c.call_by_name("abs", &[Value::I32(-5)])?.ret, Value::I32(5));
//! assert_eq!(c.respawns(), 2);
//! # Ok::<(), ffb_loader::Error>(())
//! ```
//!
//! # The examples run real helpers
//!
//! Every example in these docs loads a real system library (`libm.so.6`,
//! `libz.so.1`, `libc.so.6`) in a real sandboxed helper, so `cargo test
//! --doc` checks what the docs claim. The helper is the `ffb-shim` binary:
//! build it first (`cargo build --workspace --bins`; `scripts/test.sh` does).
//! A program finds it through `FFB_SHIM`, else next to its own executable
//! (see [`BridgeBuilder::shim`]), but a doctest runs from a temporary
//! directory with nothing next to it. So each example carries one hidden
//! line, `.shim(...)`, that takes `FFB_SHIM` when it is set and else the
//! workspace's `target/debug/ffb-shim`, found from this crate's manifest
//! directory at compile time. With a custom `CARGO_TARGET_DIR`, set
//! `FFB_SHIM` to the helper's path.
#![deny(missing_docs)]

mod arena;
mod audit;
mod bridge;
mod error;
mod forkserver;
#[doc(hidden)]
pub mod fuzzing;
mod helper;
mod learn;
mod manifest;
mod pool;
pub mod python;
pub mod sql;
mod value;

pub use bridge::{
    call_effects, BatchFailure, Bridge, BridgeBuilder, BridgeMode, CallOutput, Cell, Cmp, FetchEnd,
    FetchProgram, FetchProgramBuilder, FetchState, FunctionId, Operand, Section, SharedBuffer,
    DEFAULT_ARENA, DEFAULT_MAX_CSTR, DEFAULT_PAGE_ROWS, DEFAULT_PINNED_LIMIT,
};
pub use error::{signal_name, Error, ErrorKind, Result};
pub use ffb_abi::effects::{EffectSet, WORST_CASE};
pub use ffb_abi::signature::Signature;
pub use ffb_policy::manifest::Manifest;
pub use ffb_policy::sandbox::SandboxPolicy;
pub use forkserver::{fork_server_pid, shutdown_fork_servers};
pub use learn::Learned;
pub use pool::{Callee, Pool, PoolConfig, PoolStats};
pub use value::{Handle, Value};
