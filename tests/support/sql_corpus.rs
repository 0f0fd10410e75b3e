//! The differential corpus for the SQL drivers, and the in-process
//! reference sides it is checked against.
//!
//! [`corpus`] generates rows of `(id, integer, float, text, blob)` from a
//! seed: integers at the edges of every width, floats with ±0, subnormals,
//! the largest finite values, infinities and (where the database keeps it)
//! NaN, unicode text with quotes, commas, newlines and tabs, blobs with NUL
//! bytes, and NULL in every column. The same rows go through a bridged
//! driver and through the same library loaded into the test process with
//! libloading ([`reference`](mod@reference)), and the two sets of rows must be identical
//! ([`SqlValue`]'s equality compares floats by their bits, with every NaN
//! equal to every other).
//!
//! The reference sides are written independently of the loader's drivers
//! (their own type mapping, their own decoding of PostgreSQL's text
//! output), so a decoding bug in a driver cannot hide behind the same bug
//! in its reference.

use std::fmt;

use crate::rng::XorShift;

pub mod reference;

/// One cell, as every driver reports it.
#[derive(Clone)]
pub enum SqlValue {
    /// SQL NULL.
    Null,
    /// An integer of any width.
    Int(i64),
    /// A floating-point number (compared by bits; NaN equals NaN).
    Float(f64),
    /// Text (UTF-8 as the database returned it).
    Text(String),
    /// A blob, byte for byte.
    Blob(Vec<u8>),
}

impl SqlValue {
    /// The value to bind through a bridged driver
    /// ([`ffb_loader::sql::Connection`]).
    pub fn to_sql(&self) -> ffb_loader::sql::Value {
        use ffb_loader::sql::Value;
        match self {
            SqlValue::Null => Value::Null,
            SqlValue::Int(i) => Value::Int(*i),
            SqlValue::Float(f) => Value::Float(*f),
            SqlValue::Text(s) => Value::Text(s.clone()),
            SqlValue::Blob(b) => Value::Blob(b.clone()),
        }
    }

    /// A cell from a bridged driver, as the references report it.
    pub fn from_sql(value: ffb_loader::sql::Value) -> SqlValue {
        use ffb_loader::sql::Value;
        match value {
            Value::Null => SqlValue::Null,
            Value::Int(i) => SqlValue::Int(i),
            Value::Float(f) => SqlValue::Float(f),
            Value::Text(s) => SqlValue::Text(s),
            Value::Blob(b) => SqlValue::Blob(b),
        }
    }
}

impl PartialEq for SqlValue {
    fn eq(&self, other: &Self) -> bool {
        use SqlValue::*;
        match (self, other) {
            (Null, Null) => true,
            (Int(a), Int(b)) => a == b,
            (Float(a), Float(b)) => (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits(),
            (Text(a), Text(b)) => a == b,
            (Blob(a), Blob(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Debug for SqlValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlValue::Null => write!(f, "NULL"),
            SqlValue::Int(v) => write!(f, "{v}"),
            // `{:?}` keeps the sign of -0.0 and every digit.
            SqlValue::Float(v) => write!(f, "{v:?}f"),
            SqlValue::Text(s) => write!(f, "{s:?}"),
            SqlValue::Blob(b) => write!(f, "x'{}'", hex::encode(b)),
        }
    }
}

/// A result: the column names and the rows.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Rows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<SqlValue>>,
}

/// What a database keeps of the corpus, so the generator only produces
/// values that must come back unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: a NaN bound as a double is stored as NULL, so no NaN.
    Sqlite,
    /// PostgreSQL (`bigint`, `double precision`, `text`, `bytea`): NaN and
    /// the infinities are values; text cannot hold NUL.
    Postgres,
}

impl Dialect {
    /// `CREATE TABLE name (...)` for the corpus's five columns.
    pub fn create_table(self, name: &str) -> String {
        match self {
            Dialect::Sqlite => format!(
                "CREATE TABLE {name} (id INTEGER PRIMARY KEY, i INTEGER, f REAL, t TEXT, b BLOB)"
            ),
            Dialect::Postgres => format!(
                "CREATE TABLE {name} (id bigint PRIMARY KEY, i bigint, f double precision, t text, b bytea)"
            ),
        }
    }

