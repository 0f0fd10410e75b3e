//! The fetch programs that read a statement's rows in the helper: ADVANCE
//! moves to the next single-row result (`PQclear`, `PQgetResult`,
//! `PQresultStatus`), READ emits each column's text (`PQgetlength`,
//! `PQgetvalue`, and `PQgetisnull` for an empty value). One row program per
//! column count (READ is the same for every type), and one that reads and
//! drops the rest of a result.

use super::{Functions, Postgres, PGRES_SINGLE_TUPLE};
use crate::bridge::FunctionId;
use crate::error::Result;
use crate::value::Value as Raw;
use crate::{Cmp, FetchProgram, Operand, Section};

// The fetch program's registers.
/// The current row's `PGresult`.
const R_RESULT: u8 = 0;
/// Its status.
const R_STATUS: u8 = 1;
/// Scratch registers.
const R_T0: u8 = 2;
const R_PTR: u8 = 3;
const R_LEN: u8 = 4;
/// The connection.
const R_CONN: u8 = 5;
/// 1 while the first row (already received by the host) is still unread.
const R_PENDING: u8 = 6;
/// 1 while `R_RESULT` is the host's own handle, which the program must not
/// free.
const R_HOSTS: u8 = 7;

/// The registers a statement's rows start from: its first row's result
/// (the host's, already received and still unread) and the connection.
pub(super) fn initial_registers(first: Raw, conn: Raw) -> [Raw; 8] {
    let mut regs: [Raw; 8] = std::array::from_fn(|_| Raw::U64(0));
    regs[R_RESULT as usize] = first;
    regs[R_CONN as usize] = conn;
    regs[R_PENDING as usize] = Raw::U64(1);
    regs[R_HOSTS as usize] = Raw::U64(1);
    regs
}

/// ADVANCE: skip once for the row the host already received; otherwise free
/// the last row's result (unless it is the host's), take the next, and end
/// on any status but `PGRES_SINGLE_TUPLE` (freeing that result too).
fn advance(p: &mut Section, clear: FunctionId, get_result: FunctionId, status: FunctionId) {
    p.if_else(
        R_PENDING,
        Cmp::Ne,
        Operand::Const(0),
        |t| {
            t.set(R_PENDING, Operand::Const(0));
        },
        |e| {
            e.when(R_HOSTS, Cmp::Eq, Operand::Const(0), |c| {
                c.call(clear, &[Operand::Reg(R_RESULT)], R_T0);
            });
            e.set(R_HOSTS, Operand::Const(0));
            e.call(get_result, &[Operand::Reg(R_CONN)], R_RESULT);
            e.call(status, &[Operand::Reg(R_RESULT)], R_STATUS);
            e.when(
                R_STATUS,
                Cmp::Ne,
                Operand::Const(PGRES_SINGLE_TUPLE as u64),
                |c| {
                    c.call(clear, &[Operand::Reg(R_RESULT)], R_T0);
                    c.set(R_RESULT, Operand::Const(0));
                },
            );
            e.end_unless(R_STATUS, Cmp::Eq, Operand::Const(PGRES_SINGLE_TUPLE as u64));
        },
    );
}

/// The program that reads rows of `columns` columns.
fn rows(f: &Functions, columns: usize) -> Result<FetchProgram> {
    let (clear, get_result, status) = (f.clear, f.get_result, f.result_status);
    let (getlength, getisnull, getvalue) = (f.getlength, f.getisnull, f.getvalue);
    FetchProgram::builder(columns)
        .advance(|p| advance(p, clear, get_result, status))
        .read(|p| {
            for j in 0..columns as u64 {
                let cell = [Operand::Reg(R_RESULT), Operand::Const(0), Operand::Const(j)];
                let text = |s: &mut Section| {
                    s.call(getvalue, &cell, R_PTR).emit_text(R_PTR, R_LEN);
                };
                p.call(getlength, &cell, R_LEN);
                p.if_else(
                    R_LEN,
                    Cmp::Eq,
                    Operand::Const(0),
                    |t| {
                        t.call(getisnull, &cell, R_T0);
                        t.if_else(
                            R_T0,
                            Cmp::Ne,
                            Operand::Const(0),
                            |n| {
                                n.emit_null();
                            },
                            text,
                        );
                    },
                    text,
                );
            }
        })
        .build()
}

/// The program that reads and drops the rest of a result.
fn drain(f: &Functions) -> Result<FetchProgram> {
    let (clear, get_result, status) = (f.clear, f.get_result, f.result_status);
    FetchProgram::builder(1)
        .advance(|p| advance(p, clear, get_result, status))
        .read(|p| {
            p.emit_null();
        })
        .build()
}

impl Postgres {
    /// Builds the row program for `columns` columns, unless it is built.
    pub(super) fn ensure_row_program(&mut self, columns: usize) -> Result<()> {
        if !self.programs.contains_key(&columns) {
            let program = rows(&self.fns, columns)?;
            self.programs.insert(columns, program);
        }
        Ok(())
    }

    /// Builds the drain program, unless it is built.
    pub(super) fn ensure_drain_program(&mut self) -> Result<()> {
        if self.drain.is_none() {
            self.drain = Some(drain(&self.fns)?);
        }
        Ok(())
    }
}
