//! Fetch programs on the helper's side ([`Op::Fetch`](ffb_contract::wire::Op::Fetch)):
//! run the host's register program in a loop, every foreign call in order,
//! and copy each cell straight into the page in the arena. The format and
//! the loop are [`ffb_contract::wire::fetch`]'s.
//!
//! The program is copied out of the arena once per request and checked as a
//! whole ([`Program::decode`]) before anything runs, so the library
//! scribbling on the arena meanwhile changes nothing here. Per row there is
//! no allocation and no syscall: the buffers are this module's, reused, and
//! the page was checked to fit the arena before the first row.

use std::cell::RefCell;
use std::sync::atomic::Ordering::Relaxed;

use ffb_contract::wire::fetch::{
    answer, arg, Bounds, Insn, Operand, Outcome, Program, ANSWER_BYTES, FLAG_RESUME,
    MAX_PROGRAM_WORDS, REGISTERS,
};
use ffb_contract::wire::Status;

use crate::arena::Arena;
use crate::ffi::{ArgSlots, Function};

/// The words and the decoded program, kept between requests for their buffers.
#[derive(Default)]
struct Buffers {
    words: Vec<u64>,
    program: Program,
}

thread_local! {
    // The serve loop is single-threaded; this only keeps the capacity.
    static BUFFERS: RefCell<Buffers> = RefCell::default();
}

struct Limits<'a> {
    functions: usize,
    arena: &'a Arena,
}

impl Bounds for Limits<'_> {
    fn functions(&self) -> usize {
        self.functions
    }
    fn fits(&self, offset: usize, len: usize) -> bool {
        self.arena.fits(offset, len)
    }
}

/// How a section ended.
enum Flow {
    Next,
    End(u64),
    /// A cell did not fit: the row needed at least this many bytes.
    Overflow(u64),
}

/// The page being filled: `cap` bytes at helper address `base`, checked to
/// lie in the arena.
struct Page {
    base: *mut u8,
    cap: usize,
    used: usize,
}

impl Page {
    /// Reserves `size` bytes for a cell of the row that started at `row`:
    /// their offset, or the bytes the row needs.
    fn take(&mut self, size: usize, row: usize) -> Result<usize, Flow> {
        match self.used.checked_add(size) {
            Some(end) if end <= self.cap => Ok(std::mem::replace(&mut self.used, end)),
            _ => Err(Flow::Overflow((self.used - row).saturating_add(size) as u64)),
        }
    }

    /// Writes `bytes` at `at`, reserved by [`Page::take`].
    fn put(&self, at: usize, bytes: &[u8]) {
        // SAFETY: `at..at + bytes.len()` was reserved inside the page, which
        // lies in the arena mapping; `bytes` is this process's own memory.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.wrapping_add(at), bytes.len())
        };
    }

    /// Writes a bytes cell's tag and length at `at`, reserved by [`Page::take`].
    fn head(&self, at: usize, tag: u8, len: u32) {
        self.put(at, &[tag]);
        self.put(at + 1, &len.to_ne_bytes());
    }

    /// Copies `len` bytes from helper address `src` to `at`, reserved by
    /// [`Page::take`].
    fn copy_from(&self, at: usize, src: u64, len: usize) {
        // SAFETY: the destination was reserved inside the page. The source
        // is bytes the library handed back to be read (or a checked arena
        // region): a wrong pointer faults this expendable, sandboxed
        // process, as the library's own reads would. `copy`, not
        // `copy_nonoverlapping`: the source may lie in the arena.
        unsafe { std::ptr::copy(src as usize as *const u8, self.base.wrapping_add(at), len) };
    }
}

/// Answers a fetch request. Returns the status, `ret` and a message, as the
/// serve loop's other requests do.
pub fn serve(
    arena: &Arena,
    functions: &[Function],
    slots: &mut ArgSlots,
) -> (Status, u64, Option<String>) {
    BUFFERS.with_borrow_mut(|b| match run(arena, functions, slots, b) {
        Ok(()) => (Status::Ok, 0, None),
        Err(why) => (Status::BadRequest, 0, Some(why.into())),
    })
}

