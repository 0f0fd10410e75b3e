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
use std::sync::atomic::Ordering::Relaxed;

use ffb_abi::signature::{ArgType, Pointee};
use ffb_contract::wire::fetch::{
    answer, arg, CellTag, Insn, Operand as WireOperand, Outcome, Program, Shape, ANSWER_BYTES,
    ANSWER_WORDS, FLAG_RESUME, MAX_PROGRAM_WORDS, REGISTERS,
};
use ffb_contract::wire::{align_up, Op, CONTROL_SIZE, MAX_WIRE_ARGS};

pub use ffb_contract::wire::fetch::Cmp;

use super::{Bridge, FunctionId};
use crate::error::{err, Error, ErrorKind, Result};
use crate::value::Value;

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

/// One step of a section, before it is lowered to the wire.
#[derive(Clone, Debug)]
enum Step {
    Call {
        f: FunctionId,
        args: Vec<Operand>,
        dst: u8,
    },
    EndUnless(u8, Cmp, Operand),
    SkipUnless(u8, Cmp, Operand, usize),
    Skip(usize),
    Add(u8, i64),
    Set(u8, Operand),
    Load(u8, usize, bool),
    EmitWord(CellTag, u8),
    EmitBytes(CellTag, u8, u8),
    EmitScratch(CellTag, usize, usize, u8),
    EmitNull,
}

/// The instructions of one section (ADVANCE or READ), in order. Registers
/// are numbers `0..16`; a wrong one is reported by
/// [`FetchProgramBuilder::build`].
#[derive(Clone, Debug, Default)]
pub struct Section {
    steps: Vec<Step>,
}

impl Section {
    fn push(&mut self, step: Step) -> &mut Self {
        self.steps.push(step);
        self
    }

    /// `dst = f(args...)`: the raw return word (integers extended to 64
    /// bits by their type, an `f64` as its bits, a `cstr` or `handle` as the
    /// helper's pointer, which the host never sees as anything but a word).
    pub fn call(&mut self, f: FunctionId, args: &[Operand], dst: u8) -> &mut Self {
        self.push(Step::Call {
            f,
            args: args.to_vec(),
            dst,
        })
    }

    /// Ends the fetch unless `reg CMP rhs` ([`FetchEnd::Ended`] with
    /// `reg`'s value). In READ, the row being read is dropped.
    pub fn end_unless(&mut self, reg: u8, cmp: Cmp, rhs: Operand) -> &mut Self {
        self.push(Step::EndUnless(reg, cmp, rhs))
    }

    /// Skips the next `n` instructions unless `reg CMP rhs`. [`Section::when`]
    /// and [`Section::if_else`] count them for you.
    pub fn skip_unless(&mut self, reg: u8, cmp: Cmp, rhs: Operand, n: usize) -> &mut Self {
        self.push(Step::SkipUnless(reg, cmp, rhs, n))
    }

    /// Skips the next `n` instructions.
    pub fn skip(&mut self, n: usize) -> &mut Self {
        self.push(Step::Skip(n))
    }

    /// Runs `then` only if `reg CMP rhs`.
    pub fn when(
        &mut self,
        reg: u8,
        cmp: Cmp,
        rhs: Operand,
        then: impl FnOnce(&mut Section),
    ) -> &mut Self {
        let mut t = Section::default();
        then(&mut t);
        self.skip_unless(reg, cmp, rhs, t.steps.len());
        self.steps.append(&mut t.steps);
        self
    }

    /// Runs `then` if `reg CMP rhs`, else `otherwise`; nest them for a chain.
    pub fn if_else(
        &mut self,
        reg: u8,
        cmp: Cmp,
        rhs: Operand,
        then: impl FnOnce(&mut Section),
        otherwise: impl FnOnce(&mut Section),
    ) -> &mut Self {
        let (mut t, mut e) = (Section::default(), Section::default());
        then(&mut t);
        otherwise(&mut e);
        self.skip_unless(reg, cmp, rhs, t.steps.len() + 1);
        self.steps.append(&mut t.steps);
        self.skip(e.steps.len());
        self.steps.append(&mut e.steps);
        self
    }

