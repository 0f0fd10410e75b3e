//! How a result's columns are read: each column's SQL type picks a C type
//! and a cell kind ([`Read`]), and a slot in the fetch program's scratch
//! ([`Slot`]) that holds one row's value and its length indicator.

use super::{SQL_C_BINARY, SQL_C_DOUBLE, SQL_C_SBIGINT};
use crate::sql::Value;
use crate::Cell;

/// A value's slot in the scratch, unless the column declares more.
pub(super) const DEFAULT_CAP: usize = 64 << 10;
/// The largest slot.
pub(super) const MAX_CAP: usize = 1 << 20;
/// A slot's indicator and value start on this alignment.
const SLOT_ALIGN: usize = 16;

/// How a column is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Read {
    Int,
    Float,
    Blob,
    Text,
}

impl Read {
    /// How a column of SQL type `sql_type` (from `SQLDescribeCol`) is read.
    pub fn of(sql_type: i64) -> Read {
        match sql_type {
            // SQL_INTEGER, SQL_SMALLINT, SQL_BIGINT, SQL_TINYINT, SQL_BIT
            4 | 5 | -5 | -6 | -7 => Read::Int,
            // SQL_FLOAT, SQL_REAL, SQL_DOUBLE
            6..=8 => Read::Float,
            // SQL_BINARY, SQL_VARBINARY, SQL_LONGVARBINARY
            -4..=-2 => Read::Blob,
            _ => Read::Text,
        }
    }

    /// The C type `SQLGetData` converts to.
    pub fn c_type(self) -> i16 {
        match self {
            Read::Int => SQL_C_SBIGINT,
            Read::Float => SQL_C_DOUBLE,
            Read::Blob | Read::Text => SQL_C_BINARY,
        }
    }

    /// Whether the value has a fixed 8-byte size.
    fn fixed(self) -> bool {
        matches!(self, Read::Int | Read::Float)
    }
}

/// One column's place in the scratch.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    pub read: Read,
    /// The length indicator (8 bytes).
    pub indicator: usize,
    /// The value.
    pub data: usize,
    pub cap: usize,
}

/// Lays out the slots of columns read as `read` with `declared` sizes, one
/// after the other from offset 0; returns them and the scratch they take.
pub(super) fn lay_out(columns: impl IntoIterator<Item = (Read, usize)>) -> (Vec<Slot>, usize) {
    let mut slots = Vec::new();
    let mut at = 0usize;
    for (read, declared) in columns {
        let cap = if read.fixed() {
            8
        } else {
            declared.saturating_add(1).clamp(DEFAULT_CAP, MAX_CAP)
        };
        slots.push(Slot {
            read,
            indicator: at,
            data: at + SLOT_ALIGN,
            cap,
        });
        at += SLOT_ALIGN + cap.div_ceil(SLOT_ALIGN) * SLOT_ALIGN;
    }
    (slots, at)
}

/// Decodes one cell of a column read as `read`.
pub(super) fn decode(read: Read, cell: &Cell<'_>) -> std::result::Result<Value, String> {
    Ok(match (read, cell) {
        (_, Cell::Null) => Value::Null,
        (Read::Int, Cell::Int(i)) => Value::Int(*i),
        (Read::Float, Cell::Float(f)) => Value::Float(*f),
        (Read::Text, Cell::Text(b)) => Value::text_from_bytes(b),
        (Read::Blob, Cell::Blob(b)) => Value::Blob(b.to_vec()),
        (r, c) => return Err(format!("a {c:?} cell in a column read as {r:?}")),
    })
}

/// Decodes one cell of the column in `slot`.
pub(super) fn decode_slot(slot: Slot, cell: &Cell<'_>) -> std::result::Result<Value, String> {
    decode(slot.read, cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_pick_how_a_column_is_read() {
        assert_eq!(Read::of(4), Read::Int);
        assert_eq!(Read::of(-5), Read::Int);
        assert_eq!(Read::of(-7), Read::Int);
        assert_eq!(Read::of(8), Read::Float);
        assert_eq!(Read::of(-3), Read::Blob);
        assert_eq!(Read::of(12), Read::Text);
        assert_eq!(Read::of(-9), Read::Text);
        assert_eq!(Read::of(2), Read::Text, "numeric stays its text");
    }

    #[test]
    fn cells_must_match_their_column() {
        assert_eq!(decode(Read::Int, &Cell::Int(-3)), Ok(Value::Int(-3)));
        assert_eq!(
            decode(Read::Blob, &Cell::Blob(b"\0x")),
            Ok(Value::Blob(vec![0, b'x']))
        );
        assert_eq!(decode(Read::Text, &Cell::Null), Ok(Value::Null));
        assert!(decode(Read::Int, &Cell::Text(b"1")).is_err());
    }

    #[test]
    fn slots_follow_each_other_aligned() {
        let (slots, scratch) = lay_out([
            (Read::Int, 0),
            (Read::Text, 10),
            (Read::Blob, 100 << 10),
            (Read::Text, usize::MAX),
        ]);
        let places: Vec<_> = slots.iter().map(|s| (s.indicator, s.data, s.cap)).collect();
        let text = 16 + DEFAULT_CAP;
        let blob = 16 + (100 << 10) + 16;
        assert_eq!(
            places,
            [
                (0, 16, 8),
                (32, 48, DEFAULT_CAP),
                (32 + text, 48 + text, (100 << 10) + 1),
                (32 + text + blob, 48 + text + blob, MAX_CAP),
            ]
        );
        assert_eq!(scratch, 32 + text + blob + 16 + MAX_CAP);
    }
}
