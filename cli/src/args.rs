//! Arguments as a person types them: the text forms of `ffb call` (decimal or
//! `0x` hex integers, `hex:` and `@PATH` buffers, `null` handles) and the JSON
//! forms of `ffb session`, and the check that one is given per parameter.

use std::fmt;

use ffb_abi::signature::{ArgType, Pointee, ScalarType, Signature};
use ffb_loader::{Error, ErrorKind, Handle, Result, Value};
use serde_json::Value as Json;

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

/// Parses a command-line integer: decimal, or hex with `0x` (either may be negative).
fn parse_int(text: &str) -> Option<i128> {
    let t = text.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let magnitude = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i128::from_str_radix(hex, 16).ok()?,
        None if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse().ok()?
        }
        None => return None,
    };
    Some(if neg { -magnitude } else { magnitude })
}

fn scalar_from_text(scalar: ScalarType, text: &str, position: usize) -> Result<Value> {
    if scalar.is_float() {
        let v: f64 = text
            .trim()
            .parse()
            .map_err(|_| bad(position, format!("'{text}' is not a number ({scalar})")))?;
        return Ok(if scalar == ScalarType::F32 {
            Value::F32(v as f32)
        } else {
            Value::F64(v)
        });
    }
    let v = parse_int(text).ok_or_else(|| {
        bad(
            position,
            format!("'{text}' is not an integer ({scalar}; decimal or 0x hex)"),
        )
    })?;
    Value::from_int(scalar, v)
        .ok_or_else(|| bad(position, format!("{text} is out of range for {scalar}")))
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
        return std::fs::read(path)
            .map_err(|e| bad(position, format!("cannot read '{path}': {e}")));
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
                Ok(if s == ScalarType::F32 {
                    Value::F32(f as f32)
                } else {
                    Value::F64(f)
                })
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
        let u64t = ArgType::Scalar(ScalarType::U64);
        assert_eq!(
            arg_from_text(u64t, "0xffffffffffffffff", 1).unwrap(),
            Value::U64(u64::MAX)
        );
        assert!(arg_from_text(u64t, "-1", 1).is_err());
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
