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
//! let err = Signature::parse("f(int)").unwrap_err();
//! assert_eq!(err.column, 3);
//! assert!(err.message.contains("did you mean i32?"));
//! ```

use std::fmt;
use std::str::FromStr;

/// The most arguments a signature may declare.
pub const MAX_ARGS: usize = 64;

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
    /// `*handle`: a slot receiving or holding an opaque pointer.
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
    /// An opaque pointer value previously returned by the library.
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
    /// An opaque pointer value to pass back later.
    Handle,
}

/// A parsed C signature.
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
}

impl Signature {
    /// Parses `name(type, ...) -> ret`; a missing `-> ret` means `void`.
    pub fn parse(s: &str) -> Result<Signature, SignatureError> {
        Parser {
            chars: s.chars().collect(),
            pos: 0,
        }
        .signature()
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
        let types: Vec<String> = self
            .args
            .iter()
            .filter(|a| a.takes_value())
            .map(ToString::to_string)
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
        }
        write!(f, ") -> {}", self.ret)
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

const EXPECTED_ARG: &str =
    "i8 i16 i32 i64 u8 u16 u32 u64 isize usize f32 f64 cstr bytes out[N] *T handle";
const EXPECTED_RET: &str = "void i8 i16 i32 i64 u8 u16 u32 u64 isize usize f32 f64 cstr handle";
const ONLY_POINTEES: &str = "only scalars and handle can be pointed to (e.g. *i32, *handle)";

/// A type as written, before deciding whether it is legal where it appears.
enum Ty {
    Scalar(ScalarType),
    CStr,
    Bytes,
    Out(usize),
    Ptr(Pointee),
    Handle,
    Void,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    Arg,
    Ret,
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

type Res<T> = Result<T, SignatureError>;

impl Parser {
    fn err<T>(&self, column: usize, message: impl Into<String>) -> Res<T> {
        Err(SignatureError {
            column,
            message: message.into(),
        })
    }

    fn column(&self) -> usize {
        self.pos + 1
    }

    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).copied()
    }

