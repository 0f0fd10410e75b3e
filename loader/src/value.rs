//! Values that cross the bridge: arguments, return values and out-values.

use std::fmt;
use std::str::FromStr;

use ffb_abi::signature::{ArgType, ScalarType};
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

    /// The value of `scalar` for the integer `v`, or `None` when it is out
    /// of the type's range (floats take any integer, rounded).
    pub fn from_int(scalar: ScalarType, v: i128) -> Option<Value> {
        scalar_from_int(scalar, v)
    }

    /// The JSON form used by `ffb call --json` and sessions.
    pub fn to_json(&self) -> Json {
        match self {
            Value::F32(v) => float_json((*v).into()),
            Value::F64(v) => float_json(*v),
            Value::Str(b) => json!(String::from_utf8_lossy(b)),
            Value::Bytes(b) => json!({ "hex": hex::encode(b) }),
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
            Value::Bytes(b) => write!(f, "hex:{}", hex::encode(b)),
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

fn bad(position: usize, message: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::BadArgument,
        format!("argument {position}: {message}"),
    )
}

/// Builds the value of `scalar` from an integer, checking its range.
pub(crate) fn scalar_from_int(scalar: ScalarType, v: i128) -> Option<Value> {
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

const CSTR_NUL: &str = "a cstr cannot contain a NUL byte (use bytes for binary data)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values() {
        assert_eq!(Value::F64(f64::NAN).to_json(), json!("NaN"));
        assert_eq!(Value::I64(-3).to_json(), json!(-3));
        assert_eq!(Value::U64(u64::MAX).to_json(), json!(u64::MAX));
        assert_eq!(Value::Bytes(vec![1, 2]).to_json(), json!({"hex":"0102"}));
    }
}
