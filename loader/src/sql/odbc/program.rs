//! The fetch program that reads a result's rows in the helper: ADVANCE is
//! `SQLFetch` and one `SQLGetData` per column into its slot of the scratch,
//! READ emits the cells from the slots.

use super::columns::{Read, Slot};
use super::{Odbc, SQL_NO_TOTAL, SQL_NULL_DATA};
use crate::error::Result;
use crate::{Cmp, FetchProgram, Operand};

/// The statement handle.
const R_STMT: u8 = 0;
/// `SQLFetch`'s answer.
const R_FETCHED: u8 = 1;
/// `SQLGetData`'s answer.
const R_GOT: u8 = 2;
/// A slot's length indicator.
const R_LEN: u8 = 3;
/// A fixed-size value.
const R_VALUE: u8 = 4;

impl Odbc {
    /// ADVANCE: `SQLFetch`, then `SQLGetData` for every column into its
    /// slot, ending on a failure or a value too long for its slot. READ:
    /// the cells from the slots. The statement starts in register 0.
    pub(super) fn program(&self, slots: &[Slot], scratch: usize) -> Result<FetchProgram> {
        let (fetch, get_data) = (self.fns.fetch, self.fns.get_data);
        FetchProgram::builder(slots.len())
            .scratch(scratch)
            .advance(|p| {
                p.call(fetch, &[Operand::Reg(R_STMT)], R_FETCHED);
                p.end_unless(R_FETCHED, Cmp::Ge, Operand::Const(0));
                p.end_unless(R_FETCHED, Cmp::Le, Operand::Const(1));
                for (j, s) in slots.iter().enumerate() {
                    let args = [
                        Operand::Reg(R_STMT),
                        Operand::Const(j as u64 + 1),
                        Operand::Const(s.read.c_type() as i64 as u64),
                        Operand::Scratch(s.data),
                        Operand::Const(s.cap as u64),
                        Operand::Scratch(s.indicator),
                    ];
                    p.call(get_data, &args, R_GOT);
                    // SQL_NO_DATA for a column is a driver that already
                    // gave it: end (100) rather than read a stale slot.
                    p.end_unless(R_GOT, Cmp::Ge, Operand::Const(0));
                    p.end_unless(R_GOT, Cmp::Le, Operand::Const(1));
                    p.load(R_LEN, s.indicator);
                    p.end_unless(R_LEN, Cmp::Ne, Operand::Const(SQL_NO_TOTAL as u64));
                    p.end_unless(R_LEN, Cmp::Le, Operand::Const(s.cap as u64));
                }
            })
            .read(|p| {
                for s in slots {
                    p.load(R_LEN, s.indicator);
                    let s = *s;
                    p.if_else(
                        R_LEN,
                        Cmp::Eq,
                        Operand::Const(SQL_NULL_DATA as u64),
                        |n| {
                            n.emit_null();
                        },
                        |v| {
                            match s.read {
                                Read::Int => v.load(R_VALUE, s.data).emit_int(R_VALUE),
                                Read::Float => v.load(R_VALUE, s.data).emit_float(R_VALUE),
                                Read::Text => v.emit_scratch_text(s.data, s.cap, R_LEN),
                                Read::Blob => v.emit_scratch_blob(s.data, s.cap, R_LEN),
                            };
                        },
                    );
                }
            })
            .build()
    }
}
