//! The host's decoders of what a helper writes, reachable from the fuzz
//! targets (`fuzz/` in the repository) and their replay tests. Not part of
//! the API: each item here is a thin door onto the code a
//! [`Bridge`](crate::Bridge) runs on every answer, so that the fuzzers
//! exercise that code and not a copy of it.
//!
//! * [`FuzzArena`]: a real arena (a sealed memfd, mapped), with the raw
//!   copies and the message read the host makes from it, and its start, for
//!   a thread playing the hostile helper that writes it concurrently.
//! * [`check_answer`] and [`walk_page`]: a fetch answer's header and page.
//! * [`decode_scalar`]: a raw return word as a value of its declared type.
//! * [`read_cstr_of`]: a returned string, read out of a process's memory.

use std::ops::ControlFlow;

use ffb_abi::signature::ScalarType;
use ffb_contract::wire::fetch::{Outcome, ANSWER_BYTES};
use ffb_contract::wire::Control;

use crate::arena::Arena;
use crate::bridge::Cell;
use crate::error::Result;
use crate::value::Value;

/// A host-side arena mapping, as a [`Bridge`](crate::Bridge) holds one per
/// helper.
pub struct FuzzArena(Arena);

impl FuzzArena {
    /// A zeroed arena of `len` bytes (at least the minimum arena).
    pub fn create(len: usize) -> Result<FuzzArena> {
        Arena::create(len).map(FuzzArena)
    }

    /// The mapping's length.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never: an arena has at least the minimum arena's bytes.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// The start of the mapping: what the hostile side writes through (with
    /// volatile or atomic writes; the host only ever copies these bytes).
    pub fn base(&self) -> *mut u8 {
        self.0.base()
    }

    /// The control block's atomics.
    pub fn control(&self) -> &Control {
        self.0.control()
    }

    /// The host's copy of `len` data-area bytes at `offset`, into `out`.
    pub fn read_to_vec(&self, offset: usize, len: usize, out: &mut Vec<u8>) {
        self.0.read_to_vec(offset, len, out)
    }

    /// The host's copy of `out.len()` data-area bytes at `offset`.
    pub fn read_into(&self, offset: usize, out: &mut [u8]) {
        self.0.read_into(offset, out)
    }

    /// The host's read of the helper's message of `len` bytes.
    pub fn message(&self, len: u32) -> Result<String> {
        self.0.message(len)
    }
}

/// The host's check of a fetch answer header (copied out once).
pub fn check_answer(
    head: &[u8; ANSWER_BYTES],
    want: usize,
    capacity: usize,
) -> std::result::Result<(Outcome, usize, usize), String> {
    crate::bridge::check_answer(head, want, capacity)
}

/// The host's walk of a fetch page of `rows` rows of `columns` cells,
/// calling `each` with every row.
pub fn walk_page<'a>(
    page: &'a [u8],
    rows: usize,
    columns: usize,
    mut each: impl FnMut(&[Cell<'a>]),
) -> std::result::Result<(), String> {
    let mut cells = Vec::new();
    crate::bridge::walk(page, rows, columns, &mut cells, |row| {
        each(row);
        ControlFlow::Continue(())
    })
    .map(|_| ())
}

/// A raw return word as a value of scalar type `s`.
pub fn decode_scalar(s: ScalarType, raw: u64) -> Value {
    crate::value::decode_scalar(s, raw)
}

/// The host's read of a returned string at `addr` in process `pid`, of at
/// most `bound` bytes.
pub fn read_cstr_of(pid: i32, addr: u64, bound: usize) -> Result<Vec<u8>> {
    crate::helper::read_cstr_of(pid, addr, bound)
}
