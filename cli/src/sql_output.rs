//! How `ffb sql` prints a result: an aligned table (the default), one JSON
//! document, or RFC 4180 CSV, each written as the rows arrive.
//!
//! Every format spells a value the same way where it spells it as text:
//! integers in decimal, floats in the shortest form that reads back to the
//! same bits (`1.0`, `-0.0`, `5e-324`, `1e300`; `inf`, `-inf` and `NaN` when
//! not finite), text as it is, blobs as `x'00ff'`. JSON keeps its own types:
//! integers and finite floats are numbers, text a string, NULL `null`, a
//! blob `{"hex":"00ff"}`, and a non-finite float the string `"inf"`, `"-inf"`
//! or `"NaN"` (JSON has no such numbers; the strings match `ffb call --json`).

use std::fmt::Write as _;
use std::io::{self, Write};

use ffb_loader::sql::Value;
use unicode_width::UnicodeWidthStr;

/// The output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a person to read.
    Table,
    /// `{"columns":[...],"rows":[[...],...]}`.
    Json,
    /// RFC 4180: a header line, then one record per row.
    Csv,
}

/// Writes one result: [`begin`](Self::begin) once, [`row`](Self::row) per
/// row, [`finish`](Self::finish) once.
pub trait RowWriter {
    /// Starts the result with its column names.
    fn begin(&mut self, columns: &[String]) -> io::Result<()>;
    /// Writes one row (one value per column).
    fn row(&mut self, values: &[Value]) -> io::Result<()>;
    /// Pushes out what is written so far, before waiting for more rows.
    fn flush(&mut self) -> io::Result<()>;
    /// Ends the result and flushes.
    fn finish(&mut self) -> io::Result<()>;
}

/// A writer of `format` on `out`.
pub fn writer<'a, W: Write + 'a>(format: Format, out: W) -> Box<dyn RowWriter + 'a> {
    match format {
        Format::Table => Box::new(Table::new(out)),
        Format::Json => Box::new(Json::new(out)),
        Format::Csv => Box::new(Csv::new(out)),
    }
}

/// A float as text: the shortest decimal that reads back to the same bits.
pub fn float_text(f: f64) -> String {
    // Rust's `{:?}` is shortest-round-trip and always shows a fraction or
    // an exponent, so a float never reads as an integer.
    format!("{f:?}")
}

/// A blob as an SQL literal.
fn blob_text(b: &[u8]) -> String {
    let mut text = String::with_capacity(2 * b.len() + 3);
    push_blob_text(&mut text, b);
    text
}

/// Appends `x'…'` for `b` to `text`, which a writer reuses from cell to
/// cell: no allocation per cell once it has grown.
fn push_blob_text(text: &mut String, b: &[u8]) {
    text.push_str("x'");
    push_hex(text, b);
    text.push('\'');
}

