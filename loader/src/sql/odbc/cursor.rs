//! A result being read: its columns described (`SQLDescribeCol`, in one
//! round trip), a fetch program over their slots, and pages of rows sized
//! so that no row is ever read twice (`SQLGetData` consumes the value).

use super::columns::{decode_slot, lay_out, Read, Slot, MAX_CAP};
use super::{ok, Odbc, SQL_CLOSE, SQL_HANDLE_STMT, SQL_NO_DATA, SQL_NO_TOTAL};
use crate::error::{Error, ErrorKind, Result};
use crate::sql::calls::{batch_each, int, out};
use crate::sql::page::Decoder;
use crate::sql::{StatementId, Value};
use crate::value::Value as Raw;
use crate::{FetchEnd, FetchProgram, FetchState, DEFAULT_ARENA};

/// Rows per page at most.
const PAGE_ROWS: usize = 1024;
/// `SQLDescribeCol`'s name buffer (its `out[256]`).
const NAME_CAP: i16 = 256;

/// A result being read.
pub(super) struct Cursor {
    program: FetchProgram,
    state: FetchState,
    slots: Vec<Slot>,
    delivered: u64,
}

impl Odbc {
    /// The result's `n` columns: names, and a cursor over them.
    pub(super) fn describe(&mut self, stmt: &Raw, n: usize) -> Result<(Vec<String>, Cursor)> {
        let args: Vec<Vec<Raw>> = (1..=n)
            .map(|c| {
                vec![
                    stmt.clone(),
                    Raw::U16(c as u16),
                    Raw::I16(NAME_CAP),
                    Raw::I16(0),
                    Raw::I16(0),
                    Raw::U64(0),
                    Raw::I16(0),
                    Raw::I16(0),
                ]
            })
            .collect();
        let outs = batch_each(&mut self.bridge, self.fns.describe, &args)?;
        let mut names = Vec::with_capacity(n);
        let mut columns = Vec::with_capacity(n);
        for o in &outs {
            let rc = int(&o.ret);
            if !ok(rc) {
                return Err(self.diag(SQL_HANDLE_STMT, stmt, rc));
            }
            let len = int(&out(o, 4)).clamp(0, NAME_CAP as i64 - 1) as usize;
            names.push(match out(o, 2) {
                Raw::Bytes(b) => String::from_utf8_lossy(&b[..len.min(b.len())]).into_owned(),
                _ => String::new(),
            });
            let declared = match out(o, 6) {
                Raw::U64(s) => s as usize,
                _ => 0,
            };
            columns.push((Read::of(int(&out(o, 5))), declared));
        }
        let (slots, scratch) = lay_out(columns);
        let program = self.program(&slots, scratch)?;
        let init = [stmt.clone()];
        let mut state = self.bridge.fetch_state(&init)?;
        // A row's largest size: every slot full, with its tag and length.
        let row_max: usize = slots.iter().map(|s| s.cap + 5).sum();
        let room = DEFAULT_ARENA / 2;
        state.set_page_rows((room / row_max.max(1)).clamp(1, PAGE_ROWS));
        Ok((
            names,
            Cursor {
                program,
                state,
                slots,
                delivered: 0,
            },
        ))
    }

    /// Appends up to `max_rows` of the statement's rows to `out`: see
    /// [`Driver::fetch`](crate::sql::Driver::fetch). The cursor is closed
    /// (`SQLFreeStmt(SQL_CLOSE)`) once its rows end.
    pub(super) fn fetch_rows(
        &mut self,
        stmt: StatementId,
        max_rows: usize,
        out: &mut Vec<Value>,
    ) -> Result<bool> {
        let p = self.statements.get_mut(stmt)?;
        p.failed.take()?;
        let h = p.stmt.clone();
        let Some(mut cursor) = p.cursor.take() else {
            return Ok(false);
        };
        let page = Decoder {
            columns: &cursor.slots,
            decode: decode_slot,
            driver: "odbc",
        }
        .read_page(
            &mut self.bridge,
            &cursor.program,
            &mut cursor.state,
            max_rows,
            out,
        )?;
        cursor.delivered += page.rows;
        let reason = match page.end {
            FetchEnd::More => {
                self.statements.get_mut(stmt)?.cursor = Some(cursor);
                return Ok(true);
            }
            FetchEnd::Ended { reason } => reason,
        };
        let delivered = cursor.delivered;
        let cap = cursor.slots.iter().map(|s| s.cap).max().unwrap_or(0);
        // The cursor is done with (its state is dropped); close it.
        drop(cursor);
        self.bridge
            .call(self.fns.free_stmt, &[h.clone(), Raw::U16(SQL_CLOSE)])?;
        let e = match reason {
            SQL_NO_DATA => {
                self.statements.get_mut(stmt)?.changes = delivered;
                return Ok(false);
            }
            r if r < 0 && r != SQL_NO_TOTAL => self.diag(SQL_HANDLE_STMT, &h, r),
            r => Error::new(
                ErrorKind::ResourceLimit,
                format!(
                    "a value in row {} is longer than its fetch slot ({} bytes; at most {cap}): the odbc driver reads values up to the column's declared size, at least 64 KiB and at most {} MiB",
                    delivered + 1,
                    if r == SQL_NO_TOTAL { "of unknown length".to_string() } else { r.to_string() },
                    MAX_CAP >> 20,
                ),
            ),
        };
        self.statements.get_mut(stmt)?.failed.after(page.rows, e)
    }
}
