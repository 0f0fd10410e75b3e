//! Fetch programs: a whole page of rows in one handoff ([`Op::Fetch`](super::Op::Fetch)).
//!
//! A result set read one call per cell costs a round trip per cell. A fetch
//! program is a tiny register program the host writes into the arena; the
//! helper runs it in a loop, making every foreign call in order, and copies
//! each cell straight into a page in the arena until the program ends, the
//! page is full or the host's row limit is reached. The helper knows nothing
//! about SQL: the program says which functions step a cursor and read a
//! row's cells.
//!
//! # The request
//!
//! ```text
//! CONTROL_SIZE                                                   capacity
//! | scratch | program words | answer header (ANSWER_BYTES) | page ........ |
//! ```
//!
//! The argument words ([`arg`]) give the program's offset and length in
//! words, the answer's offset, the page's capacity in bytes, the row limit,
//! the flags ([`FLAG_RESUME`]), the row reserve and the [`REGISTERS`]
//! initial registers. The scratch is arena space the program passes to
//! pointer parameters (for example an ODBC length indicator) and reads back
//! with `LOAD`.
//!
//! # The program
//!
//! Two words give the lengths, in words, of two sections, which follow:
//! ADVANCE, run before each row (a cursor step, or "row += 1; end unless row
//! < ntuples"), which emits no cells, and READ, which reads one row's cells
//! and must be repeatable for the same row. An `END_UNLESS` that fires in
//! READ rolls the row back and ends the fetch. Each instruction is a header word ([`Insn::encode`]:
//! the opcode in bits 0-7, fields `a`, `b`, `c` in bits 8-15, 16-23 and
//! 24-31, a 32-bit immediate in bits 32-63) followed by its operand words;
//! an [`Operand`] is two words, its kind and its value.
//!
//! # The loop
//!
//! ```text
//! rows = 0; first = resume
//! loop {
//!     if !first { run ADVANCE }          an END_UNLESS that fires: Ended, detail = its register
//!     first = false
//!     mark the row's start; run READ     a cell that does not fit: roll back to the row's start,
//!                                        RowDidNotFit, detail = bytes the row needed at least
//!     rows += 1
//!     if rows == max_rows or fewer than row_reserve bytes are left: PageFull
//! }
//! ```
//!
//! After `RowDidNotFit` the host sends the next request with
//! [`FLAG_RESUME`], so the row the cursor is on is read again, first, on a
//! fresh page.
//!
//! # The answer
//!
//! At the answer offset the helper writes [`ANSWER_WORDS`] words: the
//! [`Outcome`], the rows in the page, the page bytes used, the detail, and
//! the final registers, which the host passes back with the next request.
//! The page follows: rows back to back, each row its cells, each cell a
//! [`CellTag`] byte, then for a word cell 8 bytes (native order), for a bytes
//! cell a `u32` length and the bytes, for a null cell nothing. The host
//! reads all of it as hostile bytes: once, bounds-checked, with the cell
//! count per row known from the program.
//!
//! The same [`Program::decode`] checks a program on both sides: the helper
//! rejects a malformed one (every register, function index, offset, tag and
//! jump in range) with [`Status::BadRequest`](super::Status::BadRequest).

/// How many registers a program has.
pub const REGISTERS: usize = 16;
/// The most words a program may have (the helper's buffers are bounded by it).
pub const MAX_PROGRAM_WORDS: usize = 1 << 16;
/// The words of the answer header: outcome, rows, bytes used, detail, then the registers.
pub const ANSWER_WORDS: usize = 4 + REGISTERS;
/// The bytes of the answer header; the page follows it.
pub const ANSWER_BYTES: usize = 8 * ANSWER_WORDS;
/// The request's flag: read the current row first, without ADVANCE (after
/// [`Outcome::RowDidNotFit`]).
pub const FLAG_RESUME: u64 = 1;

