//! The host's half of a call: post the request, wake the helper if it
//! sleeps, then wait for the answer with [`ffb_contract::handoff::wait`],
//! sleeping in `poll` on the wake eventfd, the pidfd and the listener.

use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{self, Acquire, Relaxed};
use std::time::{Duration, Instant};

use ffb_contract::handoff::{self, current_cpu_hint, Side};
use ffb_contract::spin::AdaptiveSpin;
use ffb_contract::sys::{futex_wake, poll_readable};
use ffb_contract::wire::{Op, Status};

use super::outcome::KillReason;
use super::{Helper, Response};
use crate::error::{Error, Result};

/// How long the host may spin while a woken helper gets going: about two
/// blocking wake-ups on this class of machine.
pub(super) const WAKE_SPIN: Duration = Duration::from_micros(150);

impl Helper {
    /// Sends one request and waits for its answer, the helper's death, or the deadline.
    /// The call's clock starts when the host first looks at it (a fast answer
    /// needs no clock at all); `timeout` runs from there.
    pub fn round_trip(
        &mut self,
        op: Op,
        func: u32,
        nargs: u32,
        timeout: Duration,
    ) -> Result<Response> {
        if let Some(e) = &self.ended {
            return Err(e.clone());
        }
        let ctl = self.arena.control();
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        // An answer the helper wrote early (to a request the extension forged
        // in the arena) must not pass for the answer to this one.
        ctl.helper.resp_seq.store(seq.wrapping_sub(1), Relaxed);
        ctl.host.op.store(op as u32, Relaxed);
        ctl.host.func.store(func, Relaxed);
        ctl.host.nargs.store(nargs, Relaxed);
        ctl.host.host_cpu.store(current_cpu_hint(), Relaxed);
        let woke_helper = handoff::publish(&ctl.host.req_seq, seq, &ctl.helper.helper_parked);
        if woke_helper {
            futex_wake(&ctl.host.req_seq);
        }
        let answered = handoff::wait(
            &mut Answer {
                helper: self,
                seq,
                timeout,
                woke_helper,
                deadline: None,
                ready: [false; 3],
            },
            // A woken helper is often placed on this very CPU, and a helper
            // that shares it cannot answer while this thread spins: then
            // yield instead.
            woke_helper,
        );
        if !answered {
            // Dead or being killed: reap it and say why it ended. Read once:
            // the helper's claim that it never took this request. It changes
            // only the words of the report: the kind, and the function the
            // audit line names (the call the host posted), stay the host's.
            let taken = self.arena.control().progress.taken.load(Relaxed);
            let death = self.reap();
            if taken == seq.wrapping_sub(1) && self.killed.is_none() {
                return Err(Error::new(
                    death.kind,
                    format!(
                        "the helper ended before it took this call ({}): the call did not run",
                        death.message
                    ),
                ));
            }
            return Err(death);
        }
        let ctl = self.arena.control();
        // The request must still be the one the host wrote: a changed request
        // means the extension rewrote it, and the answer may be to its forgery.
        let request_intact = ctl.host.req_seq.load(Relaxed) == seq
            && ctl.host.op.load(Relaxed) == op as u32
            && ctl.host.func.load(Relaxed) == func
            && ctl.host.nargs.load(Relaxed) == nargs;
        if !request_intact {
            return Err(
                self.protocol("the request in the arena was rewritten during the call".into())
            );
        }
        // Each field is read exactly once; the values are checked by the caller.
        let status_raw = ctl.helper.status.load(Acquire);
        let ret = ctl.helper.ret.load(Relaxed);
        let message_len = ctl.helper.message_len.load(Relaxed);
        let Some(status) = Status::from_u32(status_raw) else {
            return Err(self.protocol(format!("unknown status {status_raw}")));
        };
        if status == Status::BadRequest {
            let why = self.arena.message(message_len).unwrap_or_default();
            return Err(self.protocol(format!("the helper rejected the request: {why}")));
        }
        Ok(Response {
            status,
            ret,
            message_len,
        })
    }
}