    /// `reg += imm` (wrapping).
    pub fn add(&mut self, reg: u8, imm: i64) -> &mut Self {
        self.push(Step::Add(reg, imm))
    }

    /// `reg = src`.
    pub fn set(&mut self, reg: u8, src: Operand) -> &mut Self {
        self.push(Step::Set(reg, src))
    }

    /// `dst` = the `u64` at scratch byte `offset` (what a call wrote there).
    pub fn load(&mut self, dst: u8, offset: usize) -> &mut Self {
        self.push(Step::Load(dst, offset, true))
    }

    /// `dst` = the `i32` at scratch byte `offset`, sign-extended.
    pub fn load32(&mut self, dst: u8, offset: usize) -> &mut Self {
        self.push(Step::Load(dst, offset, false))
    }

    /// An integer cell: `reg` as an `i64`.
    pub fn emit_int(&mut self, reg: u8) -> &mut Self {
        self.push(Step::EmitWord(CellTag::Int, reg))
    }

    /// A float cell: `reg` holds an `f64`'s bits.
    pub fn emit_float(&mut self, reg: u8) -> &mut Self {
        self.push(Step::EmitWord(CellTag::Float, reg))
    }

    /// A text cell: `len` bytes at the helper address in `ptr` (NULL is
    /// fine with a length of 0).
    pub fn emit_text(&mut self, ptr: u8, len: u8) -> &mut Self {
        self.push(Step::EmitBytes(CellTag::Text, ptr, len))
    }

    /// A blob cell, as [`Section::emit_text`].
    pub fn emit_blob(&mut self, ptr: u8, len: u8) -> &mut Self {
        self.push(Step::EmitBytes(CellTag::Blob, ptr, len))
    }

    /// A text cell of `len` bytes at scratch byte `offset`; a `len` over
    /// `cap` fails the fetch (check it first with [`Section::when`]).
    pub fn emit_scratch_text(&mut self, offset: usize, cap: usize, len: u8) -> &mut Self {
        self.push(Step::EmitScratch(CellTag::Text, offset, cap, len))
    }

    /// A blob cell from the scratch, as [`Section::emit_scratch_text`].
    pub fn emit_scratch_blob(&mut self, offset: usize, cap: usize, len: u8) -> &mut Self {
        self.push(Step::EmitScratch(CellTag::Blob, offset, cap, len))
    }

    /// A NULL cell.
    pub fn emit_null(&mut self) -> &mut Self {
        self.push(Step::EmitNull)
    }
}

/// Builds a [`FetchProgram`]: see [`FetchProgram::builder`].
#[derive(Clone, Debug)]
pub struct FetchProgramBuilder {
    columns: usize,
    scratch: usize,
    advance: Section,
    read: Section,
}

impl FetchProgramBuilder {
    /// Reserves `bytes` of arena scratch for pointer parameters
    /// ([`Operand::Scratch`]); zeroed before every page, so nothing in it
    /// lasts from one handoff to the next.
    pub fn scratch(mut self, bytes: usize) -> Self {
        self.scratch = bytes;
        self
    }

    /// The ADVANCE section: run before each row, except a row read again
    /// after it did not fit a page. It emits no cells.
    pub fn advance(mut self, build: impl FnOnce(&mut Section)) -> Self {
        build(&mut self.advance);
        self
    }

    /// The READ section: reads one row, and must emit exactly `columns`
    /// cells on every path. It may run twice for the same row, so it must
    /// only read.
    pub fn read(mut self, build: impl FnOnce(&mut Section)) -> Self {
        build(&mut self.read);
        self
    }

