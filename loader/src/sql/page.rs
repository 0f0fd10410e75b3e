//! Reading a page of a fetch program's rows into [`Value`]s, each cell
//! decoded by its column's rule, and the error that ends a result after
//! rows it delivered.
//!
//! A cell that does not decode as its column says is the helper's lie (the
//! library in it described the column): the page is dropped whole and the
//! fetch is a `protocol` error, so no value of a page that lied reaches the
//! caller.

use std::ops::ControlFlow;

use super::Value;
use crate::bridge::Bridge;
use crate::error::{err, Error, ErrorKind, Result};
use crate::{Cell, FetchEnd, FetchProgram, FetchState};

/// How a result's cells become values: one rule `C` per column.
pub(super) struct Decoder<'a, C> {
    /// Each column's rule, in column order.
    pub columns: &'a [C],
    /// Decodes one cell of a column with rule `C`; a message if it does not.
    pub decode: fn(C, &Cell<'_>) -> std::result::Result<Value, String>,
    /// The driver, named in the error for a cell that does not decode.
    pub driver: &'static str,
}

/// What one page brought.
#[derive(Debug)]
pub(super) struct Page {
    /// Why the fetch stopped.
    pub end: FetchEnd,
    /// The rows appended.
    pub rows: u64,
}

impl<C: Copy> Decoder<'_, C> {
    /// Runs `program` for up to `max_rows` rows and appends their values to
    /// `out`, row after row. On any error `out` is as it was.
    pub fn read_page(
        &self,
        bridge: &mut Bridge,
        program: &FetchProgram,
        state: &mut FetchState,
        max_rows: usize,
        out: &mut Vec<Value>,
    ) -> Result<Page> {
        let start = out.len();
        let mut bad: Option<String> = None;
        let mut rows = 0u64;
        let end = bridge.fetch(program, state, max_rows, |row| {
            for (cell, &column) in row.iter().zip(self.columns) {
                match (self.decode)(column, cell) {
                    Ok(v) => out.push(v),
                    Err(e) => {
                        bad = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            rows += 1;
            ControlFlow::Continue(())
        });
        match (end, bad) {
            (Ok(end), None) => Ok(Page { end, rows }),
            (Err(e), _) => {
                out.truncate(start);
                Err(e)
            }
            (Ok(_), Some(why)) => {
                out.truncate(start);
                err(
                    ErrorKind::Protocol,
                    format!("{} cell does not decode: {why}", with_article(self.driver)),
                )
            }
        }
    }
}

/// `a postgres`, `an odbc`.
fn with_article(driver: &str) -> String {
    let vowel = driver.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {driver}", if vowel { "an" } else { "a" })
}

/// An error that ended a result after rows it delivered: those rows go out
/// with the fetch that read them, and the next fetch reports the error.
#[derive(Debug, Default)]
pub(super) struct Deferred(Option<Error>);

impl Deferred {
    /// The deferred error, once: a fetch reports it before reading on.
    pub fn take(&mut self) -> Result<()> {
        match self.0.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Ends a fetch that delivered `rows` rows with `e`: the error now when
    /// there were none, else `Ok(true)` (the rows count) and the error next.
    pub fn after(&mut self, rows: u64, e: Error) -> Result<bool> {
        if rows == 0 {
            return Err(e);
        }
        self.0 = Some(e);
        Ok(true)
    }

    /// Forgets a deferred error (the statement runs again).
    pub fn clear(&mut self) {
        self.0 = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_driver() {
        assert_eq!(with_article("postgres"), "a postgres");
        assert_eq!(with_article("odbc"), "an odbc");
    }

    #[test]
    fn an_error_after_rows_comes_next() {
        let e = || Error::new(ErrorKind::Protocol, "late");
        let mut d = Deferred::default();
        assert!(d.take().is_ok());
        assert_eq!(d.after(0, e()).unwrap_err().message, "late");
        assert!(d.take().is_ok(), "an error returned at once is not kept");
        assert_eq!(d.after(2, e()).ok(), Some(true));
        assert_eq!(d.take().unwrap_err().message, "late");
        assert!(d.take().is_ok(), "reported once");
        d.after(1, e()).unwrap();
        d.clear();
        assert!(d.take().is_ok());
    }
}
