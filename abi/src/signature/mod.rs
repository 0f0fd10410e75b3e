//! Declared C signatures, written `name(type, type, ...) -> ret`.
//!
//! The same syntax is accepted by the CLI, the session protocol and the Rust
//! API, so errors carry a column and a hint phrased for someone who knows the
//! C prototype but not yet this notation.
//!
//! ```
//! use ffb_abi::signature::{ArgType, RetType, ScalarType, Signature};
//!
//! let sig: Signature = "hash( cstr, out[0x20], * u64 ) -> i32".parse().unwrap();
//! assert_eq!(sig.args[1], ArgType::Out(32));
//! assert_eq!(sig.ret, RetType::Scalar(ScalarType::I32));
//! assert_eq!(sig.value_arity(), 2);
//! assert_eq!(sig.to_string(), "hash(cstr, out[32], *u64) -> i32");
//!
//! // Handles may name their kind, so a statement cannot pass for a connection.
//! let prepare: Signature = "prepare(handle<db>, cstr, i32, *handle<stmt>, *u64) -> i32".parse().unwrap();
//! assert_eq!(prepare.arg_kind(0), Some("db"));
//! assert_eq!(prepare.arg_kind(3), Some("stmt"));
//! assert_eq!(prepare.arg_kind(1), None);
//! assert_eq!(prepare.to_string(), "prepare(handle<db>, cstr, i32, *handle<stmt>, *u64) -> i32");
//!
//! let err = Signature::parse("f(int)").unwrap_err();
//! assert_eq!(err.column, 3);
//! assert!(err.message.contains("did you mean i32?"));
//! ```

use std::fmt;
use std::str::FromStr;

mod hints;
mod parse;
#[cfg(test)]
mod tests;

/// The most arguments a signature may declare.
pub const MAX_ARGS: usize = 64;

/// The longest function name a signature may declare, in bytes: room for
/// long C++ mangled names, with a bound the host checks before it hands the
/// name to a helper.
pub const MAX_NAME_LEN: usize = 4096;

/// The largest `N` accepted in `out[N]` (1 GiB).
pub const MAX_OUT_LEN: usize = 1 << 30;

/// A fixed-size number passed by value.
///
/// ```
/// use ffb_abi::signature::ScalarType;
/// assert_eq!(ScalarType::from_name("u16"), Some(ScalarType::U16));
/// assert_eq!(ScalarType::U16.size(), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarType {
    /// `i8`, C `int8_t` / `signed char`.
    I8,
    /// `i16`, C `int16_t` / `short`.
    I16,
    /// `i32`, C `int32_t` / `int`.
    I32,
    /// `i64`, C `int64_t` / `long` on x86_64.
    I64,
    /// `u8`, C `uint8_t` / `unsigned char`.
    U8,
    /// `u16`, C `uint16_t` / `unsigned short`.
    U16,
    /// `u32`, C `uint32_t` / `unsigned int`.
    U32,
    /// `u64`, C `uint64_t` / `unsigned long` on x86_64.
    U64,
    /// `isize`, C `ssize_t` / `ptrdiff_t`.
    Isize,
    /// `usize`, C `size_t`.
    Usize,
    /// `f32`, C `float`.
    F32,
    /// `f64`, C `double`.
    F64,
}

impl ScalarType {
    /// Every scalar type, in the order error messages list them.
    pub const ALL: [ScalarType; 12] = [
        ScalarType::I8,
        ScalarType::I16,
        ScalarType::I32,
        ScalarType::I64,
        ScalarType::U8,
        ScalarType::U16,
        ScalarType::U32,
        ScalarType::U64,
        ScalarType::Isize,
        ScalarType::Usize,
        ScalarType::F32,
        ScalarType::F64,
    ];