    /// Checks the program and encodes it: registers, jumps, scratch offsets
    /// and its size (`bad_argument` for any of them). Function ids and
    /// parameter types are checked by [`Bridge::fetch`], which knows them.
    pub fn build(self) -> Result<FetchProgram> {
        if self.columns == 0 {
            return err(
                ErrorKind::BadArgument,
                "a fetch program must read at least one column",
            );
        }
        let scratch = align_up(self.scratch)
            .filter(|&s| s <= u32::MAX as usize / 2)
            .ok_or_else(|| Error::new(ErrorKind::BadArgument, "fetch scratch too large"))?;
        let mut lowered = Program::default();
        let mut calls = Vec::new();
        let lower = |steps: &[Step],
                     out: &mut Vec<Insn>,
                     ops: &mut Vec<WireOperand>,
                     calls: &mut Vec<(FunctionId, Vec<Operand>)>|
         -> Result<()> {
            for (i, step) in steps.iter().enumerate() {
                out.push(lower_step(step, i, steps.len(), scratch, ops, calls)?);
            }
            Ok(())
        };
        lower(
            &self.advance.steps,
            &mut lowered.advance,
            &mut lowered.operands,
            &mut calls,
        )?;
        if lowered.advance.iter().any(is_emit) {
            return err(
                ErrorKind::BadArgument,
                "fetch program: ADVANCE may not emit cells",
            );
        }
        lower(
            &self.read.steps,
            &mut lowered.read,
            &mut lowered.operands,
            &mut calls,
        )?;
        let mut words = Vec::new();
        lowered.encode(&mut words);
        if words.len() > MAX_PROGRAM_WORDS {
            return err(
                ErrorKind::BadArgument,
                format!(
                    "fetch program of {} words; at most {MAX_PROGRAM_WORDS}",
                    words.len()
                ),
            );
        }
        Ok(FetchProgram {
            columns: self.columns,
            scratch,
            words,
            calls,
        })
    }
}

fn is_emit(i: &Insn) -> bool {
    matches!(
        i,
        Insn::EmitWord { .. }
            | Insn::EmitBytes { .. }
            | Insn::EmitArena { .. }
            | Insn::EmitNull { .. }
    )
}

fn reg(r: u8) -> Result<u8> {
    if usize::from(r) < REGISTERS {
        Ok(r)
    } else {
        err(
            ErrorKind::BadArgument,
            format!(
                "fetch program: register {r} (there are {REGISTERS}, 0 to {})",
                REGISTERS - 1
            ),
        )
    }
}

/// The arena offset of scratch byte `offset`, checked to leave `len` bytes.
fn scratch_at(offset: usize, len: usize, scratch: usize) -> Result<u32> {
    match offset.checked_add(len) {
        Some(end) if end <= scratch => Ok((CONTROL_SIZE + offset) as u32),
        _ => err(
            ErrorKind::BadArgument,
            format!(
                "fetch program: scratch bytes {offset}..{offset}+{len} are outside its {scratch}-byte scratch"
            ),
        ),
    }
}

fn operand(o: Operand, scratch: usize) -> Result<WireOperand> {
    Ok(match o {
        Operand::Const(c) => WireOperand::Const(c),
        Operand::Reg(r) => WireOperand::Reg(reg(r)?),
        // At least one byte; Bridge::fetch checks the room each parameter needs.
        Operand::Scratch(n) => WireOperand::Const(scratch_at(n, 1, scratch)?.into()),
    })
}

fn jump(n: usize, at: usize, len: usize) -> Result<u32> {
    if n > len - at - 1 {
        return err(
            ErrorKind::BadArgument,
            format!("fetch program: instruction {at} skips {n}, past the end of its section"),
        );
    }
    Ok(n as u32)
}

