//! Values that cross the bridge: arguments, return values and out-values.

use std::fmt;
use std::str::FromStr;

use ffb_policy::signature::{ArgType, Pointee, ScalarType};
use serde_json::{json, Value as Json};

use crate::error::{Error, ErrorKind, Result};

/// A token for an opaque pointer that lives in a helper. The host never sees
/// the pointer; a token from a helper that has since died is stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle {
    pub(crate) generation: u64,
    pub(crate) index: u32,
}

impl Handle {
    /// The generation of the helper that issued this handle: a handle is only
    /// valid on the bridge whose [`crate::Bridge::generation`] equals it.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handle:{}:{}", self.generation, self.index)
    }
}

impl FromStr for Handle {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::new(
                ErrorKind::StaleHandle,
                format!("'{s}' is not a handle token (tokens look like handle:3:0)"),
            )
        };
        let rest = s.strip_prefix("handle:").ok_or_else(bad)?;
        let (generation, index) = rest.split_once(':').ok_or_else(bad)?;
        Ok(Handle {
            generation: generation.parse().map_err(|_| bad())?,
            index: index.parse().map_err(|_| bad())?,
        })
    }
}

/// A value passed to or returned from a bridged function.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `i8`
    I8(i8),
    /// `i16`
    I16(i16),
    /// `i32`
    I32(i32),
    /// `i64`
    I64(i64),
    /// `u8`
    U8(u8),
    /// `u16`
    U16(u16),
    /// `u32`
    U32(u32),
    /// `u64`
    U64(u64),
    /// `isize`
    Isize(isize),
    /// `usize`
    Usize(usize),
    /// `f32`
    F32(f32),
    /// `f64`
    F64(f64),
    /// A C string's bytes, without the NUL (a `cstr` argument or return).
    Str(Vec<u8>),
    /// A byte buffer (`bytes`, and `out[N]` after the call).
    Bytes(Vec<u8>),
    /// A handle token (`handle`, `*handle`).
    Handle(Handle),
    /// `void`, a NULL `cstr` return, or a NULL handle.
    Null,
    /// For a `bytes` parameter: the first N bytes of the bridge's shared
    /// buffer, passed without copying (see `Bridge::shared_buffer`).
    Shared(usize),
}

impl Value {
    /// A `cstr` argument from text.
    pub fn str(s: impl AsRef<[u8]>) -> Value {
        Value::Str(s.as_ref().to_vec())
    }

    /// A `bytes` argument.
    pub fn bytes(b: impl AsRef<[u8]>) -> Value {
        Value::Bytes(b.as_ref().to_vec())
    }

    /// The value as an i128 if it is an integer.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::I8(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::I64(v) => v.into(),
            Value::U8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::Isize(v) => v as i128,
            Value::Usize(v) => v as i128,
            _ => return None,
        })
    }

    /// The value as an f64 if it is a float.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The bytes of a `Str` or `Bytes` value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(b) | Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The JSON form used by `ffb call --json` and sessions.
    pub fn to_json(&self) -> Json {
        match self {
            Value::F32(v) => float_json((*v).into()),
            Value::F64(v) => float_json(*v),
            Value::Str(b) => json!(String::from_utf8_lossy(b)),
            Value::Bytes(b) => json!({ "hex": hex(b) }),
            Value::Handle(h) => json!(h.to_string()),
            Value::Null => Json::Null,
            Value::Shared(n) => json!({ "shared": n }),
            other => match other.as_i128() {
                Some(i) if i < 0 => json!(i as i64),
                Some(i) => json!(i as u64),
                None => Json::Null,
            },
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Str(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Value::Bytes(b) => write!(f, "hex:{}", hex(b)),
            Value::Handle(h) => write!(f, "{h}"),
            Value::Null => write!(f, "null"),
            Value::Shared(n) => write!(f, "shared[{n}]"),
            other => write!(f, "{}", other.as_i128().unwrap_or_default()),
        }
    }
}

fn float_json(v: f64) -> Json {
    if v.is_finite() {
        json!(v)
    } else {
        // JSON has no NaN or infinity; strings keep them distinguishable.
        json!(v.to_string())
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses hex digits (an even number of them).
pub fn unhex(s: &str) -> std::result::Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("hex has an odd number of digits ({})", s.len()));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16)
                .map_err(|_| format!("'{}' is not hex", s.get(i..i + 2).unwrap_or(s)))
        })
        .collect()
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

