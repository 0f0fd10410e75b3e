//! The Python host's protocol: what travels in the shared buffer when the
//! host calls into the embedded interpreter (`pyhost/`), and the functions
//! the host declares for it.
//!
//! The host loads libpython first (`SpawnRequest::preload`, with
//! `RTLD_GLOBAL`), then the Python host library, and calls two functions
//! through the ordinary bridge, each on the bridge's one shared buffer:
//! [`INIT_SIGNATURE`] once per helper, then [`CALL_SIGNATURE`] per request.
//! Both read a MessagePack request from the start of the buffer (its length
//! is the second argument), and write a MessagePack reply at the start of
//! the buffer, at most the third argument long; the return value is the
//! reply's length, or one of the negative codes below. The request is read
//! whole before the reply is written.
//!
//! # Values
//!
//! Canonical values are MessagePack values with three extension types:
//!
//! | Python | MessagePack |
//! |---|---|
//! | `None`, `bool`, `float` | nil, bool, float 64 (always 64-bit: NaN payloads and -0.0 kept) |
//! | `int` in `i64` or `u64` | int |
//! | any other `int` | ext [`EXT_BIG_INT`]: two's complement, little-endian, shortest |
//! | `str`, `bytes` | str, bin |
//! | `list`, `dict` | array, map |
//! | `tuple` | ext [`EXT_TUPLE`] with no payload, then the array of its items |
//! | anything else | ext [`EXT_HANDLE`]: the token (u64, little-endian), then the type's name (UTF-8, at most [`MAX_TYPE_NAME`] bytes) |
//!
//! Nesting deeper than [`MAX_DEPTH`] is refused by both sides.
//!
//! # Requests
//!
//! An array whose first item is the op and whose second is the tokens to
//! release first (an array of u64):
//!
//! * [`OP_CALL`]: `[op, releases, module, function, args, kwargs]`;
//! * [`OP_CALL_METHOD`]: `[op, releases, handle, method, args, kwargs]`;
//! * [`OP_GET_ATTR`]: `[op, releases, handle, name]`;
//! * [`OP_RELEASE`]: `[op, releases]`.
//!
//! `args` is an array, `kwargs` a map from str to values.
//!
//! The init request is `[executable, search_path, allowed, preimport,
//! stdlib]`: `sys.executable`, the whole `sys.path` (an array of str), the
//! top-level module names an import may name beyond the standard library,
//! the modules to import before the reply, and the standard library's
//! directories (whose modules are always allowed).
//!
//! # Replies
//!
//! * [`REPLY_VALUE`]: `[0, value]`;
//! * [`REPLY_EXCEPTION`]: `[1, type, message, traceback]`, three str
//!   (the exception's qualified type name, `str()` of it, the formatted
//!   traceback), each cut to [`MAX_EXCEPTION_TEXT`] bytes by the helper. The
//!   host reads them as the helper's words.
//!
//! The reply to init is `[0, sys.version]` or an exception.

/// The Python host's init function, as the host declares it.
pub const INIT_SIGNATURE: &str = "ffb_py_init(bytes, u64, u64) -> i64";
/// The Python host's call function, as the host declares it.
pub const CALL_SIGNATURE: &str = "ffb_py_call(bytes, u64, u64) -> i64";

/// Ext type of an `int` outside `i64` and `u64`.
pub const EXT_BIG_INT: i8 = 1;
/// Ext type that marks the array after it as a `tuple`.
pub const EXT_TUPLE: i8 = 2;
/// Ext type of a handle to an object that stays in the helper.
pub const EXT_HANDLE: i8 = 3;

/// Call `module.function(*args, **kwargs)`.
pub const OP_CALL: u64 = 0;
/// Call `handle.method(*args, **kwargs)`.
pub const OP_CALL_METHOD: u64 = 1;
/// Read `handle.name`.
pub const OP_GET_ATTR: u64 = 2;
/// Only release the listed tokens.
pub const OP_RELEASE: u64 = 3;

/// The reply carries a value.
pub const REPLY_VALUE: u64 = 0;
/// The reply carries a Python exception.
pub const REPLY_EXCEPTION: u64 = 1;

/// Returned when the reply does not fit in the buffer.
pub const REPLY_TOO_LARGE: i64 = -1;
/// Returned when the request is not a request of this protocol.
pub const BAD_REQUEST: i64 = -2;
/// Returned by a call before a successful init.
pub const NOT_INITIALIZED: i64 = -3;
/// Returned by init when the interpreter would not start (the reply, if any,
/// is an exception).
pub const INIT_FAILED: i64 = -4;

/// The deepest nesting of lists, tuples and dicts either side accepts.
pub const MAX_DEPTH: usize = 64;
/// The longest type name in a handle.
pub const MAX_TYPE_NAME: usize = 256;
/// The longest exception type, message or traceback the helper sends.
pub const MAX_EXCEPTION_TEXT: usize = 16 * 1024;