/// The argument words of a fetch request, by index into `Control::args`.
pub mod arg {
    /// Arena offset of the program's first word.
    pub const PROGRAM: usize = 0;
    /// The program's length in words.
    pub const WORDS: usize = 1;
    /// Arena offset of the answer (8-aligned); the page follows its header.
    pub const ANSWER: usize = 2;
    /// The page's capacity in bytes.
    pub const CAPACITY: usize = 3;
    /// The most rows to put in the page (at least 1).
    pub const MAX_ROWS: usize = 4;
    /// [`FLAG_RESUME`](super::FLAG_RESUME) or 0.
    pub const FLAGS: usize = 5;
    /// Stop with a full page when fewer bytes than this are left after a row.
    pub const ROW_RESERVE: usize = 6;
    /// The first of the [`REGISTERS`](super::REGISTERS) initial registers.
    pub const REGS: usize = 8;
}

/// The answer header's words, by index.
pub mod answer {
    /// The [`Outcome`](super::Outcome).
    pub const OUTCOME: usize = 0;
    /// Rows in the page.
    pub const ROWS: usize = 1;
    /// Page bytes used.
    pub const BYTES: usize = 2;
    /// The end reason, or the bytes a row that did not fit needed at least.
    pub const DETAIL: usize = 3;
    /// The first final register.
    pub const REGS: usize = 4;
}

/// Why the helper stopped filling a page.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An `END_UNLESS` in ADVANCE fired; the detail is its register's value.
    Ended = 1,
    /// The row limit was reached, or too little space is left.
    PageFull = 2,
    /// A row did not fit in what was left of the page; it was rolled back,
    /// and the detail is the bytes it needed at least.
    RowDidNotFit = 3,
}

impl Outcome {
    /// The outcome for a wire word, if it is one.
    pub fn from_u64(v: u64) -> Option<Outcome> {
        match v {
            1 => Some(Outcome::Ended),
            2 => Some(Outcome::PageFull),
            3 => Some(Outcome::RowDidNotFit),
            _ => None,
        }
    }
}

/// What a cell's tag byte says it holds.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellTag {
    /// An `i64`: 8 bytes.
    Int = 1,
    /// An `f64`'s bits: 8 bytes.
    Float = 2,
    /// Text: a `u32` length and the bytes.
    Text = 3,
    /// A blob: a `u32` length and the bytes.
    Blob = 4,
    /// NULL: nothing follows.
    Null = 5,
}

/// How a cell's bytes follow its tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// 8 bytes.
    Word,
    /// A `u32` length, then that many bytes.
    Bytes,
    /// Nothing.
    Empty,
}

impl CellTag {
    /// The tag for a byte, if it is one.
    pub fn from_u8(v: u8) -> Option<CellTag> {
        match v {
            1 => Some(CellTag::Int),
            2 => Some(CellTag::Float),
            3 => Some(CellTag::Text),
            4 => Some(CellTag::Blob),
            5 => Some(CellTag::Null),
            _ => None,
        }
    }

    /// How the cell's bytes follow the tag.
    pub fn shape(self) -> Shape {
        match self {
            CellTag::Int | CellTag::Float => Shape::Word,
            CellTag::Text | CellTag::Blob => Shape::Bytes,
            CellTag::Null => Shape::Empty,
        }
    }
}

/// A comparison of a register with an operand, as signed 64-bit integers.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `==`
    Eq = 0,
    /// `!=`
    Ne = 1,
    /// `<`
    Lt = 2,
    /// `<=`
    Le = 3,
    /// `>`
    Gt = 4,
    /// `>=`
    Ge = 5,
}

impl Cmp {
    /// The comparison for a wire byte, if it is one.
    pub fn from_u8(v: u8) -> Option<Cmp> {
        Some(match v {
            0 => Cmp::Eq,
            1 => Cmp::Ne,
            2 => Cmp::Lt,
            3 => Cmp::Le,
            4 => Cmp::Gt,
            5 => Cmp::Ge,
            _ => return None,
        })
    }