/// Builds the value of `scalar` from an integer, checking its range.
pub fn scalar_from_int(scalar: ScalarType, v: i128) -> Option<Value> {
    Some(match scalar {
        ScalarType::I8 => Value::I8(v.try_into().ok()?),
        ScalarType::I16 => Value::I16(v.try_into().ok()?),
        ScalarType::I32 => Value::I32(v.try_into().ok()?),
        ScalarType::I64 => Value::I64(v.try_into().ok()?),
        ScalarType::U8 => Value::U8(v.try_into().ok()?),
        ScalarType::U16 => Value::U16(v.try_into().ok()?),
        ScalarType::U32 => Value::U32(v.try_into().ok()?),
        ScalarType::U64 => Value::U64(v.try_into().ok()?),
        ScalarType::Isize => Value::Isize(v.try_into().ok()?),
        ScalarType::Usize => Value::Usize(v.try_into().ok()?),
        ScalarType::F32 => Value::F32(v as f32),
        ScalarType::F64 => Value::F64(v as f64),
    })
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
    scalar_from_int(scalar, v)
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
        return unhex(h).map_err(|e| bad(position, e));
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
                scalar_from_int(s, i)
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
            let b = unhex(h).map_err(|e| bad(position, e))?;
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

/// The 64-bit word for a scalar argument of type `s`, after checking that `v`
/// is a number that fits (integers convert between widths with a range check,
/// so callers can pass e.g. `Value::I64` to an `i32`). Allocates only on error.
pub(crate) fn scalar_word(s: ScalarType, v: &Value, position: usize) -> Result<u64> {
    let mismatch = || bad(position, format!("{s} cannot take {v:?}"));
    // An f32 keeps its exact bits (a round trip through f64 would quiet a
    // signalling NaN).
    if let (ScalarType::F32, Value::F32(f)) = (s, v) {
        return Ok(u64::from(f.to_bits()));
    }
    let value = if s.is_float() {
        let f = v.as_f64().ok_or_else(mismatch)?;
        if s == ScalarType::F32 {
            Value::F32(f as f32)
        } else {
            Value::F64(f)
        }
    } else {
        let i = v.as_i128().ok_or_else(mismatch)?;
        scalar_from_int(s, i)
            .ok_or_else(|| bad(position, format!("{i} is out of range for {s}")))?
    };
    Ok(encode_scalar(&value))
}

/// The bytes of a `cstr` or `bytes` argument, borrowed from the value.
pub(crate) fn buffer_bytes(ty: ArgType, v: &Value, position: usize) -> Result<&[u8]> {
    let bytes = match v {
        Value::Str(b) | Value::Bytes(b) => b.as_slice(),
        _ => return Err(bad(position, format!("{ty} cannot take {v:?}"))),
    };
    if ty == ArgType::CStr && bytes.contains(&0) {
        return Err(bad(position, CSTR_NUL));
    }
    Ok(bytes)
}

/// The scalar type of a return type, for decoding.
pub(crate) fn decode_scalar(s: ScalarType, raw: u64) -> Value {
    match s {
        ScalarType::I8 => Value::I8(raw as i8),
        ScalarType::I16 => Value::I16(raw as i16),
        ScalarType::I32 => Value::I32(raw as i32),
        ScalarType::I64 => Value::I64(raw as i64),
        ScalarType::U8 => Value::U8(raw as u8),
        ScalarType::U16 => Value::U16(raw as u16),
        ScalarType::U32 => Value::U32(raw as u32),
        ScalarType::U64 => Value::U64(raw),
        ScalarType::Isize => Value::Isize(raw as i64 as isize),
        ScalarType::Usize => Value::Usize(raw as usize),
        ScalarType::F32 => Value::F32(f32::from_bits(raw as u32)),
        ScalarType::F64 => Value::F64(f64::from_bits(raw)),
    }
}

/// The raw 64-bit word for a scalar value (already coerced to its type).
pub(crate) fn encode_scalar(v: &Value) -> u64 {
    match *v {
        Value::F32(f) => f.to_bits() as u64,
        Value::F64(f) => f.to_bits(),
        ref other => other.as_i128().unwrap_or_default() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let h = Handle {
            generation: 3,
            index: 9,
        };
        assert_eq!(h.to_string().parse::<Handle>().unwrap(), h);
        assert!("handle:x:1".parse::<Handle>().is_err());
        assert_eq!(
            arg_from_text(ArgType::Handle, "null", 1).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn json_values() {
        assert_eq!(Value::F64(f64::NAN).to_json(), json!("NaN"));
        assert_eq!(Value::I64(-3).to_json(), json!(-3));
        assert_eq!(Value::U64(u64::MAX).to_json(), json!(u64::MAX));
        assert_eq!(Value::Bytes(vec![1, 2]).to_json(), json!({"hex":"0102"}));
    }
}
