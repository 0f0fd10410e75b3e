//! The parser of `name(type, ...) -> ret`.
//!
//! Each mistake is reported at the column where it starts, with the fix
//! when there is an obvious one: a C spelling gets its equivalent here (see
//! [`hints`](super::hints)), a variadic or a pointer return gets the reason
//! the bridge cannot take it.

use super::hints::c_hint;
use super::{
    ArgType, Pointee, RetType, ScalarType, Signature, SignatureError, MAX_ARGS, MAX_NAME_LEN,
    MAX_OUT_LEN,
};
use crate::cursor::{is_ident_start, is_word_char, ColumnError, Cursor};

/// An argument type as written, with its kind: `handle<db>`, `*handle<stmt>`.
fn written(ty: ArgType, kind: Option<&str>) -> String {
    match kind {
        Some(kind) => format!("{ty}<{kind}>"),
        None => ty.to_string(),
    }
}

impl ColumnError for SignatureError {
    fn at(column: usize, message: String) -> Self {
        SignatureError { column, message }
    }
}

/// The cursor, and the parser's methods on it.
pub(super) type Parser = Cursor<SignatureError>;

type Res<T> = Result<T, SignatureError>;

/// The argument types, for "expected one of" in messages.
pub(super) const EXPECTED_ARG: &str =
    "i8 i16 i32 i64 u8 u16 u32 u64 isize usize f32 f64 cstr bytes out[N] *T handle handle<kind>";
/// The return types, for "expected one of" in messages.
pub(super) const EXPECTED_RET: &str =
    "void i8 i16 i32 i64 u8 u16 u32 u64 isize usize f32 f64 cstr handle handle<kind>";
const ONLY_POINTEES: &str = "only scalars and handle can be pointed to (e.g. *i32, *handle)";

/// A type as written, before deciding whether it is legal where it appears:
/// every argument type (with the kind of a `handle<kind>` or
/// `*handle<kind>`), or `void`.
enum Ty {
    Arg(ArgType, Option<String>),
    Void,
}

/// Where a type stands, which decides what it may be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    Arg,
    Ret,
}

impl Parser {
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

    pub(super) fn signature(&mut self) -> Res<Signature> {
        let name = match self.peek() {
            None => {
                return self.err(1, "empty signature: expected name(type, ...) -> ret");
            }
            Some(c) if is_ident_start(c) => self.word(),
            Some(_) => {
                return self.err_found(|found| {
                    format!("expected a function name (a C identifier), found {found}")
                });
            }
        };
        if name.len() > MAX_NAME_LEN {
            return self.err(
                1,
                format!(
                    "the function name is {} bytes long, more than the {MAX_NAME_LEN} a name may have",
                    name.len()
                ),
            );
        }
        if self.peek() != Some('(') {
            return self.err_found(|found| {
                format!("expected '(' after function name '{name}', found {found}")
            });
        }
        self.bump();
        let (args, mut arg_kinds) = self.args()?;
        let (ret, ret_kind) = self.ret()?;
        if arg_kinds.iter().all(Option::is_none) {
            // The canonical form: no kinds, no vector (see Signature::arg_kinds).
            arg_kinds.clear();
        }
        Ok(Signature {
            name,
            args,
            ret,
            arg_kinds,
            ret_kind,
        })
    }

