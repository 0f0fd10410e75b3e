//! One page's handoff: the request laid out in the arena and sent
//! ([`Bridge::send_page`]), and the answer and page read back once
//! ([`Bridge::read_page`]).

use std::sync::atomic::Ordering::Relaxed;

use ffb_contract::wire::fetch::{
    answer, arg, Outcome, ANSWER_BYTES, ANSWER_WORDS, FLAG_RESUME, REGISTERS,
};
use ffb_contract::wire::{align_up, Op, CONTROL_SIZE};

use super::page::{answer_word, check_answer, protocol};
use super::{FetchProgram, FetchState};
use crate::bridge::Bridge;
use crate::error::{err, ErrorKind, Result};

/// Where one page's request lies in the arena.
pub(super) struct PageLayout {
    pub(super) answer_at: usize,
    pub(super) page_at: usize,
    pub(super) capacity: usize,
}

impl Bridge {
    /// Lays out one page's request and sends it.
    pub(super) fn send_page(
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

    /// Reads the answer (once) and checks it: the outcome, the counts
    /// against what was asked. Copies the page (once) into `state.page`,
    /// for the caller to decode ([`super::decode_page`]). Returns the
    /// outcome, the rows and the detail word.
    pub(super) fn read_page(
        &mut self,
        state: &mut FetchState,
        layout: &PageLayout,
        want: usize,
    ) -> Result<(Outcome, usize, u64)> {
        let helper = self.helper.as_ref().expect("alive after a response");
        let mut head = [0u8; ANSWER_BYTES];
        helper.arena().read_into(layout.answer_at, &mut head);
        let word = |i: usize| answer_word(&head, i);
        let (outcome, rows, used) = match check_answer(&head, want, layout.capacity) {
            Ok(v) => v,
            Err(why) => return Err(self.failed(protocol(why), None)),
        };
        let helper = self.helper.as_ref().expect("alive after a response");
        helper
            .arena()
            .read_to_vec(layout.page_at, used, &mut state.page);
        for (i, r) in state.regs.iter_mut().enumerate() {
            *r = word(answer::REGS + i);
        }
        state.resume = outcome == Outcome::RowDidNotFit;
        debug_assert_eq!(ANSWER_WORDS, answer::REGS + REGISTERS);
        Ok((outcome, rows, word(answer::DETAIL)))
    }
}