/// The host waiting for the answer to request `seq`: true when it is in,
/// false when the helper is dead or being killed (then reap it).
struct Answer<'a> {
    helper: &'a mut Helper,
    seq: u32,
    timeout: Duration,
    /// Whether this request had to wake the helper.
    woke_helper: bool,
    /// Set at the first sleep: the clock starts with the spinning.
    deadline: Option<Instant>,
    /// What the last `poll` found: the eventfd, the pidfd, the listener.
    ready: [bool; 3],
}

impl Side for Answer<'_> {
    type Outcome = bool;

    fn spin(&mut self) -> &mut AdaptiveSpin {
        // A helper that was asleep needs a wake-up first: spinning through it
        // (when that has worked lately) saves a second blocking wake-up here.
        if self.woke_helper {
            &mut self.helper.wake_spin
        } else {
            &mut self.helper.spin
        }
    }

    fn answer(&self, order: Ordering) -> Option<bool> {
        (self.helper.arena.control().helper.resp_seq.load(order) == self.seq).then_some(true)
    }

    fn peer_cpu(&self) -> u32 {
        self.helper.arena.control().helper.helper_cpu.load(Relaxed)
    }

    fn peer_on_this_cpu(&mut self) {
        nudge_apart(self.helper.pid, &mut self.helper.last_nudge);
    }

    fn parked(&self) -> &AtomicU32 {
        &self.helper.arena.control().host.host_parked
    }

    fn sleep(&mut self, since: Instant) {
        let deadline = *self.deadline.get_or_insert(since + self.timeout);
        let helper = &*self.helper;
        self.ready = poll_readable(
            &[
                Some(helper.wake.as_raw_fd()),
                Some(helper.pidfd.as_raw_fd()),
                helper.listener.as_ref().map(|l| l.as_raw_fd()),
            ],
            Some(deadline),
        );
    }

    fn woken(&mut self) -> Option<bool> {
        let [wake, died, notified] = self.ready;
        if wake {
            let mut counter = [0u8; 8];
            // SAFETY: reads at most 8 bytes into the live 8-byte buffer.
            unsafe { libc::read(self.helper.wake.as_raw_fd(), counter.as_mut_ptr().cast(), 8) };
        }
        if notified {
            self.helper.answer_notifications();
        }
        (self.helper.killed.is_some() || died).then_some(false)
    }

    fn gave_up(&mut self) -> Option<bool> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.helper.kill(KillReason::Timeout);
            return Some(false);
        }
        None
    }
}

/// Moves the helper off this thread's CPU, at most every 50 ms: narrowing its
/// affinity migrates it at once, and restoring the affinity leaves it where
/// it went. A host and helper that share a CPU can only take turns; the
/// scheduler separates such a pair only slowly, since neither looks busy.
fn nudge_apart(pid: i32, last: &mut Option<Instant>) {
    if last.is_some_and(|t| t.elapsed() < Duration::from_millis(50)) {
        return;
    }
    *last = Some(Instant::now());
    let cpu = current_cpu_hint();
    if cpu == 0 {
        return;
    }
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: writes at most `size` bytes into the live `allowed`.
    if unsafe { libc::sched_getaffinity(pid, size, &mut allowed) } != 0 {
        return;
    }
    let mut elsewhere = allowed;
    // SAFETY: clears one bit of the live set (an index past the set's end
    // would panic, not write out of bounds).
    unsafe { libc::CPU_CLR((cpu - 1) as usize, &mut elsewhere) };
    // SAFETY: counts the bits of the live set.
    if unsafe { libc::CPU_COUNT(&elsewhere) } == 0 {
        return;
    }
    // SAFETY: reads `size` bytes of the live `elsewhere`.
    if unsafe { libc::sched_setaffinity(pid, size, &elsewhere) } == 0 {
        // SAFETY: reads `size` bytes of the live `allowed`.
        unsafe { libc::sched_setaffinity(pid, size, &allowed) };
    }
}