    /// Parses the argument list and each argument's handle kind; the cursor
    /// is just past `(` and ends just past `)`.
    fn args(&mut self) -> Res<(Vec<ArgType>, Vec<Option<String>>)> {
        let mut args = Vec::new();
        let mut kinds = Vec::new();
        if self.peek() == Some(')') {
            self.bump();
            return Ok((args, kinds));
        }
        if self.at("void") {
            let save = self.column();
            self.advance(4);
            let alone = !self.current().is_some_and(is_word_char) && self.peek() == Some(')');
            if alone {
                self.bump();
                return Ok((args, kinds));
            }
            self.seek(save);
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
                Ty::Arg(a, kind) => {
                    kinds.push(kind);
                    a
                }
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
                    self.bump();
                    after_comma = true;
                }
                Some(')') => {
                    self.bump();
                    return Ok((args, kinds));
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
                            written(args[args.len() - 1], kinds[kinds.len() - 1].as_deref())
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

    /// Parses the optional `-> ret` (and its handle kind) and checks nothing
    /// follows it.
    fn ret(&mut self) -> Res<(RetType, Option<String>)> {
        if self.peek().is_none() {
            return Ok((RetType::Void, None));
        }
        if !self.at("->") {
            return self.err_found(|found| {
                format!("expected '-> ret' or end of input after ')', found {found}")
            });
        }
        self.advance(2);
        let col = {
            self.skip_ws();
            self.column()
        };
        if self.peek().is_none() {
            return self.err(col, "expected a return type after '->', found end of input");
        }
        let mut kind = None;
        let ret = match self.ty(Position::Ret)? {
            Ty::Void => RetType::Void,
            Ty::Arg(ArgType::Scalar(s), _) => RetType::Scalar(s),
            Ty::Arg(ArgType::CStr, _) => RetType::CStr,
            Ty::Arg(ArgType::Handle, k) => {
                kind = k;
                RetType::Handle
            }
            Ty::Arg(ArgType::Bytes, _) => {
                return self.err(
                    col,
                    "a function cannot return bytes: the bridge cannot know the length; \
                     return cstr or use an out[N] argument",
                );
            }
            Ty::Arg(ArgType::Out(_), _) => {
                return self.err(
                    col,
                    "a function cannot return out[N]: out buffers are arguments the callee fills; \
                     declare it as an argument and return void or a status code",
                );
            }
            Ty::Arg(ArgType::Ptr(p), k) => {
                let p = written(ArgType::Ptr(p), k.as_deref());
                let p = &p[1..];
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
            return self.err_found(|found| format!("unexpected {found} after the return type"));
        }
        Ok((ret, kind))
    }

    fn ty(&mut self, position: Position) -> Res<Ty> {
        self.skip_ws();
        let col = self.column();
        match self.peek() {
            Some('*') => {
                self.bump();
                self.pointee(col)
                    .map(|(p, kind)| Ty::Arg(ArgType::Ptr(p), kind))
            }
            Some(c) if is_ident_start(c) => {
                let w = self.word();
                let ty = match w.as_str() {
                    "cstr" => Ty::Arg(ArgType::CStr, None),
                    "bytes" => Ty::Arg(ArgType::Bytes, None),
                    "handle" => Ty::Arg(ArgType::Handle, self.kind()?),
                    "out" => Ty::Arg(ArgType::Out(self.out_len()?), None),
                    "void" if !self.followed_by('*') => Ty::Void,
                    other => match ScalarType::from_name(other) {
                        Some(s) => Ty::Arg(ArgType::Scalar(s), None),
                        None => {
                            self.seek(col);
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

    /// Parses the optional `<kind>` after `handle`: a C identifier between
    /// angle brackets, spaces allowed around it.
    fn kind(&mut self) -> Res<Option<String>> {
        if !self.followed_by('<') {
            return Ok(None);
        }
        self.skip_ws();
        self.bump();
        self.skip_ws();
        let col = self.column();
        match self.current() {
            Some(c) if is_ident_start(c) => {}
            Some('>') => {
                return self.err(
                    col,
                    "empty handle kind: write handle<NAME> (e.g. handle<stmt>), or handle for any kind",
                );
            }
            _ => {
                return self.err_found(|found| {
                    format!(
                        "expected a handle kind after '<' (a name such as stmt or sqlite3), found {found}"
                    )
                });
            }
        }
        let kind = self.word();
        if self.peek() != Some('>') {
            return self.err_found(|found| {
                format!("expected '>' to close handle<{kind}>, found {found} (a kind is one name)")
            });
        }
        self.bump();
        Ok(Some(kind))
    }

    /// Parses what follows `*`, and the kind of a `*handle<kind>`;
    /// `star_col` is where the `*` was.
    fn pointee(&mut self, star_col: usize) -> Res<(Pointee, Option<String>)> {
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
                    return Ok((Pointee::Scalar(s), None));
                }
                let why = match w.as_str() {
                    "handle" => return Ok((Pointee::Handle, self.kind()?)),
                    "cstr" | "bytes" => "it is already passed as a pointer; drop the '*'",
                    "out" => "out[N] is already a buffer the callee writes; drop the '*'",
                    "void" if !self.followed_by('*') => "use handle for an opaque pointer",
                    _ => {
                        self.seek(col);
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
        self.bump();
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
            return self.err_found(|found| format!("expected ']' to close out[N], found {found}"));
        }
        self.bump();
        Ok(n as usize)
    }

    /// Reports an unknown type name at the cursor, suggesting the notation's
    /// equivalent when the input looks like a C spelling such as
    /// `unsigned long` or `const char *`.
    fn unknown<T>(&mut self, position: Position, under_star: bool) -> Res<T> {
        let col = self.column();
        let mut words = vec![self.word()];
        loop {
            let save = self.column();
            self.skip_ws();
            if self.current().is_some_and(is_ident_start) {
                words.push(self.word());
            } else {
                self.seek(save);
                break;
            }
        }
        let mut stars = 0;
        while self.peek() == Some('*') {
            self.bump();
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