    /// Whether `a CMP b` holds, both read as `i64`.
    ///
    /// ```
    /// use ffb_contract::wire::fetch::Cmp;
    /// assert!(Cmp::Lt.holds(u64::MAX, 0)); // -1 < 0
    /// assert!(Cmp::Ge.holds(100, 100));
    /// ```
    pub fn holds(self, a: u64, b: u64) -> bool {
        let (a, b) = (a as i64, b as i64);
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

/// An instruction's input: a constant word or a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// This word (for a pointer parameter: an arena offset, as in a call).
    Const(u64),
    /// The register's value.
    Reg(u8),
}

impl Operand {
    /// Its value, given the registers.
    #[inline]
    pub fn value(self, regs: &[u64; REGISTERS]) -> u64 {
        match self {
            Operand::Const(c) => c,
            Operand::Reg(r) => regs[r as usize & (REGISTERS - 1)],
        }
    }
}

/// One instruction. Register fields are below [`REGISTERS`] once decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insn {
    /// `dst = func(operands[args .. args + nargs])`: the raw return word.
    Call {
        /// The function's index in the helper's table.
        func: u32,
        /// The register that gets the return word.
        dst: u8,
        /// The first of its operands in [`Program::operands`].
        args: u32,
        /// How many operands it takes.
        nargs: u8,
    },
    /// Ends the fetch ([`Outcome::Ended`], detail = `reg`) unless `reg CMP rhs`.
    EndUnless {
        /// The register compared, and reported.
        reg: u8,
        /// The comparison.
        cmp: Cmp,
        /// What it is compared with.
        rhs: Operand,
    },
    /// Skips the next `n` instructions unless `reg CMP rhs`.
    SkipUnless {
        /// The register compared.
        reg: u8,
        /// The comparison.
        cmp: Cmp,
        /// What it is compared with.
        rhs: Operand,
        /// Instructions skipped when it does not hold.
        n: u32,
    },
    /// Skips the next `n` instructions.
    Skip {
        /// Instructions skipped.
        n: u32,
    },
    /// `reg = reg + imm` (wrapping).
    Add {
        /// The register.
        reg: u8,
        /// What is added.
        imm: u64,
    },
    /// `reg = src`.
    Set {
        /// The register.
        reg: u8,
        /// Its new value.
        src: Operand,
    },
    /// `dst` = the `u64` (or, `wide` false, the sign-extended `i32`) at
    /// arena `offset`.
    Load {
        /// The register.
        dst: u8,
        /// The arena offset read.
        offset: u32,
        /// 8 bytes, else 4.
        wide: bool,
    },
    /// A word cell: `tag` and `reg`'s 8 bytes.
    EmitWord {
        /// A word-shaped tag.
        tag: CellTag,
        /// The register.
        reg: u8,
    },
    /// A bytes cell: `len` bytes of helper memory at the address in `ptr`.
    EmitBytes {
        /// A bytes-shaped tag.
        tag: CellTag,
        /// The register with the address.
        ptr: u8,
        /// The register with the length (unsigned).
        len: u8,
    },
    /// A bytes cell from the arena: `len` bytes at `offset`, at most `cap`.
    EmitArena {
        /// A bytes-shaped tag.
        tag: CellTag,
        /// The arena offset of the bytes.
        offset: u32,
        /// The most bytes the region holds; a longer `len` is refused.
        cap: u32,
        /// The register with the length (unsigned).
        len: u8,
    },
    /// An empty cell.
    EmitNull {
        /// An empty-shaped tag.
        tag: CellTag,
    },
}

const OP_CALL: u64 = 1;
const OP_END_UNLESS: u64 = 2;
const OP_SKIP_UNLESS: u64 = 3;
const OP_SKIP: u64 = 4;
const OP_ADD: u64 = 5;
const OP_SET: u64 = 6;
const OP_LOAD: u64 = 7;
const OP_LOAD32: u64 = 8;
const OP_EMIT_WORD: u64 = 9;
const OP_EMIT_BYTES: u64 = 10;
const OP_EMIT_ARENA: u64 = 11;
const OP_EMIT_NULL: u64 = 12;

const KIND_CONST: u64 = 0;
const KIND_REG: u64 = 1;

fn header(op: u64, a: u8, b: u8, c: u8, imm: u32) -> u64 {
    op | u64::from(a) << 8 | u64::from(b) << 16 | u64::from(c) << 24 | u64::from(imm) << 32
}