    /// The spelling used in signatures, e.g. `"i32"`.
    pub fn name(self) -> &'static str {
        match self {
            ScalarType::I8 => "i8",
            ScalarType::I16 => "i16",
            ScalarType::I32 => "i32",
            ScalarType::I64 => "i64",
            ScalarType::U8 => "u8",
            ScalarType::U16 => "u16",
            ScalarType::U32 => "u32",
            ScalarType::U64 => "u64",
            ScalarType::Isize => "isize",
            ScalarType::Usize => "usize",
            ScalarType::F32 => "f32",
            ScalarType::F64 => "f64",
        }
    }

    /// The scalar type spelled exactly `s`, if any.
    pub fn from_name(s: &str) -> Option<Self> {
        ScalarType::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Size in bytes; `isize`/`usize` are 8 because the bridge targets x86_64.
    pub fn size(self) -> usize {
        match self {
            ScalarType::I8 | ScalarType::U8 => 1,
            ScalarType::I16 | ScalarType::U16 => 2,
            ScalarType::I32 | ScalarType::U32 | ScalarType::F32 => 4,
            ScalarType::I64
            | ScalarType::U64
            | ScalarType::Isize
            | ScalarType::Usize
            | ScalarType::F64 => 8,
        }
    }

    /// True for `f32` and `f64`.
    pub fn is_float(self) -> bool {
        matches!(self, ScalarType::F32 | ScalarType::F64)
    }

    /// True for signed integers and for floats.
    pub fn is_signed(self) -> bool {
        !matches!(
            self,
            ScalarType::U8
                | ScalarType::U16
                | ScalarType::U32
                | ScalarType::U64
                | ScalarType::Usize
        )
    }
}

/// What a `*T` argument points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pointee {
    /// `*i32` and friends: a single scalar the callee may read or write.
    Scalar(ScalarType),
    /// `*handle` (or `*handle<kind>`): a slot receiving or holding an opaque
    /// pointer.
    Handle,
}

/// The type of one declared argument.
///
/// ```
/// use ffb_abi::signature::ArgType;
/// assert!(ArgType::Out(8).is_pointer());
/// assert!(!ArgType::Out(8).takes_value());
/// assert!(!ArgType::Handle.is_pointer());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgType {
    /// A number passed by value.
    Scalar(ScalarType),
    /// A NUL-terminated string, copied into shared memory.
    CStr,
    /// A byte buffer, copied into shared memory.
    Bytes,
    /// A zeroed buffer of `N` bytes the callee fills; the caller supplies no
    /// value for it and gets the bytes back.
    Out(usize),
    /// A pointer to a single value in shared memory.
    Ptr(Pointee),
    /// An opaque pointer value previously returned by the library; written
    /// `handle`, or `handle<kind>` to accept only handles of that kind (see
    /// [`Signature::arg_kinds`]).
    Handle,
}

impl ArgType {
    /// True if the argument is passed as a pointer into shared memory.
    /// `Handle` is a pointer value too, but it does not point into the
    /// shared arena, so it is not counted.
    pub fn is_pointer(self) -> bool {
        matches!(
            self,
            ArgType::CStr | ArgType::Bytes | ArgType::Out(_) | ArgType::Ptr(_)
        )
    }

    /// True if the caller supplies a value for this argument; false only for
    /// `out[N]`, which the bridge allocates itself.
    pub fn takes_value(self) -> bool {
        !matches!(self, ArgType::Out(_))
    }
}

/// The declared return type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetType {
    /// Nothing is returned.
    Void,
    /// A number returned by value.
    Scalar(ScalarType),
    /// A NUL-terminated string, copied out of the helper.
    CStr,
    /// An opaque pointer value to pass back later; `handle<kind>` gives it a
    /// kind (see [`Signature::ret_kind`]).
    Handle,
}

/// A parsed C signature.
///
/// Handle kinds (`handle<stmt>`) live beside the types, in
/// [`arg_kinds`](Self::arg_kinds) and [`ret_kind`](Self::ret_kind), so that
/// [`ArgType`] and [`RetType`] stay small `Copy` values for the code that
/// builds calls and only needs to know that a handle is a pointer.
///
/// ```
/// use ffb_abi::signature::{RetType, Signature};
/// let sig = Signature::parse("srand(void)").unwrap();
/// assert!(sig.args.is_empty());
/// assert_eq!(sig.ret, RetType::Void);
/// assert_eq!(sig.to_string(), "srand() -> void");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    /// The C symbol name.
    pub name: String,
    /// Argument types in call order.
    pub args: Vec<ArgType>,
    /// The return type.
    pub ret: RetType,
    /// The kind named by each `handle<kind>` or `*handle<kind>` argument, by
    /// position, and `None` for every other argument. Empty when no argument
    /// names a kind (what the parser produces then), else as long as `args`.
    pub arg_kinds: Vec<Option<String>>,
    /// The kind named by a `-> handle<kind>` return, if any.
    pub ret_kind: Option<String>,
}

