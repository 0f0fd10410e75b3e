//! The Python host: the library an ffb helper loads, after libpython (with
//! `RTLD_GLOBAL`), to run CPython extension modules in the sandbox.
//!
//! It exports the two functions of [`ffb_contract::wire::python`]:
//! `ffb_py_init` starts an isolated interpreter with the search path and
//! allowlist the host chose, and `ffb_py_call` serves one request. Both read
//! a MessagePack request from the bridge's shared buffer and write the reply
//! there. It runs next to the extension modules, under the helper's filter
//! and Landlock, and trusts nothing the modules do: it only has to keep its
//! own replies well-formed, and the host checks them anyway.
//!
//! Built with pyo3's `extension-module` feature, so it does not link
//! libpython: the interpreter's symbols come from the libpython the helper
//! preloaded, which is how `--python` picks the interpreter at run time.

mod decode;
mod encode;
mod interpreter;
mod request;

use std::sync::atomic::{AtomicBool, Ordering};

use ffb_contract::wire::python::{BAD_REQUEST, INIT_FAILED, NOT_INITIALIZED};

/// Set once `ffb_py_init` has started the interpreter.
static READY: AtomicBool = AtomicBool::new(false);

/// Starts the interpreter from the init request in `buffer[..len]` and
/// writes the reply into `buffer[..cap]`. Returns the reply's length, or a
/// negative code of [`ffb_contract::wire::python`].
///
/// # Safety
/// `buffer` must be valid for reads and writes of `max(len, cap)` bytes for
/// the duration of the call, and nothing else may touch it meanwhile. The
/// helper passes the bridge's shared buffer, which the host leaves alone
/// while a call runs.
#[no_mangle]
pub unsafe extern "C" fn ffb_py_init(buffer: *mut u8, len: u64, cap: u64) -> i64 {
    if READY.load(Ordering::Acquire) {
        return BAD_REQUEST;
    }
    // SAFETY: the caller guarantees `len` readable bytes at `buffer`.
    let config = match interpreter::Config::decode(unsafe { slice(buffer, len) }) {
        Some(config) => config,
        None => return BAD_REQUEST,
    };
    // SAFETY: the config slice above is no longer used; the caller
    // guarantees `cap` writable bytes.
    let out = unsafe { slice_mut(buffer, cap) };
    match interpreter::start(&config, out) {
        Ok(n) => {
            READY.store(true, Ordering::Release);
            n
        }
        Err(code) => code.min(INIT_FAILED),
    }
}

/// Serves one request from `buffer[..len]`, writing the reply into
/// `buffer[..cap]`. Returns the reply's length, or a negative code of
/// [`ffb_contract::wire::python`].
///
/// # Safety
/// As for [`ffb_py_init`].
#[no_mangle]
pub unsafe extern "C" fn ffb_py_call(buffer: *mut u8, len: u64, cap: u64) -> i64 {
    if !READY.load(Ordering::Acquire) {
        return NOT_INITIALIZED;
    }
    // SAFETY: the caller guarantees the buffer for `len` and `cap` bytes;
    // `serve` reads the request whole before it writes the reply.
    unsafe { request::serve(buffer, len, cap) }
}

/// `len` bytes at `ptr`, as a slice (empty for a null pointer).
///
/// # Safety
/// `ptr` must be valid for reads of `len` bytes while the slice lives.
unsafe fn slice<'a>(ptr: *const u8, len: u64) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the caller guarantees `len` readable bytes at `ptr`.
    unsafe { std::slice::from_raw_parts(ptr, len as usize) }
}

/// `len` bytes at `ptr`, as a mutable slice (empty for a null pointer).
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes while the slice lives, and
/// no other reference to them may exist.
unsafe fn slice_mut<'a>(ptr: *mut u8, len: u64) -> &'a mut [u8] {
    if ptr.is_null() || len == 0 {
        return &mut [];
    }
    // SAFETY: the caller guarantees `len` writable, unaliased bytes at `ptr`.
    unsafe { std::slice::from_raw_parts_mut(ptr, len as usize) }
}
