//! Building a fetch program: the sections' steps ([`Section`]), checked
//! and lowered to the wire's instructions by [`FetchProgramBuilder::build`].

use ffb_contract::wire::fetch::{
    CellTag, Insn, Operand as WireOperand, Program, MAX_PROGRAM_WORDS, REGISTERS,
};
use ffb_contract::wire::{align_up, CONTROL_SIZE, MAX_WIRE_ARGS};

use super::{Cmp, Operand};
use crate::bridge::FunctionId;
use crate::error::{err, Error, ErrorKind, Result};

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

    /// Ends the fetch unless `reg CMP rhs` ([`FetchEnd::Ended`](super::FetchEnd::Ended) with
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
    /// parameter types are checked by [`Bridge::fetch`](crate::bridge::Bridge::fetch), which knows them.
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
/// [`FetchProgram::builder`]; run it with [`Bridge::fetch`](crate::bridge::Bridge::fetch).
#[derive(Clone, Debug)]
pub struct FetchProgram {
    pub(super) columns: usize,
    pub(super) scratch: usize,
    pub(super) words: Vec<u64>,
    /// Every call, for the bridge to check against its declarations.
    pub(super) calls: Vec<(FunctionId, Vec<Operand>)>,
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
}
