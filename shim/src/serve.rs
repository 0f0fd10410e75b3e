//! The serve loop: wait for a request in the arena, run it, answer.

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{self, Relaxed, Release};
use std::time::{Duration, Instant};

use ffb_contract::fds;
use ffb_contract::handoff::{self, current_cpu_hint, Side};
use ffb_contract::spin::AdaptiveSpin;
use ffb_contract::sys::{futex_wait, write_all};
use ffb_contract::wire::{Control, Op, Status, CONTROL_SIZE, MAX_WIRE_ARGS};

use crate::arena::Arena;
use crate::ffi::{ArgSlots, Function};

/// What one request comes to: the status, the return word, and a message.
type Answer = (Status, u64, Option<String>);

fn bad_request(why: &str) -> Answer {
    (Status::BadRequest, 0, Some(why.to_string()))
}

/// A loaded library and its declared functions, serving through the arena.
pub struct Server {
    arena: Arena,
    library: libloading::Library,
    functions: Vec<Function>,
    slots: Box<ArgSlots>,
    spin: AdaptiveSpin,
}

impl Server {
    /// A server with no functions declared yet.
    pub fn new(arena: Arena, library: libloading::Library, spin_us: u32) -> Self {
        Self {
            arena,
            library,
            functions: Vec::new(),
            slots: ArgSlots::new(),
            spin: AdaptiveSpin::new(Duration::from_micros(spin_us.into())),
        }
    }

    /// Declares one more function and returns its index.
    pub fn declare(&mut self, text: &str) -> Result<u32, (Status, String)> {
        self.functions.push(Function::resolve(&self.library, text)?);
        Ok((self.functions.len() - 1) as u32)
    }

    /// Answers requests until the helper is killed.
    pub fn serve(mut self) -> ! {
        // The host may post its first request before this loop starts; its
        // sequence numbers start at 1, so 0 is "nothing answered yet".
        let mut last = 0;
        loop {
            let ctl = self.arena.control();
            let seq = handoff::wait(
                &mut NextRequest {
                    ctl,
                    last,
                    spin: &mut self.spin,
                },
                false,
            );
            // Off the line the host spins on, so this costs it nothing.
            ctl.progress.taken.store(seq, Relaxed);
            let (status, ret, message) = match Op::from_u32(ctl.host.op.load(Relaxed)) {
                Some(Op::Call) => self.call(),
                Some(Op::Declare) => self.declare_from_arena(),
                Some(Op::Batch) => self.batch(),
                Some(Op::Fetch) => {
                    crate::fetch::serve(&self.arena, &self.functions, &mut self.slots)
                }
                None => bad_request("unknown op"),
            };
            let message_len = message.map_or(0, |text| self.arena.write_message(&text));
            ctl.helper.message_len.store(message_len, Relaxed);
            ctl.helper.ret.store(ret, Relaxed);
            // With the rest of the answer: an early store to this line would
            // pull it away from the spinning host once more per call.
            ctl.helper.helper_cpu.store(current_cpu_hint(), Relaxed);
            ctl.helper.status.store(status as u32, Relaxed);
            if handoff::publish(&ctl.helper.resp_seq, seq, &ctl.host.host_parked) {
                let _ = write_all(fds::WAKE, &1u64.to_ne_bytes());
            }
            last = seq;
        }
    }

    fn call(&mut self) -> Answer {
        let ctl = self.arena.control();
        let index = ctl.host.func.load(Relaxed) as usize;
        let nargs = ctl.host.nargs.load(Relaxed) as usize;
        match self.invoke(index, nargs, |i| ctl.args[i].load(Relaxed)) {
            Ok(ret) => (Status::Ok, ret, None),
            Err(why) => (Status::BadRequest, 0, Some(why)),
        }
    }

    /// Runs the calls of a batch in order. A call that kills the helper ends
    /// the batch; `completed` tells the host how far it got.
    fn batch(&mut self) -> Answer {
        let ctl = self.arena.control();
        let count = ctl.host.nargs.load(Relaxed) as usize;
        let results = ctl.args[0].load(Relaxed) as usize;
        ctl.progress.completed.store(0, Relaxed);
        if !self.arena.fits(results, count.saturating_mul(8)) {
            return bad_request("batch results out of range");
        }
        let arena = self.arena;
        let mut record = CONTROL_SIZE;
        for n in 0..count {
            let Some(header) = arena.read_word(record) else {
                return bad_request("batch record out of range");
            };
            let (index, nargs) = ((header & 0xffff_ffff) as usize, (header >> 32) as usize);
            let words = record + 8;
            if nargs > MAX_WIRE_ARGS || !arena.fits(words, nargs * 8) {
                return bad_request("batch record out of range");
            }
            // Every word was checked to fit just above.
            let word = |i: usize| arena.read_word(words + 8 * i).unwrap_or_default();
            match self.invoke(index, nargs, word) {
                Ok(ret) => {
                    // Checked to fit before the first call.
                    arena.write_word(results + 8 * n, ret);
                }
                Err(why) => return (Status::BadRequest, 0, Some(why)),
            }
            ctl.progress.completed.store(n as u32 + 1, Release);
            record = words + 8 * nargs;
        }
        (Status::Ok, count as u64, None)
    }

    /// Calls function `index` with `nargs` argument words from `word(i)`.
    fn invoke(
        &mut self,
        index: usize,
        nargs: usize,
        word: impl Fn(usize) -> u64,
    ) -> Result<u64, String> {
        let Some(function) = self.functions.get(index) else {
            return Err(format!("no function {index}"));
        };
        self.slots.call(function, &self.arena, nargs, word)
    }

    fn declare_from_arena(&mut self) -> Answer {
        let len = self.arena.control().args[0].load(Relaxed) as usize;
        let Some(bytes) = self.arena.copy_out(CONTROL_SIZE, len) else {
            return bad_request("declaration too long");
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return (
                Status::BadSignature,
                0,
                Some("signature is not UTF-8".into()),
            );
        };
        match self.declare(&text) {
            Ok(index) => (Status::Ok, index.into(), None),
            Err((status, message)) => (status, 0, Some(message)),
        }
    }
}

/// The helper waiting for the host's next request: spinning on `req_seq`,
/// then asleep on it as a futex.
struct NextRequest<'a> {
    ctl: &'static Control,
    last: u32,
    spin: &'a mut AdaptiveSpin,
}

impl Side for NextRequest<'_> {
    type Outcome = u32;

    fn spin(&mut self) -> &mut AdaptiveSpin {
        self.spin
    }

    fn answer(&self, order: Ordering) -> Option<u32> {
        let seq = self.ctl.host.req_seq.load(order);
        (seq != self.last).then_some(seq)
    }

    fn peer_cpu(&self) -> u32 {
        self.ctl.host.host_cpu.load(Relaxed)
    }

    fn parked(&self) -> &AtomicU32 {
        &self.ctl.helper.helper_parked
    }

    fn sleep(&mut self, _since: Instant) {
        futex_wait(&self.ctl.host.req_seq, self.last);
    }
}
