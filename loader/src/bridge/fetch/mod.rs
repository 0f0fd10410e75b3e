//! Fetch programs: a whole page of rows in one handoff ([`Bridge::fetch`]).
//!
//! Reading a result set one call per cell costs a round trip per cell. A
//! [`FetchProgram`] is a small register program, made of the bridge's own
//! declared functions, that the helper runs in a loop: ADVANCE moves to the
//! next row (a cursor step), READ emits the row's cells, and the helper
//! copies every cell into a page in the arena until the page is full. Every
//! foreign call still happens in order, inside the sandbox, and is fenced;
//! the helper knows nothing about SQL. The wire format is
//! [`ffb_contract::wire::fetch`].
//!
//! The host trusts nothing it reads back: the answer's header is copied out
//! once, each count is checked against what the host asked for, the page is
//! copied out once and walked with exact bounds, every row must hold exactly
//! the program's number of cells, and any inconsistency is
//! [`ErrorKind::Protocol`] (the helper is killed). A page is checked whole
//! before any of its rows is handed to the caller. The registers the helper
//! hands back are opaque words the host only ever passes back to the same
//! helper ([`FetchState`] is tied to the helper's generation).

use std::ops::ControlFlow;

use ffb_contract::wire::fetch::{Outcome, REGISTERS};

pub use ffb_contract::wire::fetch::Cmp;

use super::Bridge;
use crate::error::{err, Error, ErrorKind, Result};
use crate::value::Value;

mod check;
mod page;
mod program;
mod request;

pub(crate) use page::{check_answer, walk};
use page::{decode_page, protocol};

pub use program::{FetchProgram, FetchProgramBuilder, Section};

/// Rows per handoff unless [`FetchState::set_page_rows`] says otherwise.
pub const DEFAULT_PAGE_ROWS: usize = 1024;

/// An instruction's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// A constant word: an integer's bits (`i as u64` for a negative one).
    Const(u64),
    /// A register's value, `0..16`.
    Reg(u8),
    /// The address of byte `n` of the program's scratch
    /// ([`FetchProgramBuilder::scratch`]): the only operand a pointer
    /// parameter (`bytes`, `cstr`, `out[N]`, `*T`) takes.
    Scratch(usize),
}

/// One cell of a fetched row. Text is the library's bytes, unchecked: the
/// caller decides what they mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text bytes.
    Text(&'a [u8]),
    /// A blob.
    Blob(&'a [u8]),
    /// NULL.
    Null,
}

/// How a [`Bridge::fetch`] call stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchEnd {
    /// The program ended (an `end_unless` fired); `reason` is the value of
    /// the register it tested, e.g. `SQLITE_DONE` or an error code. Later
    /// calls with the same state return this again without a handoff.
    Ended {
        /// The tested register's value.
        reason: i64,
    },
    /// `max_rows` rows were delivered, or the callback broke off: call again
    /// for more.
    More,
}

/// Where a fetch is: the registers between pages, whether the current row
/// must be read again first, whether it ended, and the page buffer (reused).
/// Made by [`Bridge::fetch_state`]; good only on the helper that made it.
#[derive(Debug)]
pub struct FetchState {
    generation: u64,
    regs: [u64; REGISTERS],
    resume: bool,
    ended: Option<i64>,
    page_rows: usize,
    page: Vec<u8>,
}

impl FetchState {
    /// Sets the most rows per handoff (at least 1): fewer rows per page
    /// reach the caller sooner, more cost fewer round trips.
    pub fn set_page_rows(&mut self, rows: usize) {
        self.page_rows = rows.max(1);
    }

    /// Whether the program has ended.
    pub fn ended(&self) -> Option<i64> {
        self.ended
    }
}

impl Bridge {
    /// A fresh fetch state for the current helper (started if need be), with
    /// registers `r0..` set from `init`: handles resolve to the pointers they
    /// stand for (they must be live), integers and floats give their bits.
    /// The other registers start at 0.
    pub fn fetch_state(&mut self, init: &[Value]) -> Result<FetchState> {
        if init.len() > REGISTERS {
            return err(
                ErrorKind::BadArgument,
                format!(
                    "{} initial registers; a fetch program has {REGISTERS}",
                    init.len()
                ),
            );
        }
        self.ensure_helper()?;
        let mut regs = [0u64; REGISTERS];
        for (i, v) in init.iter().enumerate() {
            regs[i] = match v {
                Value::Null | Value::Handle(_) => self.handles.resolve(v, self.generation)?,
                Value::F32(x) => f64::from(*x).to_bits(),
                Value::F64(x) => x.to_bits(),
                other => match other.as_i128() {
                    Some(n) => n as u64,
                    None => {
                        return err(
                            ErrorKind::BadArgument,
                            format!("register {i}: {other:?} is not a handle, integer or float"),
                        )
                    }
                },
            };
        }
        Ok(FetchState {
            generation: self.generation,
            regs,
            resume: false,
            ended: None,
            page_rows: DEFAULT_PAGE_ROWS,
            page: Vec::new(),
        })
    }