    /// The parameterized insert of one corpus row, in this dialect's
    /// placeholder syntax.
    pub fn insert(self, name: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("INSERT INTO {name} (id, i, f, t, b) VALUES (?, ?, ?, ?, ?)")
            }
            Dialect::Postgres => {
                format!("INSERT INTO {name} (id, i, f, t, b) VALUES ($1, $2, $3, $4, $5)")
            }
        }
    }

    /// The query that reads the corpus back in order.
    pub fn select(self, name: &str) -> String {
        format!("SELECT id, i, f, t, b FROM {name} ORDER BY id")
    }

    /// A query that produces `n` rows of `(integer, float, text, blob)`
    /// computed by the database itself (the 100k-row result).
    pub fn generated(self, n: u64) -> String {
        match self {
            Dialect::Sqlite => format!(
                "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {n}) \
                 SELECT x * 7919 - 4000000000 AS i, x * 1.5e-3 AS f, 'row ' || x || ', \"q\"' AS t, \
                 CASE WHEN x % 10 = 0 THEN NULL ELSE zeroblob(x % 5) || CAST(x AS BLOB) END AS b FROM g"
            ),
            Dialect::Postgres => format!(
                "SELECT x * 7919 - 4000000000 AS i, x * 1.5e-3::float8 AS f, 'row ' || x || ', \"q\"' AS t, \
                 CASE WHEN x % 10 = 0 THEN NULL ELSE decode(repeat('00', (x % 5)::int) || md5(x::text), 'hex') END AS b \
                 FROM generate_series(1::bigint, {n}) AS x"
            ),
        }
    }
}

/// Integers at the edges of every width, and small ones.
pub fn edge_ints() -> Vec<i64> {
    let mut v = vec![0, 1, -1, 2, -2, 127, -128, 255, 256];
    for bits in [15u32, 16, 31, 32, 53, 63] {
        let p = if bits == 63 {
            i64::MAX
        } else {
            (1i64 << bits) - 1
        };
        v.extend([p, -p, p.wrapping_add(1), -p - 1]);
    }
    v.extend([i64::MAX, i64::MIN, i64::MIN + 1]);
    v
}

/// Floats that a careless encoding loses: ±0, subnormals, the extremes,
/// values whose shortest text has an exponent, and (with `nan`) NaN and the
/// infinities.
pub fn edge_floats(dialect: Dialect) -> Vec<f64> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        1.0 / 3.0,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        f64::from_bits(1),
        -f64::from_bits(1),
        f64::from_bits(0x000f_ffff_ffff_ffff),
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        1e21,
        1e22,
        1e-5,
        123_456_789_012_345_680_000.0,
        9_007_199_254_740_993.0,
        std::f64::consts::PI,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    match dialect {
        Dialect::Postgres => v.push(f64::NAN),
        // A REAL column stores an integral value as an integer, so -0.0
        // comes back as 0.0 (it survives only outside a column).
        Dialect::Sqlite => v.retain(|f| f.to_bits() != (-0.0f64).to_bits()),
    }
    v
}

/// Unicode text with everything a CSV or JSON writer, or a literal quoter,
/// can get wrong.
pub fn edge_texts() -> Vec<String> {
    [
        "",
        " ",
        "plain",
        "it's",
        "''",
        "\"double\"",
        "comma, separated",
        "line\nbreak",
        "crlf\r\nend",
        "tab\there",
        "back\\slash",
        "\\x00ff",
        "$1 ? :name",
        "héllo wörld",
        "日本語のテキスト",
        "emoji 🦀🎉",
        "mixed 'quote\", comma\nand 🦀",
        "\u{200b}zero width",
        "NULL",
        "-0",
        "NaN",
        "ｆｕｌｌ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Blobs with NUL bytes, every byte value and the empty blob.
pub fn edge_blobs() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        vec![0],
        vec![0, 0, 0],
        b"nul\0inside".to_vec(),
        (0..=255u8).collect(),
        vec![0xff; 17],
        b"\\x41".to_vec(),
        "🦀".as_bytes().to_vec(),
    ]
}

