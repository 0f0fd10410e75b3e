//! Batches: several calls in one round trip ([`Bridge::call_batch`]), and
//! what a batch that failed part-way reports ([`BatchFailure`]).
//!
//! The arena holds, after the control block, one record per call (its
//! function and argument count, then its argument words), then every call's
//! buffers, then one result word per call. The helper runs the calls in order,
//! counts the ones that completed in the control block, and stops at the
//! first failure.

use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;

use ffb_abi::signature::RetType;
use ffb_contract::wire::{align_up, Op, Status, CONTROL_SIZE};

use super::layout::too_big;
use super::{call_effects, Bridge, CallOutput, FunctionId};
use crate::error::{Error, ErrorKind};
use crate::value::Value;

/// A failed batch: what completed before the failure, and the failure.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchFailure {
    /// Outputs of the calls that completed, in order.
    pub completed: Vec<CallOutput>,
    /// Index of the call that failed; calls after it did not run.
    pub index: usize,
    /// Why it failed.
    pub error: Error,
}

impl BatchFailure {
    /// A batch refused before anything ran: call `index` cannot be sent.
    pub fn before_sending(index: usize, error: Error) -> Self {
        BatchFailure {
            completed: Vec::new(),
            index,
            error,
        }
    }
}

impl std::fmt::Display for BatchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call {} of the batch failed: {}", self.index, self.error)
    }
}

impl std::error::Error for BatchFailure {}

/// Where a batch was laid out: each call's function and its range of the
/// bridge's layout, and the offset of the result words.
struct BatchLayout {
    calls: Vec<(FunctionId, Range<usize>)>,
    results_at: usize,
}

impl Bridge {
    /// Sends several calls at once; the helper runs them in order and stops at
    /// the first failure. Each call is still a full fence, and the batch as a
    /// whole is one round trip.
    ///
    /// Every argument of every call is checked before anything is sent, in
    /// order and with the effect of the calls before it: a token that a close
    /// function earlier in the batch closes is already stale for the calls
    /// after it. On a failure, [`BatchFailure`] holds the outputs of the calls that completed,
    /// the index of the one that failed, and why; later calls did not run.
    ///
    /// ```
    /// use ffb_loader::{Bridge, BridgeMode, ErrorKind, Value};
    ///
    /// let mut z = Bridge::builder("libz.so.1")
    /// #   .shim(std::env::var_os("FFB_SHIM").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/ffb-shim").into()))
    ///     .bridge_mode(BridgeMode::Enabled)
    ///     .declare("crc32(u64, bytes, u32) -> u64")
    ///     .declare("adler32(u64, bytes, u32) -> u64")
    ///     .load()?;
    /// let crc32 = z.function("crc32").unwrap();
    /// let adler32 = z.function("adler32").unwrap();
    /// let hello = [Value::U64(0), Value::bytes("hello"), Value::U32(5)];
    /// let adler_hello = [Value::U64(1), Value::bytes("hello"), Value::U32(5)];
    ///
    /// let outs = z.call_batch(&[(crc32, &hello), (adler32, &adler_hello)]).unwrap();
    /// assert_eq!(outs[0].ret, Value::U64(0x3610a686));
    /// assert_eq!(outs[1].ret, Value::U64(0x062c0215));
    ///
    /// // A bad argument anywhere stops the batch before anything runs.
    /// let bad = [Value::U64(0), Value::U64(7), Value::U32(5)];
    /// let failure = z.call_batch(&[(crc32, &hello), (crc32, &bad)]).unwrap_err();
    /// assert_eq!((failure.index, failure.completed.len()), (1, 0));
    /// assert_eq!(failure.error.kind, ErrorKind::BadArgument);
    /// # Ok::<(), ffb_loader::Error>(())
    /// ```
    pub fn call_batch(
        &mut self,
        calls: &[(FunctionId, &[Value])],
    ) -> std::result::Result<Vec<CallOutput>, BatchFailure> {
        let fail = BatchFailure::before_sending;
        for (i, (f, args)) in calls.iter().enumerate() {
            self.check_call(*f, args).map_err(|e| fail(i, e))?;
        }
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_helper().map_err(|e| fail(0, e))?;
        self.handles.begin_batch();
        let laid = self.lay_out_batch(calls);
        self.handles.end_batch();
        let laid = match laid {
            Ok(laid) => laid,
            Err(failure) => {
                self.unpin_unsent(0..self.layout.len());
                return Err(failure);
            }
        };
        let (completed, failure) = self.send_batch(calls.len());
        self.collect_batch(&laid, completed, failure)
    }

