//! The handoff: how host and helper take turns on the arena's control lines.
//!
//! The host writes a request and then `req_seq`; the helper answers and then
//! writes `resp_seq` equal to it. The side that waits spins for a while
//! ([`AdaptiveSpin`] decides how long) and then sleeps: the helper on a
//! futex on `req_seq`, the host in `poll` on an eventfd that the helper
//! signals only when the host's `host_parked` flag is set. Both waits are the
//! one loop in [`wait`]; what differs between the sides (what counts as the
//! answer, how to sleep, what else may end the wait) is a [`Side`].
//!
//! Lost wake-ups are ruled out Dekker-style, with `SeqCst` on both sides:
//!
//! ```text
//!  waiter going to sleep:  parked = 1;   if answered { don't sleep }
//!  peer publishing:        seq = n;      if parked == 1 { wake the waiter }
//! ```
//!
//! Whichever store comes first in the single `SeqCst` order, the other
//! side's load sees it: either the sleeper sees the answer and stays awake,
//! or the publisher sees the flag and wakes it ([`publish`]). A wake-up
//! that was not needed only costs one more turn of the loop.
//!
//! A wait answered while spinning makes no syscall and allocates nothing:
//! it reads the sequence word, and every 64 spins the clock (vDSO) and the
//! peer's CPU hint.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::{Duration, Instant};
//! use ffb_contract::handoff::{self, Side};
//! use ffb_contract::spin::AdaptiveSpin;
//!
//! /// Waits for `word` to reach 1, "sleeping" by setting it itself.
//! struct Toy { word: AtomicU32, parked: AtomicU32, spin: AdaptiveSpin }
//! impl Side for Toy {
//!     type Outcome = &'static str;
//!     fn spin(&mut self) -> &mut AdaptiveSpin { &mut self.spin }
//!     fn answer(&self, order: Ordering) -> Option<&'static str> {
//!         (self.word.load(order) == 1).then_some("answered")
//!     }
//!     fn peer_cpu(&self) -> u32 { 0 }
//!     fn parked(&self) -> &AtomicU32 { &self.parked }
//!     fn sleep(&mut self, _since: Instant) { self.word.store(1, Ordering::SeqCst) }
//! }
//! let mut toy = Toy {
//!     word: AtomicU32::new(0),
//!     parked: AtomicU32::new(0),
//!     spin: AdaptiveSpin::new(Duration::ZERO),
//! };
//! assert_eq!(handoff::wait(&mut toy, false), "answered");
//! assert_eq!(toy.parked.load(Ordering::Relaxed), 0);
//! ```

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{self, Acquire, Relaxed, SeqCst};
use std::time::Instant;

use crate::spin::AdaptiveSpin;
use crate::sys;

/// How many spins pass between looks at the clock and the peer's CPU: a hot
/// answer arrives within the first few dozen spins, and a clock read would
/// be a good share of its cost.
const SPINS_PER_CHECK: u32 = 64;

/// One side of the handoff, as [`wait`] sees it while that side waits.
pub trait Side {
    /// What the wait ends with: the answer, or why there is none.
    type Outcome;

    /// This wait's spin budget, updated with how the wait went.
    fn spin(&mut self) -> &mut AdaptiveSpin;

    /// The answer, if the peer has published it (`order` for the load of
    /// the peer's sequence word).
    fn answer(&self, order: Ordering) -> Option<Self::Outcome>;

    /// The peer's CPU hint (see [`current_cpu_hint`]).
    fn peer_cpu(&self) -> u32;

    /// Called once per wait, when the peer is first seen on this CPU; this
    /// side yields from then on.
    fn peer_on_this_cpu(&mut self) {}

    /// The flag this side raises while it sleeps, for the peer to see.
    fn parked(&self) -> &AtomicU32;

    /// Blocks until the peer may have answered. `since` is when this wait
    /// began spinning (the start of its clock, for a deadline).
    fn sleep(&mut self, since: Instant);

    /// After a sleep, with the flag lowered and before looking for the
    /// answer: `Some` ends the wait without one (the peer died, say).
    fn woken(&mut self) -> Option<Self::Outcome> {
        None
    }

    /// After a sleep that brought no answer: `Some` gives up (a deadline).
    fn gave_up(&mut self) -> Option<Self::Outcome> {
        None
    }
}

