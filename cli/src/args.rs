//! Arguments as a person types them: the text forms of `ffb call` (decimal or
//! `0x` hex integers, `hex:` and `@PATH` buffers, `null` handles) and the JSON
//! forms of `ffb session`, and the check that one is given per parameter.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;

use ffb_abi::signature::{ArgType, Pointee, ScalarType, Signature};
use ffb_loader::{Error, ErrorKind, Handle, Result, Value, DEFAULT_ARENA};
use serde_json::Value as Json;

use crate::files::{human_bytes, read_regular};
use crate::output::quoted;

/// The values for `sig`'s parameters from one given form per parameter
/// that takes a value (`out[N]` takes none), each read by `parse` with its
/// 1-based position; a wrong count is reported before any is read.
pub fn values_for<T>(
    sig: &Signature,
    given: &[T],
    parse: impl Fn(ArgType, &T, usize) -> Result<Value>,
) -> Result<Vec<Value>> {
    if let Some(message) = sig.arity_mismatch(given.len()) {
        return Err(Error::new(ErrorKind::BadArgument, message));
    }
    let mut given = given.iter();
    let mut values = Vec::with_capacity(sig.value_arity());
    for (i, ty) in sig.args.iter().enumerate() {
        if ty.takes_value() {
            values.push(parse(*ty, given.next().expect("count checked"), i + 1)?);
        }
    }
    Ok(values)
}

fn bad(position: usize, message: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::BadArgument,
        format!("argument {position}: {message}"),
    )
}

/// Parses a command-line integer: decimal, or hex with `0x` (either may be
/// negative, with the sign before the `0x`).
fn parse_int(text: &str) -> Option<i128> {
    let t = text.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (radix, digits) = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => (16, hex),
        None => (10, digits),
    };
    // from_str_radix would take a second sign (`0x-1`): only digits here.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    Some(if neg { -magnitude } else { magnitude })
}

/// Whether `text` spells an infinity (`inf`, `-Infinity`...), which is the
/// only way a float argument may be infinite.
fn spells_infinity(text: &str) -> bool {
    let t = text.trim();
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity")
}

/// `v` as a value of the float type `scalar`, refusing a finite number that
/// is too large for it (`1e400` for f64, `1e39` for f32) rather than
/// rounding it to an infinity. `text` is how it was written, for messages.
fn float_value(scalar: ScalarType, v: f64, text: &str, position: usize) -> Result<Value> {
    let out_of_range = || {
        bad(
            position,
            format!("{} is out of range for {scalar}", quoted(text)),
        )
    };
    if v.is_infinite() && !spells_infinity(text) {
        return Err(out_of_range());
    }
    if scalar == ScalarType::F32 {
        let narrow = v as f32;
        if narrow.is_infinite() && v.is_finite() {
            return Err(out_of_range());
        }
        return Ok(Value::F32(narrow));
    }
    Ok(Value::F64(v))
}

fn scalar_from_text(scalar: ScalarType, text: &str, position: usize) -> Result<Value> {
    if scalar.is_float() {
        let v: f64 = text.trim().parse().map_err(|_| {
            bad(
                position,
                format!("'{}' is not a number ({scalar})", quoted(text)),
            )
        })?;
        return float_value(scalar, v, text, position);
    }
    let v = parse_int(text).ok_or_else(|| {
        bad(
            position,
            format!(
                "'{}' is not an integer ({scalar}; decimal or 0x hex)",
                quoted(text)
            ),
        )
    })?;
    Value::from_int(scalar, v).ok_or_else(|| {
        bad(
            position,
            format!("{} is out of range for {scalar}", quoted(text)),
        )
    })
}

fn handle_from_text(text: &str, position: usize) -> Result<Value> {
    match text.trim() {
        "null" | "0" | "NULL" => Ok(Value::Null),
        t => t
            .parse::<Handle>()
            .map(Value::Handle)
            .map_err(|e| bad(position, e.message)),
    }
}