fn push_operand(out: &mut Vec<u64>, o: Operand) {
    match o {
        Operand::Const(c) => out.extend([KIND_CONST, c]),
        Operand::Reg(r) => out.extend([KIND_REG, r.into()]),
    }
}

impl Insn {
    /// Appends this instruction's words; `operands` holds a call's operands.
    pub fn encode(&self, operands: &[Operand], out: &mut Vec<u64>) {
        match *self {
            Insn::Call {
                func,
                dst,
                args,
                nargs,
            } => {
                out.push(header(OP_CALL, dst, 0, nargs, func));
                let start = args as usize;
                for &o in &operands[start..start + usize::from(nargs)] {
                    push_operand(out, o);
                }
            }
            Insn::EndUnless { reg, cmp, rhs } => {
                out.push(header(OP_END_UNLESS, reg, cmp as u8, 0, 0));
                push_operand(out, rhs);
            }
            Insn::SkipUnless { reg, cmp, rhs, n } => {
                out.push(header(OP_SKIP_UNLESS, reg, cmp as u8, 0, n));
                push_operand(out, rhs);
            }
            Insn::Skip { n } => out.push(header(OP_SKIP, 0, 0, 0, n)),
            Insn::Add { reg, imm } => out.extend([header(OP_ADD, reg, 0, 0, 0), imm]),
            Insn::Set { reg, src } => {
                out.push(header(OP_SET, reg, 0, 0, 0));
                push_operand(out, src);
            }
            Insn::Load { dst, offset, wide } => {
                let op = if wide { OP_LOAD } else { OP_LOAD32 };
                out.push(header(op, dst, 0, 0, offset));
            }
            Insn::EmitWord { tag, reg } => out.push(header(OP_EMIT_WORD, reg, tag as u8, 0, 0)),
            Insn::EmitBytes { tag, ptr, len } => {
                out.push(header(OP_EMIT_BYTES, ptr, tag as u8, len, 0))
            }
            Insn::EmitArena {
                tag,
                offset,
                cap,
                len,
            } => out.extend([
                header(OP_EMIT_ARENA, 0, tag as u8, len, offset),
                u64::from(cap),
            ]),
            Insn::EmitNull { tag } => out.push(header(OP_EMIT_NULL, 0, tag as u8, 0, 0)),
        }
    }
}

/// A decoded program: its two sections and the calls' operands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    /// Run before each row.
    pub advance: Vec<Insn>,
    /// Reads one row.
    pub read: Vec<Insn>,
    /// Every call's operands, in order.
    pub operands: Vec<Operand>,
}

/// What a decoder checks offsets and function indices against.
pub trait Bounds {
    /// How many functions the helper has.
    fn functions(&self) -> usize;
    /// Whether `len` bytes at arena `offset` lie in the data area.
    fn fits(&self, offset: usize, len: usize) -> bool;
}

/// Reads the program's words one by one, each once.
struct Reader<'a> {
    words: &'a [u64],
    at: usize,
}

impl Reader<'_> {
    fn next(&mut self) -> Result<u64, &'static str> {
        let w = *self.words.get(self.at).ok_or("fetch program cut short")?;
        self.at += 1;
        Ok(w)
    }

    fn operand(&mut self) -> Result<Operand, &'static str> {
        let kind = self.next()?;
        let value = self.next()?;
        match kind {
            KIND_CONST => Ok(Operand::Const(value)),
            KIND_REG => Ok(Operand::Reg(reg(value)?)),
            _ => Err("fetch program: unknown operand kind"),
        }
    }
}

fn reg(v: impl Into<u64>) -> Result<u8, &'static str> {
    let v = v.into();
    if v < REGISTERS as u64 {
        Ok(v as u8)
    } else {
        Err("fetch program: register out of range")
    }
}

fn tag(v: u8, shape: Shape) -> Result<CellTag, &'static str> {
    CellTag::from_u8(v)
        .filter(|t| t.shape() == shape)
        .ok_or("fetch program: bad cell tag")
}