fn lower_step(
    step: &Step,
    at: usize,
    len: usize,
    scratch: usize,
    ops: &mut Vec<WireOperand>,
    calls: &mut Vec<(FunctionId, Vec<Operand>)>,
) -> Result<Insn> {
    Ok(match *step {
        Step::Call { f, ref args, dst } => {
            if args.len() > MAX_WIRE_ARGS {
                return err(ErrorKind::BadArgument, "fetch program: too many arguments");
            }
            let first = ops.len() as u32;
            for &a in args {
                ops.push(operand(a, scratch)?);
            }
            calls.push((f, args.clone()));
            Insn::Call {
                func: f.index as u32,
                dst: reg(dst)?,
                args: first,
                nargs: args.len() as u8,
            }
        }
        Step::EndUnless(r, cmp, rhs) => Insn::EndUnless {
            reg: reg(r)?,
            cmp,
            rhs: operand(rhs, scratch)?,
        },
        Step::SkipUnless(r, cmp, rhs, n) => Insn::SkipUnless {
            reg: reg(r)?,
            cmp,
            rhs: operand(rhs, scratch)?,
            n: jump(n, at, len)?,
        },
        Step::Skip(n) => Insn::Skip {
            n: jump(n, at, len)?,
        },
        Step::Add(r, imm) => Insn::Add {
            reg: reg(r)?,
            imm: imm as u64,
        },
        Step::Set(r, src) => Insn::Set {
            reg: reg(r)?,
            src: operand(src, scratch)?,
        },
        Step::Load(dst, offset, wide) => Insn::Load {
            dst: reg(dst)?,
            offset: scratch_at(offset, if wide { 8 } else { 4 }, scratch)?,
            wide,
        },
        Step::EmitWord(tag, r) => Insn::EmitWord { tag, reg: reg(r)? },
        Step::EmitBytes(tag, ptr, len) => Insn::EmitBytes {
            tag,
            ptr: reg(ptr)?,
            len: reg(len)?,
        },
        Step::EmitScratch(tag, offset, cap, len) => Insn::EmitArena {
            tag,
            offset: scratch_at(offset, cap, scratch)?,
            cap: cap as u32,
            len: reg(len)?,
        },
        Step::EmitNull => Insn::EmitNull { tag: CellTag::Null },
    })
}

/// A checked, encoded fetch program. Build one with
/// [`FetchProgram::builder`]; run it with [`Bridge::fetch`].
#[derive(Clone, Debug)]
pub struct FetchProgram {
    columns: usize,
    scratch: usize,
    words: Vec<u64>,
    /// Every call, for the bridge to check against its declarations.
    calls: Vec<(FunctionId, Vec<Operand>)>,
}

impl FetchProgram {
    /// A program whose READ emits `columns` cells per row.
    pub fn builder(columns: usize) -> FetchProgramBuilder {
        FetchProgramBuilder {
            columns,
            scratch: 0,
            advance: Section::default(),
            read: Section::default(),
        }
    }

    /// The cells per row.
    pub fn columns(&self) -> usize {
        self.columns
    }
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

/// Where one page's request lies in the arena.
struct PageLayout {
    answer_at: usize,
    page_at: usize,
    capacity: usize,
}

fn protocol(why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("the helper's fetch answer is inconsistent ({why}); it was killed"),
    )
}