/// Text forms of `cstr` and `bytes`: plain text, `hex:...`, or `@PATH`.
fn bytes_from_text(text: &str, position: usize) -> Result<Vec<u8>> {
    if let Some(h) = text.strip_prefix("hex:") {
        return hex::decode(h).map_err(|e| bad(position, e));
    }
    if let Some(path) = text.strip_prefix('@') {
        // Nothing larger than the arena could be passed anyway.
        return read_regular(Path::new(path), DEFAULT_ARENA as u64).map_err(|why| {
            let limit = if why.starts_with("it is larger") {
                " (the arena)"
            } else {
                ""
            };
            bad(position, format!("@{}: {why}{limit}", quoted(path)))
        });
    }
    Ok(text.as_bytes().to_vec())
}

const CSTR_NUL: &str = "a cstr cannot contain a NUL byte (use bytes for binary data)";

fn cstr_value(bytes: Vec<u8>, position: usize) -> Result<Value> {
    if bytes.contains(&0) {
        return Err(bad(position, CSTR_NUL));
    }
    Ok(Value::Str(bytes))
}

/// Parses one command-line argument for a parameter of type `ty`.
/// `position` is 1-based, for messages.
pub fn arg_from_text(ty: ArgType, text: &str, position: usize) -> Result<Value> {
    match ty {
        ArgType::Scalar(s) | ArgType::Ptr(Pointee::Scalar(s)) => {
            scalar_from_text(s, text, position)
        }
        ArgType::Handle | ArgType::Ptr(Pointee::Handle) => handle_from_text(text, position),
        ArgType::CStr => cstr_value(bytes_from_text(text, position)?, position),
        ArgType::Bytes => Ok(Value::Bytes(bytes_from_text(text, position)?)),
        ArgType::Out(_) => Err(bad(position, "out[N] takes no argument")),
    }
}

/// Parses one session (JSON) argument for a parameter of type `ty`.
pub fn arg_from_json(ty: ArgType, v: &Json, position: usize) -> Result<Value> {
    let kind = |v: &Json| match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    };
    match (ty, v) {
        (ArgType::Scalar(s) | ArgType::Ptr(Pointee::Scalar(s)), Json::Number(n)) => {
            if s.is_float() {
                let f = n.as_f64().unwrap_or(f64::NAN);
                float_value(s, f, &n.to_string(), position)
            } else {
                let i = n
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from))
                    .ok_or_else(|| bad(position, format!("{n} is not an integer ({s})")))?;
                Value::from_int(s, i)
                    .ok_or_else(|| bad(position, format!("{n} is out of range for {s}")))
            }
        }
        (ArgType::Scalar(s) | ArgType::Ptr(Pointee::Scalar(s)), Json::String(t)) => {
            scalar_from_text(s, t, position)
        }
        (ArgType::Handle | ArgType::Ptr(Pointee::Handle), Json::Null) => Ok(Value::Null),
        (ArgType::Handle | ArgType::Ptr(Pointee::Handle), Json::String(t)) => {
            handle_from_text(t, position)
        }
        (ArgType::CStr, Json::String(t)) => cstr_value(t.as_bytes().to_vec(), position),
        (ArgType::Bytes, Json::String(t)) => Ok(Value::Bytes(t.as_bytes().to_vec())),
        (ArgType::CStr | ArgType::Bytes, Json::Object(o)) if o.len() == 1 => {
            let h = o
                .get("hex")
                .and_then(Json::as_str)
                .ok_or_else(|| bad(position, "expected {\"hex\": \"...\"}"))?;
            let b = hex::decode(h).map_err(|e| bad(position, e))?;
            if ty == ArgType::CStr {
                cstr_value(b, position)
            } else {
                Ok(Value::Bytes(b))
            }
        }
        (ArgType::Out(_), _) => Err(bad(position, "out[N] takes no argument")),
        (ty, v) => Err(bad(position, format!("{ty} cannot take {}", kind(v)))),
    }
}

/// Alignment of each buffer in the arena, as the bridge lays them out.
const BUFFER_ALIGN: usize = 16;

