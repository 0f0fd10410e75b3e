//! What a database cell holds, on its way in (a bound parameter) or out (a
//! row's value), whichever driver it came through.

use std::fmt;
use std::ops::Index;

/// One SQL value: the five storage classes every driver maps onto.
///
/// Drivers with richer types map them here: an integer column is
/// [`Value::Int`], a floating-point one [`Value::Float`], a binary one
/// [`Value::Blob`], and everything else (decimals, dates, JSON, ...) the
/// driver's own text form, [`Value::Text`]. Text that is not valid UTF-8 is
/// converted with U+FFFD for each invalid sequence.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit float (any bits the database keeps, including ±0 and ±inf).
    Float(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Value {
    /// Text from bytes a driver returned, replacing invalid UTF-8.
    pub fn text_from_bytes(bytes: &[u8]) -> Value {
        Value::Text(String::from_utf8_lossy(bytes).into_owned())
    }

    /// Whether this is SQL `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// As an SQL literal would spell it: `NULL`, `42`, `1.5`, `'it''s'`,
/// `x'00ff'`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v:?}"),
            Value::Text(t) => write!(f, "'{}'", t.replace('\'', "''")),
            Value::Blob(b) => write!(f, "x'{}'", hex::encode(b)),
        }
    }
}

/// One row of a result: one [`Value`] per column, in column order.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    /// A row of these values.
    pub fn new(values: Vec<Value>) -> Row {
        Row { values }
    }

    /// The value of column `i` (0-based), if there is one.
    pub fn get(&self, i: usize) -> Option<&Value> {
        self.values.get(i)
    }

    /// Every value, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The values, owned.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }

    /// How many values (the result's column count).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the row has no values (a result without columns).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl Index<usize> for Row {
    type Output = Value;
    fn index(&self, i: usize) -> &Value {
        &self.values[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(Value::Null.to_string(), "NULL");
        assert_eq!(Value::Float(1.0).to_string(), "1.0");
        assert_eq!(Value::from("it's").to_string(), "'it''s'");
        assert_eq!(Value::Blob(vec![0, 255]).to_string(), "x'00ff'");
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert_eq!(
            Value::text_from_bytes(b"a\xffb"),
            Value::Text("a\u{fffd}b".into())
        );
    }
}
