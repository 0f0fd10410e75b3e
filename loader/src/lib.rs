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
//! ```no_run
//! use ffb_loader::{Bridge, BridgeMode, ErrorKind, Value};
//!
//! let mut m = Bridge::builder("libm.so.6")
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
#![warn(missing_docs)]

mod arena;
mod audit;
mod bridge;
mod error;
mod forkserver;
mod helper;
mod learn;
mod pool;
mod value;

pub use bridge::{
    call_effects, BatchFailure, Bridge, BridgeBuilder, BridgeMode, CallOutput, FunctionId,
    SharedBuffer, DEFAULT_ARENA, DEFAULT_MAX_CSTR,
};
pub use error::{signal_name, Error, ErrorKind, Result};
pub use ffb_abi::effects::{EffectSet, WORST_CASE};
pub use ffb_abi::signature::Signature;
pub use ffb_policy::sandbox::SandboxPolicy;
pub use forkserver::{fork_server_pid, shutdown_fork_servers};
pub use learn::Learned;
pub use pool::{Callee, Pool, PoolConfig, PoolStats};
pub use value::{Handle, Value};