    /// Runs `program` until it ends, `max_rows` rows have been handed to
    /// `on_row`, or `on_row` breaks off; one handoff per page of at most
    /// [`FetchState::set_page_rows`] rows. Rows arrive in order, a page at a
    /// time, each page checked whole first; nothing is allocated per row.
    /// Rows of a page after a break are dropped (the cursor is past them).
    ///
    /// Errors: a program that does not fit this bridge's declarations
    /// (`bad_argument`); a state from another helper (`stale_handle`); a row
    /// too big for an empty page (`resource_limit`: raise
    /// [`BridgeBuilder::arena_size`](crate::BridgeBuilder::arena_size)); a
    /// crash or timeout in a foreign call, as for any call; an inconsistent
    /// answer (`protocol`, and the helper is killed).
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use ffb_loader::{Bridge, BridgeMode, Cell, Cmp, FetchEnd, FetchProgram, Operand};
    ///
    /// // labs(r0) for r0 = -3, -2, ... while r0 < 3: no cursor, just registers.
    /// let mut c = Bridge::builder("libc.so.6")
    /// #   .shim(std::env::var_os("FFB_SHIM").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/ffb-shim").into()))
    ///     .bridge_mode(BridgeMode::Enabled)
    ///     .declare("labs(i64) -> i64")
    ///     .load()?;
    /// let labs = c.function("labs").unwrap();
    /// let program = FetchProgram::builder(2)
    ///     .advance(|p| {
    ///         p.add(0, 1).end_unless(0, Cmp::Lt, Operand::Const(3));
    ///     })
    ///     .read(|p| {
    ///         p.call(labs, &[Operand::Reg(0)], 1).emit_int(0).emit_int(1);
    ///     })
    ///     .build()?;
    /// let mut state = c.fetch_state(&[ffb_loader::Value::I64(-4)])?;
    /// let mut rows = Vec::new();
    /// let end = c.fetch(&program, &mut state, usize::MAX, |row| {
    ///     if let [Cell::Int(x), Cell::Int(y)] = row {
    ///         rows.push((*x, *y));
    ///     }
    ///     ControlFlow::Continue(())
    /// })?;
    /// assert_eq!(end, FetchEnd::Ended { reason: 3 });
    /// assert_eq!(rows, [(-3, 3), (-2, 2), (-1, 1), (0, 0), (1, 1), (2, 2)]);
    /// # Ok::<(), ffb_loader::Error>(())
    /// ```
    pub fn fetch(
        &mut self,
        program: &FetchProgram,
        state: &mut FetchState,
        max_rows: usize,
        mut on_row: impl FnMut(&[Cell<'_>]) -> ControlFlow<()>,
    ) -> Result<FetchEnd> {
        if let Some(reason) = state.ended {
            return Ok(FetchEnd::Ended { reason });
        }
        if state.generation != self.generation || self.helper.is_none() {
            return err(
                ErrorKind::StaleHandle,
                "the fetch state belongs to a helper that is gone; start the query again",
            );
        }
        self.check_program(program)?;
        let mut delivered = 0usize;
        while delivered < max_rows {
            let want = state.page_rows.min(max_rows - delivered);
            let layout = self.send_page(program, state, want)?;
            let (outcome, rows, detail) = self.read_page(state, &layout, want)?;
            // The page's cells, borrowed from the host's copy of it, decoded
            // whole before any row is handed out: one allocation a page.
            let mut cells = Vec::new();
            if let Err(why) = decode_page(&state.page, rows, program.columns, &mut cells) {
                return Err(self.failed(protocol(why), None));
            }
            let mut stopped = false;
            let _ = page::deliver(&cells, rows, program.columns, |row| {
                delivered += 1;
                let flow = on_row(row);
                stopped = flow.is_break();
                flow
            });
            match outcome {
                Outcome::Ended => {
                    state.ended = Some(detail as i64);
                    if !stopped {
                        return Ok(FetchEnd::Ended {
                            reason: detail as i64,
                        });
                    }
                }
                Outcome::RowDidNotFit if rows == 0 => {
                    let arena = self.helper.as_ref().map_or(0, |h| h.arena().len());
                    let e = Error::new(
                        ErrorKind::ResourceLimit,
                        format!(
                            "a row needs at least {detail} bytes, more than a whole fetch page ({} bytes of the {arena}-byte arena); raise the arena size (BridgeBuilder::arena_size)",
                            layout.capacity
                        ),
                    );
                    return Err(self.failed(e, None));
                }
                Outcome::RowDidNotFit | Outcome::PageFull => {}
            }
            if stopped {
                break;
            }
        }
        Ok(FetchEnd::More)
    }
}