/// Checks, before a helper is started, that the call's buffers (`cstr`,
/// `bytes`, `out[N]`, `*T`) fit in the arena together, as the bridge lays
/// them out: each rounded up to [`BUFFER_ALIGN`]. The bridge checks again,
/// exactly, when it lays out the call; this refuses the hopeless cases
/// (a 100 MB `@FILE`, `out[1073741824]`) without spawning anything.
pub fn check_fits(sig: &Signature, values: &[Value]) -> Result<()> {
    let mut given = values.iter();
    let mut total: usize = 0;
    for (i, ty) in sig.args.iter().enumerate() {
        let value = if ty.takes_value() { given.next() } else { None };
        let len = match (ty, value) {
            (ArgType::Out(n), _) => *n,
            (ArgType::CStr, Some(Value::Str(b))) => b.len() + 1,
            (ArgType::Bytes, Some(Value::Bytes(b))) => b.len(),
            (ArgType::Ptr(_), _) => 8,
            _ => continue,
        };
        total = total.saturating_add(len.max(1).next_multiple_of(BUFFER_ALIGN));
        if total > DEFAULT_ARENA {
            return Err(bad(
                i + 1,
                format!(
                    "the call's buffers need more than the {} arena",
                    human_bytes(DEFAULT_ARENA as u64)
                ),
            ));
        }
    }
    Ok(())
}

/// What [`mark_negative_literals`] puts before a negative literal: a NUL,
/// which no command-line argument can contain.
const NEGATIVE_MARK: char = '\0';

/// Whether `token` is a negative literal as ffb reads values: `-5`,
/// `-0x10`, `-1.5e-3`, `-inf`, `-infinity`, `-nan` (any case).
pub fn is_negative_literal(token: &str) -> bool {
    let Some(rest) = token.strip_prefix('-') else {
        return false;
    };
    if ["inf", "infinity", "nan"]
        .iter()
        .any(|w| rest.eq_ignore_ascii_case(w))
    {
        return true;
    }
    if let Some(hex) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
        return !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') && rest.parse::<f64>().is_ok()
}

/// The command line with every negative literal given as a value of `ffb
/// call` or `ffb sql` marked, so that clap takes it for a value and not for
/// a flag (clap knows only decimal negative numbers, not `-inf` or
/// `-0x10`), while flags after the values still parse. A negative literal
/// right after an option that takes a value is joined to it (`--opt=-5`);
/// anything after `--` is left as is.
/// The positionals that take such values strip the mark with [`unmarked`].
pub fn mark_negative_literals(argv: Vec<OsString>, cli: &clap::Command) -> Vec<OsString> {
    let Some(sub) = argv
        .get(1)
        .and_then(|a| a.to_str())
        .and_then(|name| cli.find_subcommand(name))
        .filter(|sub| matches!(sub.get_name(), "call" | "sql"))
    else {
        return argv;
    };
    let takes_value = |token: &str| {
        let Some(long) = token.strip_prefix("--") else {
            return false;
        };
        !long.contains('=')
            && sub
                .get_arguments()
                .any(|a| a.get_long() == Some(long) && a.get_action().takes_values())
    };
    let mut out: Vec<OsString> = Vec::with_capacity(argv.len());
    let mut after_option = false;
    let mut escaped = false;
    for token in argv {
        let text = token.to_str().unwrap_or("");
        let negative = !escaped && is_negative_literal(text);
        if negative && after_option {
            // `--timeout-ms -5` as `--timeout-ms=-5`, which clap reads
            // as the option's value whatever it starts with.
            let option = out.pop().expect("the option came before");
            let mut joined = option;
            joined.push("=");
            joined.push(&token);
            out.push(joined);
            after_option = false;
            continue;
        }
        escaped |= text == "--";
        after_option = !escaped && takes_value(text);
        out.push(if negative {
            format!("{NEGATIVE_MARK}{text}").into()
        } else {
            token
        });
    }
    out
}

