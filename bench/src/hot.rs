//! Hot calls: in-process, bridged and through every baseline helper, in
//! interleaved rounds so that noise from the rest of the machine falls on
//! all of them alike; then batches against the same calls one at a time.

use std::hint::black_box as bb;
use std::time::Instant;

use ffb_loader::{FunctionId, Value};

use crate::baselines::{Baselines, InProcess};
use crate::fixture::Hot;
use crate::measure::{io_ok, ns_since, ok, per_call, run_rounds, Measure};
use crate::plan::{Plan, BATCH, BLOCK};
use crate::progress;
use crate::report::Report;

/// Null, add and mix4 calls, in-process and bridged, and null round trips
/// through every baseline; each timed per call and in blocks.
pub fn calls(
    r: &mut Report,
    plan: &Plan,
    inproc: &InProcess,
    hot: &Hot,
    baselines: &mut Baselines,
) {
    let add_args = [Value::I64(40), Value::I64(2)];
    let mix_args = [
        Value::I32(1),
        Value::F64(2.0),
        Value::I64(3),
        Value::F32(4.0),
    ];
    let fns = &hot.fns;
    let mut list = vec![
        Measure::new(
            "in_process_null",
            "null",
            "in-process",
            "void f(void) called directly (libloading)",
            || inproc.nop(),
        ),
        Measure::new(
            "in_process_add",
            "add",
            "in-process",
            "i64 add(i64, i64) called directly",
            || {
                bb(inproc.add(bb(40), bb(2)));
            },
        ),
        Measure::new(
            "in_process_mix4",
            "mix4",
            "in-process",
            "f64 mix4(i32, f64, i64, f32) called directly",
            || {
                bb(inproc.mix4(bb(1), bb(2.0), bb(3), bb(4.0)));
            },
        ),
        Measure::new(
            "bridge_null",
            "null",
            "bridge",
            "void f(void) through the bridge (hot helper)",
            || hot.call(fns.nop, &[]),
        ),
        Measure::new(
            "bridge_add",
            "add",
            "bridge",
            "i64 add(i64, i64) through the bridge",
            || hot.call(fns.add, &add_args),
        ),
        Measure::new(
            "bridge_mix4",
            "mix4",
            "bridge",
            "f64 mix4(i32, f64, i64, f32) through the bridge",
            || hot.call(fns.mix, &mix_args),
        ),
    ];
    for b in baselines.all() {
        let mode = b.mode();
        let mech = mode.name();
        list.push(Measure::new(
            &format!("{mech}_null"),
            "null",
            mech,
            mode.what(),
            move || io_ok(mech, b.round_trip(&[])),
        ));
    }
    run_rounds(&mut list, plan.rounds, plan.calls, plan.blocks, plan.warm);
    for m in list {
        m.report(r);
    }
}

/// [`BATCH`] null calls in one `call_batch` against the same calls one at a
/// time, interleaved.
pub fn batches(r: &mut Report, plan: &Plan, hot: &Hot) -> Result<(), String> {
    progress::step("batches");
    per_call(BLOCK, 0, || hot.call(hot.fns.nop, &[]));
    let nop = hot.fns.nop;
    let (bridge, out) = &mut *hot.borrow();
    let batch: Vec<(FunctionId, &[Value])> = vec![(nop, &[][..]); BATCH];
    let (mut batched, mut single) = (Vec::new(), Vec::new());
    for k in 0..plan.batches + 3 {
        let t = Instant::now();
        if let Err(e) = bridge.call_batch(&batch) {
            return Err(format!("call_batch failed: {e}"));
        }
        let b = ns_since(t) / BATCH as f64;
        let t = Instant::now();
        for _ in 0..BATCH {
            ok(bridge.call_into(nop, &[], out));
        }
        let s = ns_since(t) / BATCH as f64;
        // The first three of each are warm-up.
        if k >= 3 {
            batched.push(b);
            single.push(s);
        }
    }
    let row = r.timed(
        "batch_1000",
        "batch",
        None,
        "per batch ÷ 1,000",
        "1,000 null calls in one call_batch, time per call",
        batched,
    );
    row.rate = Some((1e9 / row.median, "calls/s"));
    let row = r.timed(
        "single_1000",
        "single",
        None,
        "per 1,000 calls ÷ 1,000",
        "the same 1,000 null calls one at a time (call_into), time per call",
        single,
    );
    row.rate = Some((1e9 / row.median, "calls/s"));
    Ok(())
}