impl Signature {
    /// Parses `name(type, ...) -> ret`; a missing `-> ret` means `void`.
    pub fn parse(s: &str) -> Result<Signature, SignatureError> {
        parse::Parser::new(s).signature()
    }

    /// The kind argument `index` (0-based) declares: `Some("stmt")` for
    /// `handle<stmt>` or `*handle<stmt>`, `None` for an untyped handle or any
    /// other type.
    pub fn arg_kind(&self, index: usize) -> Option<&str> {
        self.arg_kinds.get(index).and_then(|k| k.as_deref())
    }

    /// Argument `index` as written, with its kind: `handle<db>`, `*u64`.
    pub fn arg_text(&self, index: usize) -> String {
        let ty = self.args[index];
        match self.arg_kind(index) {
            Some(kind) => format!("{ty}<{kind}>"),
            None => ty.to_string(),
        }
    }

    /// The kind a `-> handle<kind>` return declares.
    pub fn ret_kind(&self) -> Option<&str> {
        self.ret_kind.as_deref()
    }

    /// The number of arguments the caller supplies values for (all but
    /// `out[N]`).
    pub fn value_arity(&self) -> usize {
        self.args.iter().filter(|a| a.takes_value()).count()
    }

    /// `None` when `given` values match the parameters that take one
    /// (`out[N]` takes none); otherwise a message naming the expected types.
    ///
    /// ```
    /// use ffb_abi::signature::Signature;
    /// let sig = Signature::parse("add(i32, i32) -> i32").unwrap();
    /// assert_eq!(sig.arity_mismatch(2), None);
    /// assert_eq!(
    ///     sig.arity_mismatch(1).unwrap(),
    ///     "add takes 2 arguments (i32, i32) but 1 was given"
    /// );
    /// ```
    pub fn arity_mismatch(&self, given: usize) -> Option<String> {
        let expected = self.value_arity();
        if given == expected {
            return None;
        }
        let types: Vec<String> = (0..self.args.len())
            .filter(|&i| self.args[i].takes_value())
            .map(|i| self.arg_text(i))
            .collect();
        Some(format!(
            "{} takes {expected} argument{} ({}) but {given} {} given",
            self.name,
            if expected == 1 { "" } else { "s" },
            types.join(", "),
            if given == 1 { "was" } else { "were" }
        ))
    }
}

impl FromStr for Signature {
    type Err = SignatureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Signature::parse(s)
    }
}

impl fmt::Display for ScalarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Pointee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pointee::Scalar(s) => f.write_str(s.name()),
            Pointee::Handle => f.write_str("handle"),
        }
    }
}

impl fmt::Display for ArgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgType::Scalar(s) => f.write_str(s.name()),
            ArgType::CStr => f.write_str("cstr"),
            ArgType::Bytes => f.write_str("bytes"),
            ArgType::Out(n) => write!(f, "out[{n}]"),
            ArgType::Ptr(p) => write!(f, "*{p}"),
            ArgType::Handle => f.write_str("handle"),
        }
    }
}

impl fmt::Display for RetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetType::Void => f.write_str("void"),
            RetType::Scalar(s) => f.write_str(s.name()),
            RetType::CStr => f.write_str("cstr"),
            RetType::Handle => f.write_str("handle"),
        }
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{a}")?;
            if let Some(kind) = self.arg_kind(i) {
                write!(f, "<{kind}>")?;
            }
        }
        write!(f, ") -> {}", self.ret)?;
        if let Some(kind) = self.ret_kind() {
            write!(f, "<{kind}>")?;
        }
        Ok(())
    }
}

/// Why a signature could not be parsed.
///
/// ```
/// use ffb_abi::signature::Signature;
/// let err = Signature::parse("printf(cstr, ...) -> i32").unwrap_err();
/// assert_eq!(err.column, 14);
/// assert!(err.to_string().starts_with("column 14: variadic functions are not supported"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct SignatureError {
    /// 1-based character column in the input where parsing went wrong.
    pub column: usize,
    /// A one-line explanation, usually with the fix.
    pub message: String,
}