/// Walks `rows` rows of `columns` cells in `page`, exactly: every tag known,
/// every length inside the page, and nothing left over.
fn walk<'a>(
    page: &'a [u8],
    rows: usize,
    columns: usize,
    cells: &mut Vec<Cell<'a>>,
    mut each: impl FnMut(&[Cell<'a>]) -> ControlFlow<()>,
) -> std::result::Result<ControlFlow<()>, String> {
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> std::result::Result<&'a [u8], String> {
        let end = at.checked_add(n).filter(|&e| e <= page.len());
        let end = end.ok_or_else(|| format!("a cell runs past the page's {} bytes", page.len()))?;
        let bytes = &page[*at..end];
        *at = end;
        Ok(bytes)
    };
    for _ in 0..rows {
        cells.clear();
        for _ in 0..columns {
            let t = take(&mut at, 1)?[0];
            let tag = CellTag::from_u8(t).ok_or_else(|| format!("unknown cell tag {t}"))?;
            let cell = match tag.shape() {
                Shape::Word => {
                    let w = u64::from_ne_bytes(take(&mut at, 8)?.try_into().expect("8 bytes"));
                    match tag {
                        CellTag::Int => Cell::Int(w as i64),
                        _ => Cell::Float(f64::from_bits(w)),
                    }
                }
                Shape::Bytes => {
                    let n = u32::from_ne_bytes(take(&mut at, 4)?.try_into().expect("4 bytes"));
                    let bytes = take(&mut at, n as usize)?;
                    match tag {
                        CellTag::Text => Cell::Text(bytes),
                        _ => Cell::Blob(bytes),
                    }
                }
                Shape::Empty => Cell::Null,
            };
            cells.push(cell);
        }
        if each(cells).is_break() {
            return Ok(ControlFlow::Break(()));
        }
    }
    if at != page.len() {
        return Err(format!("{} bytes past the last row", page.len() - at));
    }
    Ok(ControlFlow::Continue(()))
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
            let page = self.read_page(program, state, &layout, want)?;
            let (outcome, rows, detail) = page;
            let mut stopped = false;
            // One row's cells, borrowed from this page: one allocation a page.
            let mut cells = Vec::with_capacity(program.columns);
            let walked = walk(&state.page, rows, program.columns, &mut cells, |row| {
                delivered += 1;
                let flow = on_row(row);
                stopped = flow.is_break();
                flow
            });
            debug_assert!(walked.is_ok(), "checked by read_page");
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

    /// Checks every call of `program` against this bridge's declarations:
    /// declared here, one operand per parameter, scratch (with room) for
    /// pointer parameters, registers or NULL for handles, and no close
    /// function (closing inside a fetch would leave its token live).
    fn check_program(&self, program: &FetchProgram) -> Result<()> {
        for (f, args) in &program.calls {
            let Some(declared) = self
                .functions
                .get(f.index)
                .filter(|_| f.table == self.table)
            else {
                return err(
                    ErrorKind::BadArgument,
                    format!("{f:?} is not declared here"),
                );
            };
            let sig = &declared.sig;
            let bad = |why: String| {
                err(
                    ErrorKind::BadArgument,
                    format!("fetch program: {}: {why}", sig.name),
                )
            };
            if declared.handles.closes.is_some() {
                return bad("a close function cannot run inside a fetch".into());
            }
            if declared.handles.retained != 0 {
                return bad("a function with retained arguments cannot run inside a fetch".into());
            }
            if args.len() != sig.args.len() {
                return bad(format!(
                    "takes {} arguments, given {}",
                    sig.args.len(),
                    args.len()
                ));
            }
            for (i, (&ty, &a)) in sig.args.iter().zip(args).enumerate() {
                let room = match ty {
                    ArgType::Out(n) => n.max(1),
                    ArgType::Ptr(Pointee::Scalar(_) | Pointee::Handle) => 8,
                    ArgType::CStr | ArgType::Bytes => 1,
                    ArgType::Scalar(_) | ArgType::Handle => 0,
                };
                let ok = match (ty, a) {
                    (ArgType::Scalar(_), Operand::Const(_) | Operand::Reg(_)) => true,
                    (ArgType::Handle, Operand::Reg(_) | Operand::Const(0)) => true,
                    (_, Operand::Scratch(n)) if room > 0 => n
                        .checked_add(room)
                        .is_some_and(|end| end <= program.scratch),
                    _ => false,
                };
                if !ok {
                    return bad(format!(
                        "argument {} is {}: it takes {}",
                        i + 1,
                        sig.arg_text(i),
                        if room > 0 {
                            format!("Operand::Scratch with {room} bytes of room")
                        } else if ty == ArgType::Handle {
                            "a register (or Const(0))".into()
                        } else {
                            "a constant or a register".into()
                        }
                    ));
                }
            }
        }
        Ok(())
    }

    /// Lays out one page's request and sends it.
    fn send_page(
        &mut self,
        program: &FetchProgram,
        state: &FetchState,
        want: usize,
    ) -> Result<PageLayout> {
        // The same room a call's buffers get: below the shared buffer and
        // every pinned one.
        let limit = self.scratch_limit();
        let arena = self.helper.as_ref().expect("ensured").arena();
        let program_at = CONTROL_SIZE + program.scratch;
        let answer_at = align_up(program_at + 8 * program.words.len()).unwrap_or(usize::MAX);
        let page_at = answer_at.saturating_add(ANSWER_BYTES);
        if page_at.saturating_add(program.columns) > limit {
            return err(
                ErrorKind::ResourceLimit,
                format!(
                    "the fetch program and its scratch leave no room for a page in the {}-byte arena; raise the arena size (BridgeBuilder::arena_size)",
                    arena.len()
                ),
            );
        }
        let capacity = limit - page_at;
        arena.zero(CONTROL_SIZE, program.scratch);
        let mut bytes = Vec::with_capacity(8 * program.words.len());
        for w in &program.words {
            bytes.extend_from_slice(&w.to_ne_bytes());
        }
        arena.write(program_at, &bytes);
        // The helper writes the answer; clear it, so a helper that answers
        // without writing one cannot pass off the last page's.
        arena.zero(answer_at, ANSWER_BYTES);
        let args = &arena.control().args;
        let words = [
            (arg::PROGRAM, program_at as u64),
            (arg::WORDS, program.words.len() as u64),
            (arg::ANSWER, answer_at as u64),
            (arg::CAPACITY, capacity as u64),
            (arg::MAX_ROWS, want as u64),
            (arg::FLAGS, if state.resume { FLAG_RESUME } else { 0 }),
            (arg::ROW_RESERVE, program.columns as u64),
        ];
        for (i, w) in words {
            args[i].store(w, Relaxed);
        }
        for (i, r) in state.regs.iter().enumerate() {
            args[arg::REGS + i].store(*r, Relaxed);
        }
        self.exchange(Op::Fetch, 0, 0, None)?;
        Ok(PageLayout {
            answer_at,
            page_at,
            capacity,
        })
    }

    /// Reads the answer (once) and the page (once) into `state`, and checks
    /// both: the outcome, the counts against what was asked, and the page
    /// walked whole. Returns the outcome, the rows and the detail word.
    fn read_page(
        &mut self,
        program: &FetchProgram,
        state: &mut FetchState,
        layout: &PageLayout,
        want: usize,
    ) -> Result<(Outcome, usize, u64)> {
        let helper = self.helper.as_ref().expect("alive after a response");
        let mut head = [0u8; ANSWER_BYTES];
        helper.arena().read_into(layout.answer_at, &mut head);
        let word = |i: usize| u64::from_ne_bytes(head[8 * i..8 * i + 8].try_into().expect("8"));
        let checked = (|| {
            let outcome = Outcome::from_u64(word(answer::OUTCOME))
                .ok_or_else(|| format!("outcome {}", word(answer::OUTCOME)))?;
            let (rows, used) = (word(answer::ROWS), word(answer::BYTES));
            if rows > want as u64 {
                return Err(format!("{rows} rows where at most {want} were asked for"));
            }
            if used > layout.capacity as u64 {
                return Err(format!("{used} bytes in a {}-byte page", layout.capacity));
            }
            if outcome == Outcome::PageFull && rows == 0 {
                return Err("a full page with no rows".into());
            }
            Ok((outcome, rows as usize, used as usize))
        })();
        let (outcome, rows, used) = match checked {
            Ok(v) => v,
            Err(why) => return Err(self.failed(protocol(why), None)),
        };
        let helper = self.helper.as_ref().expect("alive after a response");
        helper
            .arena()
            .read_to_vec(layout.page_at, used, &mut state.page);
        let mut cells = Vec::new();
        if let Err(why) = walk(&state.page, rows, program.columns, &mut cells, |_| {
            ControlFlow::Continue(())
        }) {
            return Err(self.failed(protocol(why), None));
        }
        for (i, r) in state.regs.iter_mut().enumerate() {
            *r = word(answer::REGS + i);
        }
        state.resume = outcome == Outcome::RowDidNotFit;
        debug_assert_eq!(ANSWER_WORDS, answer::REGS + REGISTERS);
        Ok((outcome, rows, word(answer::DETAIL)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Any;
    impl ffb_contract::wire::fetch::Bounds for Any {
        fn functions(&self) -> usize {
            1
        }
        fn fits(&self, _: usize, _: usize) -> bool {
            true
        }
    }

    fn f(index: usize) -> FunctionId {
        FunctionId { table: 1, index }
    }

    #[test]
    fn if_else_counts_its_jumps() {
        let p = FetchProgram::builder(1)
            .read(|p| {
                p.if_else(
                    2,
                    Cmp::Eq,
                    Operand::Const(1),
                    |t| {
                        t.emit_int(2);
                    },
                    |e| {
                        e.when(2, Cmp::Eq, Operand::Const(5), |t| {
                            t.emit_null();
                        })
                        .emit_float(2);
                    },
                );
            })
            .build()
            .unwrap();
        let mut back = Program::default();
        back.decode(&p.words, &Any).unwrap();
        let skips: Vec<_> = back
            .read
            .iter()
            .filter_map(|i| match i {
                Insn::SkipUnless { n, .. } | Insn::Skip { n } => Some(*n),
                _ => None,
            })
            .collect();
        // if: skip then(1) + the jump; then: skip the else (3); else's when: skip 1.
        assert_eq!(skips, [2, 3, 1]);
        assert_eq!(back.read.len(), 6);
    }

    #[test]
    fn bad_programs_fail_to_build() {
        let kind = |b: FetchProgramBuilder| b.build().unwrap_err().kind;
        let one = || FetchProgram::builder(1);
        assert_eq!(kind(FetchProgram::builder(0)), ErrorKind::BadArgument);
        assert_eq!(
            kind(one().read(|p| {
                p.emit_int(16);
            })),
            ErrorKind::BadArgument
        );
        assert_eq!(
            kind(one().read(|p| {
                p.skip(1);
            })),
            ErrorKind::BadArgument
        );
        assert_eq!(
            kind(one().advance(|p| {
                p.emit_null();
            })),
            ErrorKind::BadArgument
        );
        assert_eq!(
            kind(one().scratch(16).read(|p| {
                p.load(1, 12);
            })),
            ErrorKind::BadArgument
        );
        assert_eq!(
            kind(one().read(|p| {
                p.call(f(0), &[Operand::Scratch(0)], 1);
            })),
            ErrorKind::BadArgument
        );
        assert_eq!(
            kind(one().read(|p| {
                p.call(f(0), &[Operand::Reg(99)], 1);
            })),
            ErrorKind::BadArgument
        );
        // What does fit builds, with scratch offsets past the control block.
        let p = one()
            .scratch(12)
            .read(|p| {
                p.load32(1, 12).emit_scratch_blob(0, 16, 1);
            })
            .build()
            .unwrap();
        assert_eq!(p.scratch, 16);
        let mut back = Program::default();
        back.decode(&p.words, &Any).unwrap();
        let at = CONTROL_SIZE as u32;
        assert_eq!(
            back.read,
            [
                Insn::Load {
                    dst: 1,
                    offset: at + 12,
                    wide: false
                },
                Insn::EmitArena {
                    tag: CellTag::Blob,
                    offset: at,
                    cap: 16,
                    len: 1
                },
            ]
        );
    }

    fn page_of(cells: &[(u8, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (tag, body) in cells {
            v.push(*tag);
            v.extend_from_slice(body);
        }
        v
    }

    #[test]
    fn a_page_is_walked_exactly() {
        let blob = [4u8, 0, 0, 0, 0, 0xff, 0, 7];
        let mut text = 3u32.to_ne_bytes().to_vec();
        text.extend_from_slice(b"a\0b");
        let page = page_of(&[
            (1, &(-5i64).to_ne_bytes()),
            (2, &1.5f64.to_ne_bytes()),
            (3, &text),
            (4, &blob),
            (5, &[]),
        ]);
        let mut rows = Vec::new();
        let mut cells = Vec::new();
        let r = walk(&page, 1, 5, &mut cells, |row| {
            rows.push(format!("{row:?}"));
            ControlFlow::Continue(())
        });
        assert_eq!(r, Ok(ControlFlow::Continue(())));
        assert_eq!(
            rows,
            [r#"[Int(-5), Float(1.5), Text([97, 0, 98]), Blob([0, 255, 0, 7]), Null]"#]
        );
        let fails = |page: &[u8], rows: usize, cols: usize| {
            walk(page, rows, cols, &mut Vec::new(), |_| {
                ControlFlow::Continue(())
            })
            .unwrap_err()
        };
        // Too few cells, too many bytes, a bad tag, a length past the end.
        assert!(fails(&page, 1, 6).contains("past the page"));
        assert!(fails(&page, 1, 4).contains("1 bytes past the last row"));
        assert!(fails(&page, 2, 5).contains("past the page"));
        assert!(fails(&[9], 1, 1).contains("unknown cell tag 9"));
        assert!(fails(&[3, 0xff, 0xff, 0xff, 0xff, 0], 1, 1).contains("past the page"));
        assert!(fails(&[1, 0, 0], 1, 1).contains("past the page"));
        assert_eq!(
            walk(&[], 0, 3, &mut cells, |_| ControlFlow::Continue(())),
            Ok(ControlFlow::Continue(()))
        );
    }
}