impl Program {
    /// Appends the program's words (the two section lengths, then the sections).
    pub fn encode(&self, out: &mut Vec<u64>) {
        let start = out.len();
        out.extend([0, 0]);
        for i in &self.advance {
            i.encode(&self.operands, out);
        }
        let advance_end = out.len();
        for i in &self.read {
            i.encode(&self.operands, out);
        }
        out[start] = (advance_end - start - 2) as u64;
        out[start + 1] = (out.len() - advance_end) as u64;
    }

    /// Decodes `words` into `self`, reusing its buffers, and checks every
    /// field: registers, comparisons, tags, function indices and arena
    /// offsets (against `bounds`), jumps (within their section), lengths.
    /// On an error `self` holds part of the program and must not be run.
    ///
    /// ```
    /// use ffb_contract::wire::fetch::{Bounds, Insn, Program};
    /// struct Two;
    /// impl Bounds for Two {
    ///     fn functions(&self) -> usize { 2 }
    ///     fn fits(&self, _: usize, _: usize) -> bool { true }
    /// }
    /// let mut p = Program::default();
    /// p.read.push(Insn::Skip { n: 1 });
    /// let mut words = Vec::new();
    /// p.encode(&mut words);
    /// assert_eq!(Program::default().decode(&words, &Two), Err("fetch program: jump out of its section"));
    /// ```
    pub fn decode(&mut self, words: &[u64], bounds: &impl Bounds) -> Result<(), &'static str> {
        self.advance.clear();
        self.read.clear();
        self.operands.clear();
        if words.len() > MAX_PROGRAM_WORDS {
            return Err("fetch program too long");
        }
        let mut r = Reader { words, at: 0 };
        let advance_len = r.next()?;
        let read_len = r.next()?;
        let total = advance_len
            .checked_add(read_len)
            .and_then(|n| n.checked_add(2));
        if total != Some(words.len() as u64) {
            return Err("fetch program: section lengths do not add up");
        }
        let advance_end = 2 + advance_len as usize;
        let mut section = std::mem::take(&mut self.advance);
        let decoded = self.decode_section(&mut r, advance_end, bounds, false, &mut section);
        self.advance = section;
        decoded?;
        let mut section = std::mem::take(&mut self.read);
        let decoded = self.decode_section(&mut r, words.len(), bounds, true, &mut section);
        self.read = section;
        decoded
    }

    /// Decodes one section, up to word `end`; only READ (`emits`) may emit cells.
    fn decode_section(
        &mut self,
        r: &mut Reader<'_>,
        end: usize,
        bounds: &impl Bounds,
        emits: bool,
        out: &mut Vec<Insn>,
    ) -> Result<(), &'static str> {
        while r.at < end {
            let h = r.next()?;
            let (a, b, c, imm) = (
                (h >> 8) as u8,
                (h >> 16) as u8,
                (h >> 24) as u8,
                (h >> 32) as u32,
            );
            let insn = match h & 0xff {
                OP_CALL => {
                    if imm as usize >= bounds.functions() {
                        return Err("fetch program: no such function");
                    }
                    if usize::from(c) > crate::wire::MAX_WIRE_ARGS {
                        return Err("fetch program: too many arguments");
                    }
                    let args = self.operands.len() as u32;
                    for _ in 0..c {
                        let o = r.operand()?;
                        self.operands.push(o);
                    }
                    Insn::Call {
                        func: imm,
                        dst: reg(a)?,
                        args,
                        nargs: c,
                    }
                }
                OP_END_UNLESS | OP_SKIP_UNLESS => {
                    let reg = reg(a)?;
                    let cmp = Cmp::from_u8(b).ok_or("fetch program: bad comparison")?;
                    let rhs = r.operand()?;
                    if h & 0xff == OP_END_UNLESS {
                        Insn::EndUnless { reg, cmp, rhs }
                    } else {
                        Insn::SkipUnless {
                            reg,
                            cmp,
                            rhs,
                            n: imm,
                        }
                    }
                }
                OP_SKIP => Insn::Skip { n: imm },
                OP_ADD => Insn::Add {
                    reg: reg(a)?,
                    imm: r.next()?,
                },
                OP_SET => Insn::Set {
                    reg: reg(a)?,
                    src: r.operand()?,
                },
                op @ (OP_LOAD | OP_LOAD32) => {
                    let wide = op == OP_LOAD;
                    if !bounds.fits(imm as usize, if wide { 8 } else { 4 }) {
                        return Err("fetch program: load out of range");
                    }
                    Insn::Load {
                        dst: reg(a)?,
                        offset: imm,
                        wide,
                    }
                }
                OP_EMIT_WORD => Insn::EmitWord {
                    tag: tag(b, Shape::Word)?,
                    reg: reg(a)?,
                },
                OP_EMIT_BYTES => Insn::EmitBytes {
                    tag: tag(b, Shape::Bytes)?,
                    ptr: reg(a)?,
                    len: reg(c)?,
                },
                OP_EMIT_ARENA => {
                    let cap = r.next()?;
                    let cap = u32::try_from(cap).map_err(|_| "fetch program: bad capacity")?;
                    if !bounds.fits(imm as usize, cap as usize) {
                        return Err("fetch program: arena cell out of range");
                    }
                    Insn::EmitArena {
                        tag: tag(b, Shape::Bytes)?,
                        offset: imm,
                        cap,
                        len: reg(c)?,
                    }
                }
                OP_EMIT_NULL => Insn::EmitNull {
                    tag: tag(b, Shape::Empty)?,
                },
                _ => return Err("fetch program: unknown instruction"),
            };
            let emit = matches!(
                insn,
                Insn::EmitWord { .. }
                    | Insn::EmitBytes { .. }
                    | Insn::EmitArena { .. }
                    | Insn::EmitNull { .. }
            );
            if emit && !emits {
                return Err("fetch program: ADVANCE emits a cell");
            }
            out.push(insn);
        }
        if r.at != end {
            return Err("fetch program: an instruction crosses its section's end");
        }
        // Every jump lands inside its section, or just past its end.
        for (i, insn) in out.iter().enumerate() {
            if let Insn::Skip { n } | Insn::SkipUnless { n, .. } = *insn {
                if (n as usize) > out.len() - i - 1 {
                    return Err("fetch program: jump out of its section");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct B(usize, usize);
    impl Bounds for B {
        fn functions(&self) -> usize {
            self.0
        }
        fn fits(&self, offset: usize, len: usize) -> bool {
            offset >= 4096 && offset + len <= self.1
        }
    }

    fn sample() -> Program {
        Program {
            advance: vec![
                Insn::Call {
                    func: 0,
                    dst: 1,
                    args: 0,
                    nargs: 1,
                },
                Insn::EndUnless {
                    reg: 1,
                    cmp: Cmp::Eq,
                    rhs: Operand::Const(100),
                },
            ],
            read: vec![
                Insn::Call {
                    func: 1,
                    dst: 2,
                    args: 1,
                    nargs: 2,
                },
                Insn::SkipUnless {
                    reg: 2,
                    cmp: Cmp::Eq,
                    rhs: Operand::Const(1),
                    n: 2,
                },
                Insn::EmitWord {
                    tag: CellTag::Int,
                    reg: 2,
                },
                Insn::Skip { n: 1 },
                Insn::EmitNull { tag: CellTag::Null },
                Insn::Add {
                    reg: 15,
                    imm: u64::MAX,
                },
                Insn::Set {
                    reg: 3,
                    src: Operand::Reg(15),
                },
                Insn::Load {
                    dst: 4,
                    offset: 4096,
                    wide: false,
                },
                Insn::EmitBytes {
                    tag: CellTag::Blob,
                    ptr: 3,
                    len: 4,
                },
                Insn::EmitArena {
                    tag: CellTag::Text,
                    offset: 4104,
                    cap: 16,
                    len: 4,
                },
            ],
            operands: vec![Operand::Reg(0), Operand::Reg(0), Operand::Const(7)],
        }
    }

    fn words(p: &Program) -> Vec<u64> {
        let mut w = Vec::new();
        p.encode(&mut w);
        w
    }

    #[test]
    fn a_program_round_trips() {
        let p = sample();
        let mut back = Program::default();
        assert_eq!(back.decode(&words(&p), &B(2, 8192)), Ok(()));
        assert_eq!(back, p);
    }

    #[test]
    fn every_out_of_range_field_is_refused() {
        let p = sample();
        let w = words(&p);
        let mut d = Program::default();
        assert_eq!(
            d.decode(&w, &B(1, 8192)),
            Err("fetch program: no such function")
        );
        assert_eq!(
            d.decode(&w, &B(2, 4100)),
            Err("fetch program: arena cell out of range")
        );
        let mut bad = p.clone();
        bad.read[7] = Insn::Load {
            dst: 4,
            offset: 10,
            wide: true,
        };
        assert_eq!(
            d.decode(&words(&bad), &B(2, 8192)),
            Err("fetch program: load out of range")
        );
        let mut bad = p.clone();
        bad.read[3] = Insn::Skip { n: 7 };
        assert_eq!(
            d.decode(&words(&bad), &B(2, 8192)),
            Err("fetch program: jump out of its section")
        );
        let mut bad = p.clone();
        bad.advance[1] = Insn::SkipUnless {
            reg: 1,
            cmp: Cmp::Eq,
            rhs: Operand::Const(0),
            n: 1,
        };
        assert_eq!(
            d.decode(&words(&bad), &B(2, 8192)),
            Err("fetch program: jump out of its section")
        );
    }

    #[test]
    fn scribbled_words_are_refused() {
        let w = words(&sample());
        let mut d = Program::default();
        let check = |w: &[u64], why: &str| {
            let mut d = Program::default();
            assert_eq!(d.decode(w, &B(2, 8192)), Err(why), "{w:x?}");
        };
        // The first call's destination register (field a of its header).
        let mut x = w.clone();
        x[2] |= 16 << 8;
        check(&x, "fetch program: register out of range");
        // Its operand kind, then the operand's register.
        let mut x = w.clone();
        x[3] = 2;
        check(&x, "fetch program: unknown operand kind");
        let mut x = w.clone();
        x[4] = 16;
        check(&x, "fetch program: register out of range");
        // The END_UNLESS comparison.
        let mut x = w.clone();
        x[5] |= 9 << 16;
        check(&x, "fetch program: bad comparison");
        // An unknown opcode, a wrong section length, a truncated program.
        let mut x = w.clone();
        x[5] = (x[5] & !0xff) | 0x7f;
        check(&x, "fetch program: unknown instruction");
        let mut x = w.clone();
        x[0] += 1;
        check(&x, "fetch program: section lengths do not add up");
        let mut x = w.clone();
        x[0] = 1;
        x[1] = w.len() as u64 - 3;
        check(
            &x,
            "fetch program: an instruction crosses its section's end",
        );
        check(
            &w[..w.len() - 1],
            "fetch program: section lengths do not add up",
        );
        check(&[], "fetch program cut short");
        let mut x = w.clone();
        x[0] = u64::MAX;
        check(&x, "fetch program: section lengths do not add up");
        // A word tag on a null cell: tags must fit their instruction.
        let mut t = sample();
        t.read[4] = Insn::EmitNull { tag: CellTag::Int };
        check(&words(&t), "fetch program: bad cell tag");
        // ADVANCE reads no cells.
        let mut t = sample();
        t.advance.push(Insn::EmitNull { tag: CellTag::Null });
        check(&words(&t), "fetch program: ADVANCE emits a cell");
        // Everything that decodes is what was encoded.
        assert_eq!(d.decode(&w, &B(2, 8192)), Ok(()));
    }

    #[test]
    fn comparisons_are_signed() {
        assert!(Cmp::Lt.holds(-1i64 as u64, 0));
        assert!(!Cmp::Gt.holds(-1i64 as u64, 0));
        assert!(Cmp::Le.holds(3, 3) && Cmp::Ne.holds(3, 4) && Cmp::Eq.holds(5, 5));
        assert_eq!(Cmp::from_u8(6), None);
        assert_eq!(CellTag::from_u8(0), None);
        assert_eq!(Outcome::from_u64(4), None);
    }
}
