//! The one way the tests build a bridge, and readers for what the fixtures
//! return.
//!
//! Every integration test talks to a library through a [`Bridge`] in bridge
//! mode, with the freshly built `ffb-shim` and a per-call timeout that only
//! catches hangs. [`bridge_builder`] sets exactly that and nothing else, so a
//! test that needs another policy, arena, spin window or a shorter timeout
//! says so by chaining the setter onto it:
//!
//! ```no_run
//! use std::time::Duration;
//! use ffb_tests::{bridge_builder, hostile_lib};
//!
//! let b = bridge_builder(hostile_lib(), &["ffb_spin_forever() -> void"])
//!     .timeout(Duration::from_millis(300))
//!     .load()
//!     .expect("loading the hostile corpus");
//! ```
//!
//! (`no_run`: the shim a doctest would find is not necessarily built.)

use std::path::Path;
use std::time::Duration;

use ffb_loader::{Bridge, BridgeBuilder, BridgeMode, ErrorKind, Handle, Value};

use crate::{fixture_lib, hostile_lib, shim_bin};

/// The per-call timeout of [`bridge_builder`]: a hang detector, not a
/// deadline. Generous, so that a slow or loaded machine never fails a call
/// that would have succeeded.
pub const HANG_TIMEOUT: Duration = Duration::from_secs(20);

/// A builder for `lib` (a path or a soname) in bridge mode, with the freshly
/// built shim ([`shim_bin`]), [`HANG_TIMEOUT`] and every signature in `decls`
/// declared, in order.
///
/// # Panics
/// If `lib` is not UTF-8 (the tests only use UTF-8 paths).
pub fn bridge_builder(lib: impl AsRef<Path>, decls: &[&str]) -> BridgeBuilder {
    let lib = lib
        .as_ref()
        .to_str()
        .expect("ffb-tests: a UTF-8 library path");
    decls.iter().fold(
        Bridge::builder(lib)
            .bridge_mode(BridgeMode::Enabled)
            .shim(shim_bin())
            .timeout(HANG_TIMEOUT),
        |b, d| b.declare(*d),
    )
}

/// [`bridge_builder`], loaded.
///
/// # Panics
/// If the load fails, naming the library and the error.
pub fn load_bridge(lib: impl AsRef<Path>, decls: &[&str]) -> Bridge {
    let lib = lib.as_ref();
    bridge_builder(lib, decls)
        .load()
        .unwrap_or_else(|e| panic!("loading {}: {e}", lib.display()))
}

/// [`load_bridge`] for the well-behaved fixture ([`fixture_lib`]).
pub fn fixture_bridge(decls: &[&str]) -> Bridge {
    load_bridge(fixture_lib(), decls)
}

/// [`load_bridge`] for the hostile corpus ([`hostile_lib`]).
pub fn hostile_bridge(decls: &[&str]) -> Bridge {
    load_bridge(hostile_lib(), decls)
}

/// The error kind of a helper killed by `signal` (e.g. `"SIGSEGV"`).
pub fn crashed(signal: &str) -> ErrorKind {
    ErrorKind::Crashed {
        signal: signal.to_string(),
    }
}

/// The error kind of a forbidden syscall `syscall` (number `nr`).
pub fn violation(syscall: &str, nr: i64) -> ErrorKind {
    ErrorKind::PolicyViolation {
        syscall: syscall.to_string(),
        nr,
    }
}

/// The integer in `v`.
///
/// # Panics
/// If `v` is not a [`Value::I64`].
pub fn i64_of(v: &Value) -> i64 {
    match v {
        Value::I64(i) => *i,
        other => panic!("expected an i64, got {other:?}"),
    }
}

/// The handle in `v`.
///
/// # Panics
/// If `v` is not a [`Value::Handle`].
pub fn handle_of(v: &Value) -> Handle {
    match v {
        Value::Handle(h) => *h,
        other => panic!("expected a handle, got {other:?}"),
    }
}

/// The values the fixture's `ffb_record` has recorded in this helper, read
/// with `ffb_recorded` into an out buffer of `capacity` bytes (which the
/// bridge must have declared as `ffb_recorded(out[capacity], usize) -> i64`).
///
/// # Panics
/// If the call fails, or more values were recorded than fit.
pub fn recorded(b: &mut Bridge, capacity: usize) -> Vec<i64> {
    let out = b
        .call_by_name("ffb_recorded", &[Value::Usize(capacity)])
        .unwrap_or_else(|e| panic!("ffb_recorded: {e}"));
    let count = i64_of(&out.ret) as usize;
    let Some(Value::Bytes(buf)) = &out.out[0] else {
        panic!("ffb_recorded's out buffer: {:?}", out.out)
    };
    assert_eq!(buf.len(), capacity);
    assert!(count * 8 <= capacity, "{count} values recorded");
    buf.chunks_exact(8)
        .take(count)
        .map(|c| i64::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}