/// The corpus: every edge value at least once (in its column, the others
/// varied), then `random` seeded rows, then rows of NULLs. Column order:
/// `id, i, f, t, b`; ids are 1, 2, ...
pub fn corpus(dialect: Dialect, seed: u64, random: usize) -> Vec<Vec<SqlValue>> {
    let ints = edge_ints();
    let floats = edge_floats(dialect);
    let texts = edge_texts();
    let blobs = edge_blobs();
    let longest = ints
        .len()
        .max(floats.len())
        .max(texts.len())
        .max(blobs.len());
    let mut rows = Vec::new();
    for k in 0..longest {
        rows.push(vec![
            SqlValue::Int(ints[k % ints.len()]),
            SqlValue::Float(floats[k % floats.len()]),
            SqlValue::Text(texts[k % texts.len()].clone()),
            SqlValue::Blob(blobs[k % blobs.len()].clone()),
        ]);
    }
    let mut rng = XorShift(seed | 1);
    for _ in 0..random {
        rows.push(vec![
            random_int(&mut rng),
            random_float(&mut rng, dialect),
            random_text(&mut rng),
            random_blob(&mut rng),
        ]);
    }
    // NULL in each column alone, and in all of them.
    for col in 0..4 {
        let mut row = rows[col].clone();
        row[col] = SqlValue::Null;
        rows.push(row);
    }
    rows.push(vec![SqlValue::Null; 4]);
    rows.into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r.insert(0, SqlValue::Int(i as i64 + 1));
            r
        })
        .collect()
}

fn random_int(rng: &mut XorShift) -> SqlValue {
    let raw = rng.next_u64();
    // A spread of magnitudes: shift away 0..63 bits.
    let v = (raw as i64) >> (rng.next_u64() % 64);
    SqlValue::Int(v)
}

fn random_float(rng: &mut XorShift, dialect: Dialect) -> SqlValue {
    loop {
        let f = f64::from_bits(rng.next_u64());
        if dialect == Dialect::Sqlite && (f.is_nan() || f.to_bits() == (-0.0f64).to_bits()) {
            continue;
        }
        return SqlValue::Float(f);
    }
}

fn random_text(rng: &mut XorShift) -> SqlValue {
    const PIECES: &[&str] = &[
        "a", "Z", "0", " ", "'", "\"", ",", "\n", "\r", "\t", "\\", ";", "é", "ß", "日", "🦀", "—",
        "\u{fffd}", "%", "$1", "?",
    ];
    let n = (rng.next_u64() % 24) as usize;
    let s: String = (0..n)
        .map(|_| PIECES[(rng.next_u64() % PIECES.len() as u64) as usize])
        .collect();
    SqlValue::Text(s)
}

fn random_blob(rng: &mut XorShift) -> SqlValue {
    let n = (rng.next_u64() % 40) as usize;
    let b: Vec<u8> = (0..n)
        .map(|_| {
            let x = rng.next_u64();
            // Plenty of NULs.
            if x.is_multiple_of(4) {
                0
            } else {
                (x >> 8) as u8
            }
        })
        .collect();
    SqlValue::Blob(b)
}

/// Checks that two results are identical, naming the first difference.
///
/// # Panics
/// On the first difference: a column name, the row count, or a cell (with
/// its row and column).
pub fn assert_same_rows(what: &str, bridged: &Rows, reference: &Rows) {
    assert_eq!(
        bridged.columns, reference.columns,
        "{what}: column names differ (bridged, reference)"
    );
    assert_eq!(
        bridged.rows.len(),
        reference.rows.len(),
        "{what}: row counts differ (bridged, reference)"
    );
    for (r, (a, b)) in bridged.rows.iter().zip(&reference.rows).enumerate() {
        assert_eq!(a.len(), b.len(), "{what}: row {r} has a different width");
        for (c, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                x == y,
                "{what}: row {r} column {c} ({}): bridged {x:?}, reference {y:?}",
                bridged.columns.get(c).map(String::as_str).unwrap_or("?")
            );
        }
    }
}

/// A table name no other test (or earlier run) uses: `ffb_TAG_PID_NANOS`.
pub fn table_name(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("ffb_{tag}_{}_{nanos}", std::process::id())
}