/// A positional value as typed, without the mark
/// [`mark_negative_literals`] may have put on it (a clap value parser).
pub fn unmarked(value: &str) -> std::result::Result<String, String> {
    Ok(value
        .strip_prefix(NEGATIVE_MARK)
        .unwrap_or(value)
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffb_abi::signature::ScalarType;

    #[test]
    fn integers_parse_in_decimal_and_hex_with_range_checks() {
        let i8t = ArgType::Scalar(ScalarType::I8);
        assert_eq!(arg_from_text(i8t, "-128", 1).unwrap(), Value::I8(-128));
        assert_eq!(arg_from_text(i8t, "0x7f", 1).unwrap(), Value::I8(127));
        assert!(arg_from_text(i8t, "128", 1)
            .unwrap_err()
            .message
            .contains("out of range"));
        assert!(arg_from_text(i8t, "12a", 2)
            .unwrap_err()
            .message
            .starts_with("argument 2"));
        assert!(arg_from_text(i8t, "0x-1", 1).is_err());
        assert!(arg_from_text(i8t, "0x+1", 1).is_err());
        assert_eq!(arg_from_text(i8t, "-0x10", 1).unwrap(), Value::I8(-16));
        let u64t = ArgType::Scalar(ScalarType::U64);
        assert_eq!(
            arg_from_text(u64t, "0xffffffffffffffff", 1).unwrap(),
            Value::U64(u64::MAX)
        );
        assert!(arg_from_text(u64t, "-1", 1).is_err());
    }

    #[test]
    fn floats_too_large_for_their_type_are_refused() {
        let f64t = ArgType::Scalar(ScalarType::F64);
        let f32t = ArgType::Scalar(ScalarType::F32);
        for (ty, text) in [(f64t, "1e400"), (f64t, "-1e400"), (f32t, "1e39")] {
            let e = arg_from_text(ty, text, 1).unwrap_err();
            assert!(e.message.contains("out of range"), "{text}: {e}");
        }
        assert_eq!(arg_from_text(f32t, "3e38", 1).unwrap(), Value::F32(3e38));
        assert_eq!(
            arg_from_text(f64t, "-inf", 1).unwrap(),
            Value::F64(f64::NEG_INFINITY)
        );
        assert_eq!(
            arg_from_text(f32t, "Infinity", 1).unwrap(),
            Value::F32(f32::INFINITY)
        );
        let e = arg_from_json(f32t, &serde_json::json!(1e39), 1).unwrap_err();
        assert!(e.message.contains("out of range"), "{e}");
    }

    #[test]
    fn negative_literals_are_told_from_flags() {
        for yes in [
            "-5",
            "-0x10",
            "-0XfF",
            "-1.5e-3",
            "-.5",
            "-inf",
            "-Infinity",
            "-NaN",
        ] {
            assert!(is_negative_literal(yes), "{yes}");
        }
        for no in [
            "-", "--", "--json", "-x", "-0x", "-0xg", "-h", "-i", "5", "-1-2",
        ] {
            assert!(!is_negative_literal(no), "{no}");
        }
    }

    #[test]
    fn text_forms_of_buffers() {
        assert_eq!(
            arg_from_text(ArgType::Bytes, "hex:00ff", 1).unwrap(),
            Value::Bytes(vec![0, 255])
        );
        assert!(arg_from_text(ArgType::Bytes, "hex:0", 1).is_err());
        assert!(arg_from_text(ArgType::Bytes, "@/no/such/file", 1).is_err());
        assert_eq!(
            arg_from_text(ArgType::CStr, "hi", 1).unwrap(),
            Value::Str(b"hi".to_vec())
        );
    }

    #[test]
    fn handles_round_trip_and_reject_garbage() {
        let text = "handle:3:9";
        let h: Handle = text.parse().unwrap();
        assert_eq!(h.generation(), 3);
        assert_eq!(h.to_string(), text);
        assert!("handle:x:1".parse::<Handle>().is_err());
        assert_eq!(
            arg_from_text(ArgType::Handle, "null", 1).unwrap(),
            Value::Null
        );
    }
}