    fn at(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.chars.get(self.pos + i) == Some(&c))
    }

    /// Describes what sits at the cursor, for "found ..." in messages.
    fn found(&mut self) -> String {
        match self.peek() {
            None => "end of input".to_string(),
            Some(c) if is_ident_start(c) => {
                let save = self.pos;
                let w = self.word();
                self.pos = save;
                format!("'{w}'")
            }
            Some(c) => format!("'{}'", c.escape_debug()),
        }
    }

    /// Reads `[A-Za-z0-9_]*` at the cursor (no whitespace skipping).
    fn word(&mut self) -> String {
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// True if the next non-whitespace character is `c`; does not consume.
    fn followed_by(&mut self, c: char) -> bool {
        let save = self.pos;
        let hit = self.peek() == Some(c);
        self.pos = save;
        hit
    }

    fn variadic(&self) -> Res<()> {
        if self.at("...") {
            return self.err(
                self.column(),
                "variadic functions are not supported: the bridge needs a fixed argument list; \
                 declare a fixed-arity wrapper in C (e.g. my_printf_i32(cstr, i32)) and bind that instead",
            );
        }
        Ok(())
    }

    fn signature(&mut self) -> Res<Signature> {
        let name = match self.peek() {
            None => {
                return self.err(1, "empty signature: expected name(type, ...) -> ret");
            }
            Some(c) if is_ident_start(c) => self.word(),
            Some(_) => {
                let col = self.column();
                let found = self.found();
                return self.err(
                    col,
                    format!("expected a function name (a C identifier), found {found}"),
                );
            }
        };
        if self.peek() != Some('(') {
            let col = self.column();
            let found = self.found();
            return self.err(
                col,
                format!("expected '(' after function name '{name}', found {found}"),
            );
        }
        self.pos += 1;
        let args = self.args()?;
        let ret = self.ret()?;
        Ok(Signature { name, args, ret })
    }

    /// Parses the argument list; the cursor is just past `(` and ends just
    /// past `)`.
    fn args(&mut self) -> Res<Vec<ArgType>> {
        let mut args = Vec::new();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(args);
        }
        if self.at("void") {
            let save = self.pos;
            self.pos += 4;
            let alone = !self
                .chars
                .get(self.pos)
                .is_some_and(|&c| c.is_ascii_alphanumeric() || c == '_')
                && self.peek() == Some(')');
            if alone {
                self.pos += 1;
                return Ok(args);
            }
            self.pos = save;
        }
        let mut after_comma = false;
        loop {
            self.skip_ws();
            self.variadic()?;
            let col = self.column();
            match self.peek() {
                Some(',') if after_comma => {
                    return self.err(col, "empty argument between commas");
                }
                Some(')') if after_comma => {
                    return self.err(
                        col,
                        "expected an argument type after ',', found ')' (trailing comma?)",
                    );
                }
                None => {
                    let what = if after_comma {
                        "expected an argument type after ','"
                    } else {
                        "expected an argument type or ')'"
                    };
                    return self.err(col, format!("{what}, found end of input"));
                }
                _ => {}
            }
            if args.len() == MAX_ARGS {
                return self.err(
                    col,
                    format!("too many arguments: at most {MAX_ARGS} are supported"),
                );
            }
            let ty = self.ty(Position::Arg)?;
            args.push(match ty {
                Ty::Scalar(s) => ArgType::Scalar(s),
                Ty::CStr => ArgType::CStr,
                Ty::Bytes => ArgType::Bytes,
                Ty::Out(n) => ArgType::Out(n),
                Ty::Ptr(p) => ArgType::Ptr(p),
                Ty::Handle => ArgType::Handle,
                Ty::Void => {
                    return self.err(
                        col,
                        "'void' is not an argument type; write '()' or '(void)' alone for no arguments",
                    );
                }
            });
            self.skip_ws();
            self.variadic()?;
            let col = self.column();
            match self.peek() {
                Some(',') => {
                    self.pos += 1;
                    after_comma = true;
                }
                Some(')') => {
                    self.pos += 1;
                    return Ok(args);
                }
                None => {
                    return self.err(
                        col,
                        "expected ',' or ')' after argument, found end of input (missing ')'?)",
                    );
                }
                Some(c) if is_ident_start(c) => {
                    let found = self.found();
                    return self.err(
                        col,
                        format!(
                            "unexpected {found} after argument type {}: write only types, without parameter names",
                            args[args.len() - 1]
                        ),
                    );
                }
                Some(_) => {
                    let found = self.found();
                    return self.err(
                        col,
                        format!("expected ',' or ')' after argument, found {found}"),
                    );
                }
            }
        }
    }

    /// Parses the optional `-> ret` and checks nothing follows it.
    fn ret(&mut self) -> Res<RetType> {
        if self.peek().is_none() {
            return Ok(RetType::Void);
        }
        if !self.at("->") {
            let col = self.column();
            let found = self.found();
            return self.err(
                col,
                format!("expected '-> ret' or end of input after ')', found {found}"),
            );
        }
        self.pos += 2;
        let col = {
            self.skip_ws();
            self.column()
        };
        if self.peek().is_none() {
            return self.err(col, "expected a return type after '->', found end of input");
        }
        let ret = match self.ty(Position::Ret)? {
            Ty::Void => RetType::Void,
            Ty::Scalar(s) => RetType::Scalar(s),
            Ty::CStr => RetType::CStr,
            Ty::Handle => RetType::Handle,
            Ty::Bytes => {
                return self.err(
                    col,
                    "a function cannot return bytes: the bridge cannot know the length; \
                     return cstr or use an out[N] argument",
                );
            }
            Ty::Out(_) => {
                return self.err(
                    col,
                    "a function cannot return out[N]: out buffers are arguments the callee fills; \
                     declare it as an argument and return void or a status code",
                );
            }
            Ty::Ptr(p) => {
                return self.err(
                    col,
                    format!(
                        "a function cannot return a pointer (*{p}): it would point into the helper's memory; \
                         return handle for an opaque pointer, or fill a *{p} or out[N] argument"
                    ),
                );
            }
        };
        if self.peek().is_some() {
            let col = self.column();
            let found = self.found();
            return self.err(col, format!("unexpected {found} after the return type"));
        }
        Ok(ret)
    }

    fn ty(&mut self, position: Position) -> Res<Ty> {
        self.skip_ws();
        let col = self.column();
        match self.peek() {
            Some('*') => {
                self.pos += 1;
                self.pointee(col).map(Ty::Ptr)
            }
            Some(c) if is_ident_start(c) => {
                let w = self.word();
                let ty = match w.as_str() {
                    "cstr" => Ty::CStr,
                    "bytes" => Ty::Bytes,
                    "handle" => Ty::Handle,
                    "out" => Ty::Out(self.out_len()?),
                    "void" if !self.followed_by('*') => Ty::Void,
                    other => match ScalarType::from_name(other) {
                        Some(s) => Ty::Scalar(s),
                        None => {
                            self.pos = col - 1;
                            return self.unknown(position, false);
                        }
                    },
                };
                if self.followed_by('*') {
                    self.skip_ws();
                    return self.err(
                        self.column(),
                        format!(
                            "pointer types are written with a leading '*' (e.g. *i32), and {ONLY_POINTEES}"
                        ),
                    );
                }
                Ok(ty)
            }
            Some(_) => {
                let found = self.found();
                let what = match position {
                    Position::Arg => "an argument type",
                    Position::Ret => "a return type",
                };
                self.err(col, format!("expected {what}, found {found}"))
            }
            None => self.err(col, "expected a type, found end of input"),
        }
    }

    /// Parses what follows `*`; `star_col` is where the `*` was.
    fn pointee(&mut self, star_col: usize) -> Res<Pointee> {
        let col = {
            self.skip_ws();
            self.column()
        };
        match self.peek() {
            Some('*') => self.err(
                star_col,
                format!("pointers to pointers are not supported: {ONLY_POINTEES}"),
            ),
            Some(c) if is_ident_start(c) => {
                let w = self.word();
                if let Some(s) = ScalarType::from_name(&w) {
                    return Ok(Pointee::Scalar(s));
                }
                let why = match w.as_str() {
                    "handle" => return Ok(Pointee::Handle),
                    "cstr" | "bytes" => "it is already passed as a pointer; drop the '*'",
                    "out" => "out[N] is already a buffer the callee writes; drop the '*'",
                    "void" if !self.followed_by('*') => "use handle for an opaque pointer",
                    _ => {
                        self.pos = col - 1;
                        return self.unknown(Position::Arg, true);
                    }
                };
                self.err(
                    star_col,
                    format!("'*{w}' is not allowed: {ONLY_POINTEES}; {why}"),
                )
            }
            _ => {
                let found = self.found();
                self.err(
                    col,
                    format!("expected a type after '*', found {found}; {ONLY_POINTEES}"),
                )
            }
        }
    }

    /// Parses `[N]` after `out`.
    fn out_len(&mut self) -> Res<usize> {
        if self.peek() != Some('[') {
            let col = self.column();
            return self.err(
                col,
                "out needs a length: write out[N] for an N-byte buffer, e.g. out[16]",
            );
        }
        self.pos += 1;
        self.skip_ws();
        let col = self.column();
        let text = self.word();
        if text.is_empty() {
            let found = self.found();
            return self.err(
                col,
                format!("expected a length in out[N] (decimal or 0x hex), found {found}"),
            );
        }
        let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse::<u64>(),
        };
        let n = match parsed {
            Ok(n) => n,
            Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => u64::MAX,
            Err(_) => {
                return self.err(
                    col,
                    format!(
                        "invalid length '{text}' in out[N]: expected a decimal or 0x hex number"
                    ),
                );
            }
        };
        if n == 0 {
            return self.err(col, "out[0] is empty: an out buffer needs at least 1 byte");
        }
        if n > MAX_OUT_LEN as u64 {
            return self.err(
                col,
                format!("out length {text} is too large: at most {MAX_OUT_LEN} bytes (1 GiB)"),
            );
        }
        if self.peek() != Some(']') {
            let col = self.column();
            let found = self.found();
            return self.err(col, format!("expected ']' to close out[N], found {found}"));
        }
        self.pos += 1;
        Ok(n as usize)
    }

    /// Reports an unknown type name at the cursor, suggesting the notation's
    /// equivalent when the input looks like a C spelling such as
    /// `unsigned long` or `const char *`.
    fn unknown<T>(&mut self, position: Position, under_star: bool) -> Res<T> {
        let col = self.column();
        let mut words = vec![self.word()];
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.chars.get(self.pos).is_some_and(|&c| is_ident_start(c)) {
                words.push(self.word());
            } else {
                self.pos = save;
                break;
            }
        }
        let mut stars = 0;
        while self.peek() == Some('*') {
            self.pos += 1;
            stars += 1;
        }
        let expected = match position {
            Position::Arg => EXPECTED_ARG,
            Position::Ret => EXPECTED_RET,
        };
        for k in (1..=words.len()).rev() {
            let mut spelling = words[..k].join(" ");
            if k == words.len() {
                spelling.push_str(&"*".repeat(stars));
            }
            if let Some(hint) = c_hint(&spelling) {
                let hint = if under_star && ScalarType::from_name(hint).is_some() {
                    format!("*{hint}")
                } else {
                    hint.to_string()
                };
                return self.err(
                    col,
                    format!("unknown type '{spelling}' (did you mean {hint}?); expected one of {expected}"),
                );
            }
        }
        self.err(
            col,
            format!("unknown type '{}'; expected one of {expected}", words[0]),
        )
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Maps a C (or otherwise familiar) type spelling to this notation.
fn c_hint(spelling: &str) -> Option<&'static str> {
    let stars = spelling.len() - spelling.trim_end_matches('*').len();
    let base: Vec<&str> = spelling
        .trim_end_matches('*')
        .split(' ')
        .filter(|w| !matches!(*w, "const" | "volatile" | "restrict"))
        .collect();
    let base = base.join(" ");
    let scalar = match base.as_str() {
        "int" | "signed" | "signed int" | "int32_t" => Some("i32"),
        "unsigned" | "unsigned int" | "uint32_t" => Some("u32"),
        "long" | "long int" | "signed long" | "signed long int" | "long long" | "long long int"
        | "signed long long" | "int64_t" | "off_t" => Some("i64"),
        "unsigned long"
        | "unsigned long int"
        | "unsigned long long"
        | "unsigned long long int"
        | "uint64_t" => Some("u64"),
        "size_t" | "uintptr_t" => Some("usize"),
        "ssize_t" | "ptrdiff_t" | "intptr_t" => Some("isize"),
        "short" | "short int" | "signed short" | "int16_t" => Some("i16"),
        "unsigned short" | "unsigned short int" | "uint16_t" => Some("u16"),
        "char" | "signed char" | "int8_t" => Some("i8"),
        "unsigned char" | "uint8_t" | "bool" | "_Bool" => Some("u8"),
        "float" => Some("f32"),
        "double" => Some("f64"),
        _ => None,
    };
    match (stars, base.as_str()) {
        (0, "str" | "string") => Some("cstr"),
        (0, "ptr" | "pointer") => Some("handle"),
        (0, _) => scalar,
        (1, "char" | "signed char") => Some("cstr"),
        (1, "unsigned char" | "uint8_t") => Some("bytes"),
        (1, "void") => Some("handle"),
        (1, _) => scalar.and_then(|s| match s {
            "i8" => Some("*i8"),
            "i16" => Some("*i16"),
            "i32" => Some("*i32"),
            "i64" => Some("*i64"),
            "u8" => Some("*u8"),
            "u16" => Some("*u16"),
            "u32" => Some("*u32"),
            "u64" => Some("*u64"),
            "isize" => Some("*isize"),
            "usize" => Some("*usize"),
            "f32" => Some("*f32"),
            "f64" => Some("*f64"),
            _ => None,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Signature {
        Signature::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn perr(s: &str) -> SignatureError {
        match Signature::parse(s) {
            Ok(sig) => panic!("{s:?} should not parse, got {sig}"),
            Err(e) => e,
        }
    }

    fn all_arg_types() -> Vec<ArgType> {
        let mut v: Vec<ArgType> = ScalarType::ALL.into_iter().map(ArgType::Scalar).collect();
        v.extend(ScalarType::ALL.map(|s| ArgType::Ptr(Pointee::Scalar(s))));
        v.extend([
            ArgType::CStr,
            ArgType::Bytes,
            ArgType::Out(1),
            ArgType::Out(16),
            ArgType::Out(MAX_OUT_LEN),
            ArgType::Ptr(Pointee::Handle),
            ArgType::Handle,
        ]);
        v
    }

    fn all_ret_types() -> Vec<RetType> {
        let mut v: Vec<RetType> = ScalarType::ALL.into_iter().map(RetType::Scalar).collect();
        v.extend([RetType::Void, RetType::CStr, RetType::Handle]);
        v
    }

    #[test]
    fn scalar_table() {
        for s in ScalarType::ALL {
            assert_eq!(ScalarType::from_name(s.name()), Some(s));
            assert_eq!(s.to_string(), s.name());
        }
        assert_eq!(ScalarType::from_name("int"), None);
        let sizes: Vec<usize> = ScalarType::ALL.iter().map(|s| s.size()).collect();
        assert_eq!(sizes, [1, 2, 4, 8, 1, 2, 4, 8, 8, 8, 4, 8]);
        let floats: Vec<_> = ScalarType::ALL
            .into_iter()
            .filter(|s| s.is_float())
            .collect();
        assert_eq!(floats, [ScalarType::F32, ScalarType::F64]);
        let unsigned: Vec<_> = ScalarType::ALL
            .into_iter()
            .filter(|s| !s.is_signed())
            .collect();
        assert_eq!(
            unsigned,
            [
                ScalarType::U8,
                ScalarType::U16,
                ScalarType::U32,
                ScalarType::U64,
                ScalarType::Usize
            ]
        );
    }

    #[test]
    fn arg_type_predicates() {
        for a in all_arg_types() {
            let pointer = matches!(
                a,
                ArgType::CStr | ArgType::Bytes | ArgType::Out(_) | ArgType::Ptr(_)
            );
            assert_eq!(a.is_pointer(), pointer, "{a}");
            assert_eq!(a.takes_value(), !matches!(a, ArgType::Out(_)), "{a}");
        }
        assert_eq!(p("f(out[4], i32, out[2], cstr)").value_arity(), 2);
    }

    #[test]
    fn every_type_parses_as_arg_and_ret() {
        for a in all_arg_types() {
            let sig = p(&format!("f({a})"));
            assert_eq!(sig.args, [a]);
            assert_eq!(sig.ret, RetType::Void);
        }
        for r in all_ret_types() {
            assert_eq!(p(&format!("f() -> {r}")).ret, r);
        }
    }

    #[test]
    fn display_round_trips() {
        let args = all_arg_types();
        for r in all_ret_types() {
            for (i, a) in args.iter().enumerate() {
                let sig = Signature {
                    name: format!("fn_{i}"),
                    args: vec![*a, args[(i + 7) % args.len()], args[(i * 3) % args.len()]],
                    ret: r,
                };
                let text = sig.to_string();
                assert_eq!(p(&text), sig, "via {text:?}");
            }
            let all = Signature {
                name: "_All9".into(),
                args: args.clone(),
                ret: r,
            };
            assert_eq!(p(&all.to_string()), all);
        }
        let none = Signature {
            name: "f".into(),
            args: vec![],
            ret: RetType::Void,
        };
        assert_eq!(none.to_string(), "f() -> void");
        assert_eq!(p("f() -> void"), none);
    }

    #[test]
    fn canonical_display() {
        let sig = p("name ( i32,*u64 , out [ 0x10 ] ,* handle,cstr )->f64");
        assert_eq!(
            sig.to_string(),
            "name(i32, *u64, out[16], *handle, cstr) -> f64"
        );
    }

    #[test]
    fn void_and_empty_args() {
        for s in [
            "f()",
            "f( )",
            "f(void)",
            "f( void )",
            "f(void) -> void",
            " f ( ) ",
        ] {
            let sig = p(s);
            assert!(sig.args.is_empty(), "{s}");
            assert_eq!(sig.ret, RetType::Void, "{s}");
        }
        assert_eq!(
            p("f(\tvoid\n)->\ti32").ret,
            RetType::Scalar(ScalarType::I32)
        );
    }

    #[test]
    fn out_lengths() {
        assert_eq!(p("f(out[1])").args, [ArgType::Out(1)]);
        assert_eq!(p("f(out[0x40])").args, [ArgType::Out(64)]);
        assert_eq!(p("f(out[0XfF])").args, [ArgType::Out(255)]);
        assert_eq!(p("f(out[1073741824])").args, [ArgType::Out(MAX_OUT_LEN)]);
        assert_eq!(p("f(out[0x40000000])").args, [ArgType::Out(MAX_OUT_LEN)]);
    }

    #[test]
    fn arg_count_limit() {
        let list = |n: usize| vec!["i32"; n].join(", ");
        assert_eq!(p(&format!("f({})", list(MAX_ARGS))).args.len(), MAX_ARGS);
        let text = format!("f({})", list(MAX_ARGS + 1));
        let e = perr(&text);
        assert!(e.message.contains("too many arguments"), "{e}");
        assert_eq!(e.column, 3 + MAX_ARGS * 5, "{e}");
        assert_eq!(text.chars().nth(e.column - 1), Some('i'));
    }

    #[test]
    fn columns_count_chars_not_bytes() {
        let e = perr("f(i32, \u{e9})");
        assert_eq!(e.column, 8);
        let e = perr("f() -> i32 \u{e9}\u{e9} x");
        assert_eq!(e.column, 12);
    }

    #[test]
    fn errors_with_columns() {
        // (input, column, words the message must contain)
        let cases: &[(&str, usize, &[&str])] = &[
            ("", 1, &["empty signature"]),
            ("  ", 1, &["empty signature"]),
            ("1f()", 1, &["function name"]),
            ("(i32)", 1, &["function name"]),
            ("f", 2, &["expected '('", "'f'"]),
            ("f i32)", 3, &["expected '('"]),
            ("f-(i32)", 2, &["expected '('"]),
            ("f(", 3, &["argument type or ')'", "end of input"]),
            ("f(i32", 6, &["missing ')'"]),
            ("f(i32 i32)", 7, &["parameter names"]),
            ("f(i32 x)", 7, &["parameter names", "i32"]),
            ("f(i32;)", 6, &["expected ',' or ')'"]),
            ("f(i32,,u8)", 7, &["empty argument"]),
            ("f(,i32)", 3, &["expected an argument type", "','"]),
            ("f(i32,)", 7, &["trailing comma"]),
            ("f(i32, )", 8, &["trailing comma"]),
            ("f(i32,", 7, &["after ','", "end of input"]),
            (
                "f(...)",
                3,
                &[
                    "variadic functions are not supported",
                    "fixed-arity wrapper",
                ],
            ),
            (
                "printf(cstr, ...)",
                14,
                &["variadic functions are not supported"],
            ),
            ("f(cstr ...)", 8, &["variadic functions are not supported"]),
            ("f(i32, ..)", 8, &["expected an argument type", "'.'"]),
            (
                "f(int)",
                3,
                &["unknown type 'int' (did you mean i32?)", EXPECTED_ARG],
            ),
            ("f(i32, unsigned)", 8, &["'unsigned' (did you mean u32?)"]),
            (
                "f(unsigned int)",
                3,
                &["'unsigned int' (did you mean u32?)"],
            ),
            ("f(long)", 3, &["did you mean i64?"]),
            ("f(long long)", 3, &["'long long' (did you mean i64?)"]),
            ("f(int64_t)", 3, &["did you mean i64?"]),
            (
                "f(unsigned long)",
                3,
                &["'unsigned long' (did you mean u64?)"],
            ),
            ("f(uint64_t)", 3, &["did you mean u64?"]),
            ("f(size_t)", 3, &["did you mean usize?"]),
            ("f(ssize_t)", 3, &["did you mean isize?"]),
            ("f(short)", 3, &["did you mean i16?"]),
            ("f(char)", 3, &["did you mean i8?"]),
            ("f(int8_t)", 3, &["did you mean i8?"]),
            ("f(uint8_t)", 3, &["did you mean u8?"]),
            ("f(unsigned char)", 3, &["did you mean u8?"]),
            ("f(float)", 3, &["did you mean f32?"]),
            ("f(double)", 3, &["did you mean f64?"]),
            ("f(int32_t)", 3, &["did you mean i32?"]),
            ("f(uint16_t)", 3, &["did you mean u16?"]),
            ("f(char*)", 3, &["'char*' (did you mean cstr?)"]),
            (
                "f(const char *)",
                3,
                &["'const char*' (did you mean cstr?)"],
            ),
            ("f(void*)", 3, &["'void*' (did you mean handle?)"]),
            ("f(void *)", 3, &["did you mean handle?"]),
            ("f(int*)", 3, &["did you mean *i32?"]),
            ("f(*int)", 4, &["did you mean *i32?"]),
            ("f(int x)", 3, &["'int' (did you mean i32?)"]),
            ("f(widget)", 3, &["unknown type 'widget'; expected one of"]),
            ("f(I32)", 3, &["unknown type 'I32'"]),
            ("f(void, i32)", 3, &["'void' is not an argument type"]),
            ("f(i32, void)", 8, &["'void' is not an argument type"]),
            (
                "f(*cstr)",
                3,
                &["'*cstr'", "only scalars and handle can be pointed to"],
            ),
            ("f(*bytes)", 3, &["'*bytes'", "only scalars and handle"]),
            (
                "f(i32, **i32)",
                8,
                &["pointers to pointers", "only scalars and handle"],
            ),
            (
                "f(*void)",
                3,
                &["'*void'", "only scalars and handle", "handle"],
            ),
            ("f(*out[4])", 3, &["'*out'", "only scalars and handle"]),
            ("f(*)", 4, &["expected a type after '*'"]),
            ("f(* )", 5, &["expected a type after '*'"]),
            ("f(i32*)", 6, &["leading '*'"]),
            ("f(out)", 6, &["out[N]"]),
            ("f(out[])", 7, &["expected a length", "']'"]),
            ("f(out[0])", 7, &["out[0] is empty"]),
            ("f(out[0x0])", 7, &["out[0] is empty"]),
            ("f(out[-1])", 7, &["expected a length"]),
            ("f(out[1073741825])", 7, &["too large", "1073741824"]),
            ("f(out[0x40000001])", 7, &["too large"]),
            ("f(out[99999999999999999999999])", 7, &["too large"]),
            ("f(out[12ab])", 7, &["invalid length '12ab'"]),
            ("f(out[0x])", 7, &["invalid length '0x'"]),
            ("f(out[16)", 9, &["expected ']'"]),
            ("f(out[16 16])", 10, &["expected ']'"]),
            (
                "f() -> bytes",
                8,
                &["cannot return bytes", "cannot know the length", "out[N]"],
            ),
            ("f() -> out[8]", 8, &["cannot return out[N]"]),
            ("f() -> *i32", 8, &["cannot return a pointer", "handle"]),
            ("f() -> *handle", 8, &["cannot return a pointer"]),
            ("f() -> int", 8, &["did you mean i32?", EXPECTED_RET]),
            ("f() -> const char*", 8, &["did you mean cstr?"]),
            ("f() ->", 7, &["expected a return type", "end of input"]),
            ("f() -> ", 8, &["expected a return type"]),
            ("f() -> (", 8, &["expected a return type", "'('"]),
            ("f() - > i32", 5, &["expected '-> ret'"]),
            ("f() i32", 5, &["expected '-> ret'", "'i32'"]),
            (
                "f() -> i32 x",
                12,
                &["unexpected 'x' after the return type"],
            ),
            ("f() -> i32;", 11, &["unexpected ';'"]),
            ("f(i32))", 7, &["expected '-> ret'"]),
            ("f(i32)\n-> i32\nx", 15, &["unexpected 'x'"]),
        ];
        for &(input, column, needles) in cases {
            let e = perr(input);
            assert_eq!(e.column, column, "{input:?}: {e}");
            for n in needles {
                assert!(e.message.contains(n), "{input:?}: {e} lacks {n:?}");
            }
            assert!(!e.message.contains('\n'), "{input:?}: {e}");
            assert_eq!(e.to_string(), format!("column {column}: {}", e.message));
        }
    }

    #[test]
    fn from_str_matches_parse() {
        let s = "f(handle) -> handle";
        assert_eq!(s.parse::<Signature>().unwrap(), p(s));
        assert_eq!("f(".parse::<Signature>().unwrap_err(), perr("f("));
    }
}