/// Appends the lowercase hex digits of `b` to `text`.
fn push_hex(text: &mut String, b: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    text.reserve(2 * b.len());
    for byte in b {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
}

// ---- table ------------------------------------------------------------

/// Rows the table holds back to size its columns; later rows reuse those
/// widths (a wider value pushes its line out rather than being cut).
pub const TABLE_SIZING_ROWS: usize = 1000;

/// A cell as the table shows it: its text and whether it aligns right.
struct Cell {
    text: String,
    right: bool,
}

fn table_cell(v: &Value) -> Cell {
    match v {
        Value::Null => Cell {
            text: "NULL".into(),
            right: false,
        },
        Value::Int(i) => Cell {
            text: i.to_string(),
            right: true,
        },
        Value::Float(f) => Cell {
            text: float_text(*f),
            right: true,
        },
        Value::Text(t) => Cell {
            text: visible(t),
            right: false,
        },
        Value::Blob(b) => Cell {
            text: blob_text(b),
            right: false,
        },
    }
}

/// Text with control characters escaped, so one row stays one line.
fn visible(t: &str) -> String {
    if !t.chars().any(char::is_control) {
        return t.to_string();
    }
    let mut s = String::with_capacity(t.len() + 8);
    for c in t.chars() {
        match c {
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c.is_control() => s.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => s.push(c),
        }
    }
    s
}

struct Table<W: Write> {
    out: io::BufWriter<W>,
    columns: Vec<String>,
    widths: Vec<usize>,
    /// Rows held back until the widths are known (`None` once streaming).
    held: Option<Vec<Vec<Cell>>>,
    rows: u64,
}

impl<W: Write> Table<W> {
    fn new(out: W) -> Self {
        Table {
            out: io::BufWriter::with_capacity(64 << 10, out),
            columns: Vec::new(),
            widths: Vec::new(),
            held: Some(Vec::new()),
            rows: 0,
        }
    }

    fn line(&mut self, cells: &[Cell]) -> io::Result<()> {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b" | ")?;
            }
            let pad = self.widths[i].saturating_sub(cell.text.width());
            if cell.right {
                write!(self.out, "{:pad$}{}", "", cell.text)?;
            } else if i == last {
                self.out.write_all(cell.text.as_bytes())?;
            } else {
                write!(self.out, "{}{:pad$}", cell.text, "")?;
            }
        }
        self.out.write_all(b"\n")
    }

    /// Sizes the columns from the held rows, prints the header and them,
    /// and streams from then on.
    fn release(&mut self) -> io::Result<()> {
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        self.widths = self.columns.iter().map(|c| visible(c).width()).collect();
        for row in &held {
            for (w, cell) in self.widths.iter_mut().zip(row) {
                *w = (*w).max(cell.text.width());
            }
        }
        let header: Vec<Cell> = self
            .columns
            .iter()
            .map(|c| Cell {
                text: visible(c),
                right: false,
            })
            .collect();
        self.line(&header)?;
        let rule: Vec<String> = self.widths.iter().map(|w| "-".repeat(*w)).collect();
        writeln!(self.out, "{}", rule.join("-+-"))?;
        for row in &held {
            self.line(row)?;
        }
        Ok(())
    }
}

impl<W: Write> RowWriter for Table<W> {
    fn begin(&mut self, columns: &[String]) -> io::Result<()> {
        self.columns = columns.to_vec();
        Ok(())
    }

    fn row(&mut self, values: &[Value]) -> io::Result<()> {
        self.rows += 1;
        let cells: Vec<Cell> = values.iter().map(table_cell).collect();
        match &mut self.held {
            Some(held) => {
                held.push(cells);
                if held.len() >= TABLE_SIZING_ROWS {
                    self.release()?;
                }
                Ok(())
            }
            None => self.line(&cells),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // Held rows wait for their widths; what is printed goes out.
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        if !self.columns.is_empty() {
            self.release()?;
            let noun = if self.rows == 1 { "row" } else { "rows" };
            writeln!(self.out, "({} {noun})", self.rows)?;
        }
        self.out.flush()
    }
}

// ---- JSON -------------------------------------------------------------

struct Json<W: Write> {
    out: io::BufWriter<W>,
    first: bool,
    int: itoa::Buffer,
    /// A blob's hex digits, reused from cell to cell.
    field: String,
}

impl<W: Write> Json<W> {
    fn new(out: W) -> Self {
        Json {
            out: io::BufWriter::with_capacity(64 << 10, out),
            first: true,
            int: itoa::Buffer::new(),
            field: String::new(),
        }
    }

    fn value(&mut self, v: &Value) -> io::Result<()> {
        match v {
            Value::Null => self.out.write_all(b"null"),
            Value::Int(i) => self.out.write_all(self.int.format(*i).as_bytes()),
            Value::Float(f) if f.is_finite() => write!(self.out, "{f:?}"),
            Value::Float(f) => write!(self.out, "\"{f:?}\""),
            Value::Text(t) => serde_json::to_writer(&mut self.out, t).map_err(io::Error::from),
            Value::Blob(b) => {
                self.field.clear();
                push_hex(&mut self.field, b);
                write!(self.out, "{{\"hex\":\"{}\"}}", self.field)
            }
        }
    }
}

impl<W: Write> RowWriter for Json<W> {
    fn begin(&mut self, columns: &[String]) -> io::Result<()> {
        self.out.write_all(b"{\"columns\":")?;
        serde_json::to_writer(&mut self.out, columns).map_err(io::Error::from)?;
        self.out.write_all(b",\"rows\":[")
    }

