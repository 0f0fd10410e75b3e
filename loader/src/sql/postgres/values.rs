//! libpq's text format, both ways: a result's cells decoded by their
//! column's type OID, and a float parameter's text.

use crate::sql::Value;
use crate::Cell;

/// How a column's text is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Int,
    Float,
    Bool,
    Bytea,
    Text,
}

impl Kind {
    /// The kind of a column of type `oid`.
    pub fn of(oid: u32) -> Kind {
        match oid {
            20 | 21 | 23 | 26 => Kind::Int,
            700 | 701 => Kind::Float,
            16 => Kind::Bool,
            17 => Kind::Bytea,
            _ => Kind::Text,
        }
    }
}

/// A float as PostgreSQL's input reads it back to the same bits.
pub(super) fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "Infinity".into()
    } else if v == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        // Shortest round-trip digits; an exponent where it is shorter.
        format!("{v:e}")
    }
}

/// Decodes one cell of a column of kind `kind`.
pub(super) fn decode(kind: Kind, cell: &Cell<'_>) -> std::result::Result<Value, String> {
    let bytes = match cell {
        Cell::Null => return Ok(Value::Null),
        Cell::Text(b) | Cell::Blob(b) => *b,
        other => return Err(format!("a {other:?} cell where libpq gives text")),
    };
    let utf8 = || std::str::from_utf8(bytes).map_err(|_| "a number that is not UTF-8".to_string());
    Ok(match kind {
        Kind::Text => Value::text_from_bytes(bytes),
        Kind::Int => Value::Int(
            utf8()?
                .parse()
                .map_err(|e| format!("integer {bytes:?}: {e}"))?,
        ),
        Kind::Float => Value::Float(match utf8()? {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            t => t.parse().map_err(|e| format!("float {t:?}: {e}"))?,
        }),
        Kind::Bool => match bytes {
            b"t" => Value::Int(1),
            b"f" => Value::Int(0),
            _ => return Err(format!("bool {bytes:?}")),
        },
        Kind::Bytea => Value::Blob(bytea(bytes)?),
    })
}

/// `bytea` text: `\x` and hex (the default output), or the escape format
/// (`\\`, `\ooo` octal, other bytes as they are).
fn bytea(b: &[u8]) -> std::result::Result<Vec<u8>, String> {
    if let Some(hex) = b.strip_prefix(b"\\x") {
        if hex.len() % 2 != 0 {
            return Err("bytea hex of odd length".into());
        }
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        return hex
            .chunks_exact(2)
            .map(|p| match (digit(p[0]), digit(p[1])) {
                (Some(h), Some(l)) => Ok(h << 4 | l),
                _ => Err("bytea hex with a non-hex digit".to_string()),
            })
            .collect();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let oct = b
                .get(i + 1..i + 4)
                .and_then(|o| std::str::from_utf8(o).ok())
                .and_then(|o| u8::from_str_radix(o, 8).ok())
                .ok_or("bytea escape that is not octal")?;
            out.push(oct);
            i += 4;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_decode_by_type() {
        let t = |b: &'static [u8]| Cell::Text(b);
        assert_eq!(
            decode(Kind::Int, &t(b"-9223372036854775808")),
            Ok(Value::Int(i64::MIN))
        );
        assert_eq!(
            decode(Kind::Float, &t(b"-Infinity")),
            Ok(Value::Float(f64::NEG_INFINITY))
        );
        assert!(matches!(decode(Kind::Float, &t(b"NaN")), Ok(Value::Float(f)) if f.is_nan()));
        assert_eq!(
            decode(Kind::Float, &t(b"-0")).map(|v| format!("{v:?}")),
            Ok("Float(-0.0)".into())
        );
        assert_eq!(
            decode(Kind::Float, &t(b"5e-324")),
            Ok(Value::Float(f64::from_bits(1)))
        );
        assert_eq!(decode(Kind::Bool, &t(b"t")), Ok(Value::Int(1)));
        assert_eq!(
            decode(Kind::Bytea, &t(b"\\x00ff")),
            Ok(Value::Blob(vec![0, 255]))
        );
        assert_eq!(
            decode(Kind::Bytea, &t(b"a\\\\\\000")),
            Ok(Value::Blob(vec![b'a', b'\\', 0]))
        );
        assert_eq!(
            decode(Kind::Text, &t(b"1.50")),
            Ok(Value::Text("1.50".into()))
        );
        assert_eq!(decode(Kind::Int, &Cell::Null), Ok(Value::Null));
        assert!(decode(Kind::Int, &t(b"12x")).is_err());
        assert!(decode(Kind::Bytea, &t(b"\\x0")).is_err());
        assert!(decode(Kind::Bool, &t(b"yes")).is_err());
    }

    #[test]
    fn floats_round_trip_through_their_text() {
        for v in [
            0.0,
            -0.0,
            0.1,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
            1e22,
            -1.5e-300,
        ] {
            let back: f64 = float_text(v).parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v:?}");
        }
        assert_eq!(float_text(f64::NAN), "NaN");
        assert_eq!(float_text(f64::INFINITY), "Infinity");
    }
}