/// Waits for the peer: spins for the budget, then sleeps until
/// [`Side::answer`] has one or the side ends the wait. `yielding` starts
/// the spin with `sched_yield` instead of `pause`, for a peer that is
/// likely on this CPU (a helper the host has just woken often is).
#[inline]
pub fn wait<S: Side>(side: &mut S, mut yielding: bool) -> S::Outcome {
    let budget = side.spin().budget();
    // Read lazily: a request that follows at once needs no clock.
    let mut start: Option<Instant> = None;
    let mut spins = 0u32;
    let since = loop {
        if let Some(answer) = side.answer(Acquire) {
            side.spin().answered_while_spinning();
            return answer;
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(SPINS_PER_CHECK) {
            let now = Instant::now();
            let since = *start.get_or_insert(now);
            if now - since >= budget {
                break since;
            }
            // A peer on this same CPU cannot answer while this thread spins.
            if !yielding && shares_cpu(side.peer_cpu()) {
                yielding = true;
                side.peer_on_this_cpu();
            }
        }
        if yielding {
            sys::sched_yield();
        } else {
            std::hint::spin_loop();
        }
    };
    side.spin().slept();
    loop {
        side.parked().store(1, SeqCst);
        if let Some(answer) = side.answer(SeqCst) {
            side.parked().store(0, Relaxed);
            return answer;
        }
        side.sleep(since);
        side.parked().store(0, Relaxed);
        if let Some(outcome) = side.woken() {
            return outcome;
        }
        if let Some(answer) = side.answer(Acquire) {
            return answer;
        }
        if let Some(outcome) = side.gave_up() {
            return outcome;
        }
    }
}

/// Publishes `seq` in this side's sequence word and says whether the peer
/// is parked and needs a wake-up: the publishing half of the Dekker pair
/// that [`wait`] is the other half of.
#[inline]
pub fn publish(word: &AtomicU32, seq: u32, peer_parked: &AtomicU32) -> bool {
    word.store(seq, SeqCst);
    peer_parked.load(SeqCst) != 0
}

/// The CPU the caller runs on, plus one, for the `*_cpu` hints (0 if unknown).
/// Cheap: glibc answers from its restartable-sequence area, without a syscall.
pub fn current_cpu_hint() -> u32 {
    sys::current_cpu().map_or(0, |cpu| cpu + 1)
}

/// Whether a peer's CPU hint says it runs on the caller's CPU.
pub fn shares_cpu(peer: u32) -> bool {
    peer != 0 && peer == current_cpu_hint()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// A helper-like side: waits for `word` to change from `last`, sleeping
    /// on the futex.
    struct Futex<'a> {
        word: &'a AtomicU32,
        parked: &'a AtomicU32,
        last: u32,
        spin: AdaptiveSpin,
        sleeps: u32,
    }

    impl Side for Futex<'_> {
        type Outcome = u32;
        fn spin(&mut self) -> &mut AdaptiveSpin {
            &mut self.spin
        }
        fn answer(&self, order: Ordering) -> Option<u32> {
            let seq = self.word.load(order);
            (seq != self.last).then_some(seq)
        }
        fn peer_cpu(&self) -> u32 {
            0
        }
        fn parked(&self) -> &AtomicU32 {
            self.parked
        }
        fn sleep(&mut self, _since: Instant) {
            self.sleeps += 1;
            sys::futex_wait(self.word, self.last);
        }
    }

    #[test]
    fn a_sleeping_waiter_is_woken_by_a_publish() {
        let shared = Arc::new([AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)]);
        let peer = Arc::clone(&shared);
        let waiter = std::thread::spawn(move || {
            let [word, parked, _] = &*peer;
            let mut side = Futex {
                word,
                parked,
                last: 0,
                spin: AdaptiveSpin::new(Duration::ZERO),
                sleeps: 0,
            };
            (wait(&mut side, false), side.sleeps, side.spin.budget())
        });
        let [word, parked, no_one] = &*shared;
        while parked.load(SeqCst) == 0 {
            std::thread::yield_now();
        }
        if publish(word, 7, parked) {
            sys::futex_wake(word);
        }
        let (seq, sleeps, budget) = waiter.join().unwrap();
        assert_eq!((seq, budget), (7, Duration::ZERO));
        assert!(sleeps >= 1);
        assert!(!publish(word, 8, no_one));
    }

    #[test]
    fn an_answer_already_in_ends_the_wait_while_spinning() {
        let (word, parked) = (AtomicU32::new(3), AtomicU32::new(0));
        let mut side = Futex {
            word: &word,
            parked: &parked,
            last: 2,
            spin: AdaptiveSpin::new(Duration::from_micros(10)),
            sleeps: 0,
        };
        side.spin.slept();
        assert_eq!(wait(&mut side, false), 3);
        assert_eq!(side.sleeps, 0);
        // Answered while spinning: the budget grew back.
        assert_eq!(side.spin.budget(), Duration::from_micros(10));
    }

    #[test]
    fn the_cpu_hint_is_one_based() {
        let hint = current_cpu_hint();
        assert_eq!(hint, sys::current_cpu().map_or(0, |c| c + 1));
        assert!(!shares_cpu(0));
    }
}