    /// Writes every call's record and arguments to the arena. Nothing is sent
    /// yet, so a failure here leaves the helper idle.
    fn lay_out_batch(
        &mut self,
        calls: &[(FunctionId, &[Value])],
    ) -> std::result::Result<BatchLayout, BatchFailure> {
        let fail = BatchFailure::before_sending;
        let mut laid = Vec::with_capacity(calls.len());
        let (functions, layout, mut ctx) = self.start_layout();
        let arena = ctx.arena;
        let limit = ctx.limit();
        // Records first (func, nargs, words), then buffers, then one result
        // word per call.
        let records_len: usize = calls
            .iter()
            .map(|(f, _)| 8 + 8 * functions[f.index].sig.args.len())
            .sum();
        let mut record = CONTROL_SIZE;
        let mut cursor = align_up(CONTROL_SIZE + records_len)
            .filter(|&end| end <= limit)
            .ok_or_else(|| fail(0, too_big(0, limit)))?;
        for (i, (f, args)) in calls.iter().enumerate() {
            let declared = &functions[f.index];
            let sig = &declared.sig;
            let header = (f.index as u64) | (sig.args.len() as u64) << 32;
            arena.write(record, &header.to_ne_bytes());
            let words_at = record + 8;
            let start = layout.len();
            ctx.lay_out(declared, args, layout, &mut cursor, &mut |k, word| {
                arena.write(words_at + 8 * k, &word.to_ne_bytes())
            })
            .map_err(|e| fail(i, e))?;
            if let Some(arg) = declared.handles.closes {
                // The calls after this one must see its token closed.
                ctx.handles.doom(layout[start + arg].token());
            }
            laid.push((*f, start..layout.len()));
            record = words_at + 8 * sig.args.len();
        }
        let results_at = cursor;
        let limit = ctx.limit();
        if results_at + 8 * calls.len() > limit {
            return Err(fail(0, too_big(0, limit)));
        }
        arena.control().args[0].store(results_at as u64, Relaxed);
        Ok(BatchLayout {
            calls: laid,
            results_at,
        })
    }

    /// The round trip of a batch of `n` calls: how many completed, and the
    /// failure that stopped the rest, if any.
    fn send_batch(&mut self, n: usize) -> (usize, Option<Error>) {
        let timeout = self.timeout;
        let helper = self.helper.as_mut().expect("ensured");
        // The helper resets it too, but a helper that dies before it gets
        // there must not leave the previous batch's count standing.
        helper
            .arena()
            .control()
            .progress
            .completed
            .store(0, Relaxed);
        match helper.round_trip(Op::Batch, 0, n as u32, timeout) {
            Ok(r) if r.status == Status::Ok => (n, None),
            Ok(r) => (
                0,
                Some(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "the helper answered a batch with status {:?}; it was killed",
                        r.status
                    ),
                )),
            ),
            // Read once, and bounded by what was sent: how far the helper got
            // before it ended. Its arena is still mapped until it is dropped.
            Err(e) => (
                (helper.arena().control().progress.completed.load(Relaxed) as usize).min(n),
                Some(e),
            ),
        }
    }

    /// Settles calls that were sent but whose results are not decoded.
    fn settle_batch(&mut self, calls: &[(FunctionId, Range<usize>)]) {
        for (f, slots) in calls {
            self.settle(*f, slots.clone());
        }
    }

    /// Decodes the results and copies out the out-values of the `completed`
    /// calls, then reports the `failure`, if any, with what completed.
    fn collect_batch(
        &mut self,
        laid: &BatchLayout,
        completed: usize,
        failure: Option<Error>,
    ) -> std::result::Result<Vec<CallOutput>, BatchFailure> {
        let mut outputs = Vec::with_capacity(completed);
        let mut lost_string = false;
        // All result words in one copy (read once, like everything the helper wrote).
        let mut results = vec![0u8; 8 * completed];
        if let Some(helper) = self.helper.as_ref() {
            helper.arena().read_into(laid.results_at, &mut results);
        }
        // Calls that ran, or may have (the one that failed), closed their
        // tokens and keep their pins; calls after them never ran.
        let sent = (completed + usize::from(failure.is_some())).min(laid.calls.len());
        for (_, slots) in &laid.calls[sent..] {
            self.unpin_unsent(slots.clone());
        }
        for (i, (f, slots)) in laid.calls.iter().enumerate().take(completed) {
            let f = *f;
            let raw = u64::from_ne_bytes(results[8 * i..8 * i + 8].try_into().expect("8 bytes"));
            if failure.is_some() && raw != 0 && self.functions[f.index].sig.ret == RetType::CStr {
                // The string lived in the helper, which is gone.
                lost_string = true;
                self.settle_batch(&laid.calls[i..sent]);
                break;
            }
            // In order, as the helper ran them: a token this call closes is
            // gone before a pointer it returns is given a token.
            self.settle(f, slots.clone());
            let decoded = self.decode_ret(f, raw, slots.clone()).and_then(|ret| {
                let mut out = Vec::new();
                if !slots.is_empty() {
                    self.copy_out(slots.clone(), &mut out)?;
                }
                Ok((ret, out))
            });
            let (ret, out) = match decoded {
                Ok(v) => v,
                Err(error) => {
                    self.settle_batch(&laid.calls[i + 1..sent]);
                    let message = format!(
                        "{}; the calls after it in the batch ran, but their results are not reported",
                        error.message
                    );
                    return Err(BatchFailure {
                        completed: outputs,
                        index: i,
                        error: Error::new(error.kind, message),
                    });
                }
            };
            outputs.push(CallOutput {
                ret,
                out,
                effects: call_effects(),
            });
        }
        match failure {
            None => Ok(outputs),
            Some(error) => {
                if !lost_string {
                    self.settle_batch(&laid.calls[completed..sent]);
                }
                let index = outputs.len();
                let f = laid.calls.get(completed).map(|r| r.0);
                let mut error = self.failed(error, f);
                if lost_string {
                    error.message = format!(
                        "{}; call {completed} failed, and the string call {index} returned was lost with the helper",
                        error.message
                    );
                }
                Err(BatchFailure {
                    error,
                    completed: outputs,
                    index,
                })
            }
        }
    }
}
