//! The payload sweep: every mechanism carries the payload both ways, at each
//! size of [`SWEEP`], in interleaved rounds; and the copy floor, two plain
//! memcpy of 1 MiB.

use std::hint::black_box as bb;

use ffb_loader::Value;

use crate::baselines::{Baselines, InProcess};
use crate::fixture::Hot;
use crate::format::size_label;
use crate::measure::{io_ok, per_call, run_rounds, Measure, PER_CALL};
use crate::plan::{Plan, MAX_PAYLOAD, MIB, SWEEP};
use crate::progress;
use crate::report::{bytes_per_s, Report};

pub fn payloads(
    r: &mut Report,
    plan: &Plan,
    inproc: &InProcess,
    hot: &Hot,
    baselines: &mut Baselines,
) {
    // The in-process call's buffers, as large as the largest payload.
    let mut payload_in = vec![0u8; MAX_PAYLOAD];
    let mut payload_out = vec![0u8; MAX_PAYLOAD];
    for &size in &SWEEP {
        let label = size_label(size);
        progress::step(&format!("payload sweep, {label}"));
        let samples = plan.sweep_samples(size);
        let warm = (samples / plan.rounds / 5).clamp(3, 100);
        let payload = vec![0x5au8; size];
        let bytes_args = [Value::Bytes(payload.clone())];
        let payload = &payload;
        let (pin, pout) = (&mut payload_in, &mut payload_out);
        let mut list = vec![
            Measure::new(
                "in_process",
                "",
                "in-process",
                "copied in, ffb_nop_bytes called directly, copied back out",
                move || {
                    pin[..size].copy_from_slice(bb(payload));
                    inproc.nop_bytes(pin.as_mut_ptr());
                    pout[..size].copy_from_slice(&pin[..size]);
                    bb(&pout);
                },
            ),
            Measure::new(
                "bridge",
                "",
                "bridge",
                "ffb_nop_bytes(bytes) through the bridge: copied in and back out",
                || hot.call(hot.fns.bytes, &bytes_args),
            ),
        ];
        for b in baselines.carriers() {
            let mode = b.mode();
            let mech = mode.name();
            list.push(Measure::new(
                mech,
                "",
                mech,
                mode.payload_what(),
                move || io_ok(mech, b.round_trip(payload)),
            ));
        }
        run_rounds(&mut list, plan.rounds, samples, 0, warm);
        for m in list {
            let row = r.timed(
                &format!("{}_bytes_{label}", m.name),
                &format!("bytes/{label}"),
                Some(m.mech),
                PER_CALL,
                &format!("{label} payload: {}", m.what),
                m.calls,
            );
            row.rate = Some((bytes_per_s(2 * size, row.median), "B/s"));
            row.main = m.mech == "bridge" && size == MIB;
        }
    }
}

/// Two 1 MiB memcpy: the floor of carrying 1 MiB in and back out.
pub fn memcpy_floor(r: &mut Report, plan: &Plan) {
    let src = vec![0x5au8; MIB];
    let mut dst = vec![0u8; MIB];
    let samples = plan.sweep_samples(MIB);
    let row = r.timed(
        "memcpy_2x1MiB",
        "memcpy_2x1MiB",
        None,
        PER_CALL,
        "two 1 MiB memcpy (the copy-in/copy-out floor)",
        per_call(samples / 5, samples, || {
            dst.copy_from_slice(bb(&src));
            dst.copy_from_slice(bb(&src));
            bb(&dst);
        }),
    );
    row.rate = Some((bytes_per_s(2 * MIB, row.median), "B/s"));
}