fn run(
    arena: &Arena,
    functions: &[Function],
    slots: &mut ArgSlots,
    b: &mut Buffers,
) -> Result<(), &'static str> {
    let ctl = arena.control();
    let word = |i: usize| ctl.args[i].load(Relaxed);
    let (at, nwords, answer_at) = (word(arg::PROGRAM), word(arg::WORDS), word(arg::ANSWER));
    let (cap, max_rows, flags) = (word(arg::CAPACITY), word(arg::MAX_ROWS), word(arg::FLAGS));
    let reserve = word(arg::ROW_RESERVE);
    let mut regs = [0u64; REGISTERS];
    for (i, r) in regs.iter_mut().enumerate() {
        *r = word(arg::REGS + i);
    }
    let (Ok(at), Ok(nwords), Ok(answer_at), Ok(cap)) = (
        usize::try_from(at),
        usize::try_from(nwords),
        usize::try_from(answer_at),
        usize::try_from(cap),
    ) else {
        return Err("fetch request out of range");
    };
    let page_at = answer_at
        .checked_add(ANSWER_BYTES)
        .ok_or("fetch answer out of range")?;
    if nwords > MAX_PROGRAM_WORDS || !arena.fits(at, nwords * 8) {
        return Err("fetch program out of range");
    }
    if !arena.fits(answer_at, ANSWER_BYTES) || !arena.fits(page_at, cap) || max_rows == 0 {
        return Err("fetch page out of range");
    }
    b.words.clear();
    for i in 0..nwords {
        b.words
            .push(arena.read_word(at + 8 * i).unwrap_or_default());
    }
    let limits = Limits {
        functions: functions.len(),
        arena,
    };
    b.program.decode(&b.words, &limits)?;
    let base = arena
        .address(page_at as u64)
        .ok_or("fetch page out of range")?;
    let mut page = Page {
        base: base as usize as *mut u8,
        cap,
        used: 0,
    };
    let p = &b.program;
    let (mut rows, mut first) = (0u64, flags & FLAG_RESUME != 0);
    let mut exec = |section: &[Insn], page: &mut Page, regs: &mut [u64; REGISTERS]| {
        execute(section, &p.operands, regs, page, functions, slots, arena)
    };
    let (outcome, detail) = loop {
        if !first {
            match exec(&p.advance, &mut page, &mut regs)? {
                Flow::End(reason) => break (Outcome::Ended, reason),
                Flow::Next | Flow::Overflow(_) => {}
            }
        }
        first = false;
        let row = page.used;
        match exec(&p.read, &mut page, &mut regs)? {
            Flow::Next => {}
            Flow::End(reason) => {
                page.used = row;
                break (Outcome::Ended, reason);
            }
            Flow::Overflow(needed) => {
                page.used = row;
                break (Outcome::RowDidNotFit, needed);
            }
        }
        rows += 1;
        if rows >= max_rows || ((cap - page.used) as u64) < reserve {
            break (Outcome::PageFull, 0);
        }
    };
    let head = [outcome as u64, rows, page.used as u64, detail];
    for (i, w) in head.iter().chain(regs.iter()).enumerate() {
        // Checked to fit above: ANSWER_BYTES from answer_at.
        arena.write_word(answer_at + 8 * i, *w);
    }
    debug_assert_eq!(answer::REGS, head.len());
    Ok(())
}

