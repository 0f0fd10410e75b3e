//! Zero copy: fill a 16 MiB shared buffer and pass it by reference, beside
//! one plain memcpy of the same size.

use std::hint::black_box as bb;
use std::time::Instant;

use ffb_loader::Value;

use crate::fixture::{self, Hot};
use crate::measure::{ns_since, ok, per_call, PER_CALL};
use crate::plan::{Plan, SHARED_ARENA, SHARED_LEN};
use crate::progress;
use crate::report::{bytes_per_s, Report};

/// Uses a bridge of its own (with an arena that holds the buffer) and the
/// main bridge's output.
pub fn measure(r: &mut Report, plan: &Plan, lib: &str, hot: &Hot) -> Result<(), String> {
    progress::step("zero copy");
    let mut zc = fixture::load(lib, SHARED_ARENA)?;
    let f = fixture::functions(&zc).bytes;
    let (_, out) = &mut *hot.borrow();
    let src = vec![0x5au8; SHARED_LEN];
    let shared_args = [Value::Shared(SHARED_LEN)];
    // Each sample is the write plus the call; the call alone is kept too.
    let mut call_only = Vec::with_capacity(plan.zero_copy);
    let mut timed = false;
    let samples = per_call(3, plan.zero_copy, || {
        zc.shared_buffer(SHARED_LEN)
            .unwrap_or_else(|e| panic!("shared_buffer: {e}"))
            .write(bb(&src));
        let t = Instant::now();
        ok(zc.call_into(f, &shared_args, out));
        if timed {
            call_only.push(ns_since(t));
        }
        timed = true;
    });
    // The warm-up calls are not samples.
    let extra = call_only.len().saturating_sub(samples.len());
    call_only.drain(..extra);
    let row = r.timed(
        "bridge_shared_16MiB",
        "shared",
        None,
        PER_CALL,
        "write 16 MiB into a shared_buffer, then ffb_nop_bytes(Value::Shared)",
        samples,
    );
    row.rate = Some((bytes_per_s(SHARED_LEN, row.median), "B/s"));
    r.timed(
        "bridge_shared_call",
        "shared_call",
        None,
        PER_CALL,
        "the ffb_nop_bytes(Value::Shared) call alone, after each 16 MiB write (a gap of ~0.5 ms)",
        call_only,
    );
    let mut dst = vec![0u8; SHARED_LEN];
    let row = r.timed(
        "memcpy_16MiB",
        "memcpy16",
        None,
        PER_CALL,
        "one plain 16 MiB memcpy",
        per_call(3, plan.zero_copy, || {
            dst.copy_from_slice(bb(&src));
            bb(&dst);
        }),
    );
    row.rate = Some((bytes_per_s(SHARED_LEN, row.median), "B/s"));
    Ok(())
}