    fn row(&mut self, values: &[Value]) -> io::Result<()> {
        if !std::mem::take(&mut self.first) {
            self.out.write_all(b",")?;
        }
        self.out.write_all(b"[")?;
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            self.value(v)?;
        }
        self.out.write_all(b"]")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.write_all(b"]}\n")?;
        self.out.flush()
    }
}

// ---- CSV --------------------------------------------------------------

struct Csv<W: Write> {
    out: csv::Writer<W>,
    /// Whether there is a header to write (a result without columns prints nothing).
    columns: bool,
    int: itoa::Buffer,
    field: String,
}

impl<W: Write> Csv<W> {
    fn new(out: W) -> Self {
        Csv {
            out: csv::WriterBuilder::new()
                .buffer_capacity(64 << 10)
                .from_writer(out),
            columns: false,
            int: itoa::Buffer::new(),
            field: String::new(),
        }
    }
}

/// The csv crate's errors are I/O errors here: the records are bytes, and
/// the field count is fixed by the header.
fn csv_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

impl<W: Write> RowWriter for Csv<W> {
    fn begin(&mut self, columns: &[String]) -> io::Result<()> {
        self.columns = !columns.is_empty();
        if self.columns {
            self.out.write_record(columns).map_err(csv_io)?;
        }
        Ok(())
    }

    fn row(&mut self, values: &[Value]) -> io::Result<()> {
        for v in values {
            let field: &[u8] = match v {
                Value::Null => b"",
                Value::Int(i) => self.int.format(*i).as_bytes(),
                Value::Float(f) => {
                    self.field.clear();
                    // Writing to a String cannot fail.
                    let _ = write!(self.field, "{f:?}");
                    self.field.as_bytes()
                }
                Value::Text(t) => t.as_bytes(),
                Value::Blob(b) => {
                    self.field.clear();
                    push_blob_text(&mut self.field, b);
                    self.field.as_bytes()
                }
            };
            self.out.write_field(field).map_err(csv_io)?;
        }
        self.out.write_record(None::<&[u8]>).map_err(csv_io)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: Format, columns: &[&str], rows: &[Vec<Value>]) -> String {
        let mut buf = Vec::new();
        {
            let mut w = writer(format, &mut buf);
            let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
            w.begin(&columns).unwrap();
            for r in rows {
                w.row(r).unwrap();
            }
            w.finish().unwrap();
        }
        String::from_utf8(buf).unwrap()
    }

    fn corpus() -> Vec<Vec<Value>> {
        vec![
            vec![
                Value::Int(i64::MIN),
                Value::Float(-0.0),
                Value::Text("a,\"b\"\nc".into()),
            ],
            vec![
                Value::Int(7),
                Value::Float(f64::INFINITY),
                Value::Blob(vec![0, 0xff]),
            ],
            vec![
                Value::Null,
                Value::Float(5e-324),
                Value::Text("日本".into()),
            ],
        ]
    }

    #[test]
    fn json_keeps_types() {
        assert_eq!(
            render(Format::Json, &["i", "f", "t"], &corpus()),
            "{\"columns\":[\"i\",\"f\",\"t\"],\"rows\":[[-9223372036854775808,-0.0,\"a,\\\"b\\\"\\nc\"],\
             [7,\"inf\",{\"hex\":\"00ff\"}],[null,5e-324,\"日本\"]]}\n"
        );
        assert_eq!(
            render(Format::Json, &[], &[]),
            "{\"columns\":[],\"rows\":[]}\n"
        );
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(
            render(Format::Csv, &["i", "f", "t"], &corpus()),
            "i,f,t\n-9223372036854775808,-0.0,\"a,\"\"b\"\"\nc\"\n7,inf,x'00ff'\n,5e-324,日本\n"
        );
    }

    #[test]
    fn table_aligns_by_display_width() {
        assert_eq!(
            render(Format::Table, &["i", "f", "t"], &corpus()),
            "i                    | f      | t\n\
             ---------------------+--------+---------\n\
             -9223372036854775808 |   -0.0 | a,\"b\"\\nc\n\
             \x20                  7 |    inf | x'00ff'\n\
             NULL                 | 5e-324 | 日本\n\
             (3 rows)\n"
        );
        assert_eq!(render(Format::Table, &[], &[]), "");
    }
}