/// Runs one section on the current row.
fn execute(
    section: &[Insn],
    operands: &[Operand],
    regs: &mut [u64; REGISTERS],
    page: &mut Page,
    functions: &[Function],
    slots: &mut ArgSlots,
    arena: &Arena,
) -> Result<Flow, &'static str> {
    // The row started where the page was when this section began (ADVANCE
    // emits nothing, so for READ that is the row's start).
    let row = page.used;
    let mut pc = 0;
    // Decoding checked every register below REGISTERS, every function index,
    // offset and jump; `get` keeps a slip from ever panicking here.
    while let Some(&insn) = section.get(pc) {
        pc += 1;
        match insn {
            Insn::Call {
                func,
                dst,
                args,
                nargs,
            } => {
                let function = functions.get(func as usize).ok_or("no such function")?;
                let ops = operands
                    .get(args as usize..args as usize + usize::from(nargs))
                    .ok_or("operands out of range")?;
                let words = ops.iter().map(|o| o.value(regs));
                let ret = slots.call_words(function, arena, words);
                regs[usize::from(dst)] = ret.map_err(|_| "fetch call refused its arguments")?;
            }
            Insn::EndUnless { reg, cmp, rhs } => {
                let v = regs[usize::from(reg)];
                if !cmp.holds(v, rhs.value(regs)) {
                    return Ok(Flow::End(v));
                }
            }
            Insn::SkipUnless { reg, cmp, rhs, n } => {
                if !cmp.holds(regs[usize::from(reg)], rhs.value(regs)) {
                    pc += n as usize;
                }
            }
            Insn::Skip { n } => pc += n as usize,
            Insn::Add { reg, imm } => {
                let r = &mut regs[usize::from(reg)];
                *r = r.wrapping_add(imm);
            }
            Insn::Set { reg, src } => regs[usize::from(reg)] = src.value(regs),
            Insn::Load { dst, offset, wide } => {
                let offset = offset as usize;
                regs[usize::from(dst)] = if wide {
                    arena.read_word(offset).ok_or("load out of range")?
                } else {
                    let w = arena.address(offset as u64).ok_or("load out of range")?;
                    // SAFETY: decoding checked that the 4 bytes at `offset`
                    // lie in the arena's data area; an unaligned read of
                    // plain bytes.
                    let v = unsafe { (w as usize as *const i32).read_unaligned() };
                    v as i64 as u64
                };
            }
            Insn::EmitWord { tag, reg } => {
                let at = match page.take(9, row) {
                    Ok(at) => at,
                    Err(flow) => return Ok(flow),
                };
                page.put(at, &[tag as u8]);
                page.put(at + 1, &regs[usize::from(reg)].to_ne_bytes());
            }
            Insn::EmitBytes { tag, ptr, len } => {
                let (src, len) = (regs[usize::from(ptr)], regs[usize::from(len)]);
                if src == 0 && len != 0 {
                    return Err("a cell's pointer is NULL but its length is not 0");
                }
                let Some(at) = cell_size(len).map(|size| page.take(size, row)) else {
                    return Ok(Flow::Overflow(len));
                };
                let at = match at {
                    Ok(at) => at,
                    Err(flow) => return Ok(flow),
                };
                page.head(at, tag as u8, len as u32);
                page.copy_from(at + 5, src, len as usize);
            }
            Insn::EmitArena {
                tag,
                offset,
                cap,
                len,
            } => {
                let len = regs[usize::from(len)];
                if len > u64::from(cap) {
                    return Err("an arena cell is longer than its region");
                }
                let at = match page.take(5 + len as usize, row) {
                    Ok(at) => at,
                    Err(flow) => return Ok(flow),
                };
                let src = arena
                    .address(offset.into())
                    .ok_or("arena cell out of range")?;
                // Decoding checked `cap` bytes at `offset` lie in the arena.
                page.head(at, tag as u8, len as u32);
                page.copy_from(at + 5, src, len as usize);
            }
            Insn::EmitNull { tag } => {
                let at = match page.take(1, row) {
                    Ok(at) => at,
                    Err(flow) => return Ok(flow),
                };
                page.put(at, &[tag as u8]);
            }
        }
    }
    Ok(Flow::Next)
}

/// The bytes of a cell of `len` bytes: tag, `u32` length, bytes; `None`
/// when the length does not fit a `u32`.
fn cell_size(len: u64) -> Option<usize> {
    u32::try_from(len).ok().map(|len| 5 + len as usize)
}
