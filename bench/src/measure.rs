//! Timing loops: per-call and per-block samples, interleaved rounds, a
//! histogram for runs with too many samples to keep, and medians and p99s.

use std::time::{Duration, Instant};

use crate::plan::{Plan, BLOCK};
use crate::report::Report;

pub const PER_CALL: &str = "per call (Instant pair)";
pub const PER_BLOCK: &str = "block of 1,000 calls, time per call";

/// The least warm-up before each per-call measurement: the bridge's spin
/// budgets adapt over many calls, and a helper that was idle may take
/// thousands of calls to spin again (the `bridge_burst_after_idle` row).
const MIN_WARM: Duration = Duration::from_millis(20);

/// The `timer` row: what an `Instant` pair costs alone, which every per-call
/// figure includes.
pub fn timer(r: &mut Report, plan: &Plan) {
    r.timed(
        "timer",
        "timer",
        None,
        PER_CALL,
        "Instant::now() pair alone",
        per_call(plan.warm, plan.calls, || {}),
    );
}

/// Median, p99 and count of `samples`.
pub fn summarize(mut samples: Vec<f64>) -> (f64, f64, usize) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN, 0);
    }
    samples.sort_unstable_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), samples.len())
}

/// Nanoseconds since `t`, as a sample.
pub fn ns_since(t: Instant) -> f64 {
    t.elapsed().as_nanos() as f64
}

/// Times each of `n` calls with an `Instant` pair, after at least `warm`
/// untimed ones and [`MIN_WARM`].
pub fn per_call(warm: usize, n: usize, mut f: impl FnMut()) -> Vec<f64> {
    let t = Instant::now();
    let mut done = 0;
    while done < warm || t.elapsed() < MIN_WARM {
        f();
        done += 1;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        samples.push(ns_since(t));
    }
    samples
}

/// Times `blocks` blocks of [`BLOCK`] calls; each sample is a block's time per call.
pub fn per_block(blocks: usize, mut f: impl FnMut()) -> Vec<f64> {
    for _ in 0..BLOCK {
        f();
    }
    let mut samples = Vec::with_capacity(blocks);
    for _ in 0..blocks {
        samples.push(block(&mut f));
    }
    samples
}

/// The time per call of [`BLOCK`] back-to-back calls of `f`.
pub fn block(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..BLOCK {
        f();
    }
    ns_since(t) / BLOCK as f64
}

/// Latencies in buckets about 1 % wide, for measurements with too many
/// samples to keep.
pub struct Hist {
    counts: Vec<u64>,
    pub total: u64,
}

impl Hist {
    /// Bucket width in ln(ns): 1 %.
    const STEP: f64 = 0.01;

    pub fn new() -> Hist {
        // e^(2300 x 0.01) ns is about 10 s.
        Hist {
            counts: vec![0; 2300],
            total: 0,
        }
    }

    pub fn add(&mut self, ns: u64) {
        let i = ((ns.max(1) as f64).ln() / Self::STEP) as usize;
        let last = self.counts.len() - 1;
        self.counts[i.min(last)] += 1;
        self.total += 1;
    }

    pub fn quantile(&self, q: f64) -> f64 {
        if self.total == 0 {
            return f64::NAN;
        }
        let rank = ((self.total - 1) as f64 * q).round() as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen > rank {
                return ((i as f64 + 0.5) * Self::STEP).exp();
            }
        }
        f64::NAN
    }
}

/// One of several measurements taken in interleaved rounds.
pub struct Measure<'a> {
    pub name: String,
    group: String,
    pub mech: &'static str,
    pub what: String,
    f: Box<dyn FnMut() + 'a>,
    pub calls: Vec<f64>,
    blocks: Vec<f64>,
}

impl<'a> Measure<'a> {
    pub fn new(
        name: &str,
        group: &str,
        mech: &'static str,
        what: &str,
        f: impl FnMut() + 'a,
    ) -> Measure<'a> {
        Measure {
            name: name.into(),
            group: group.into(),
            mech,
            what: what.into(),
            f: Box::new(f),
            calls: Vec::new(),
            blocks: Vec::new(),
        }
    }

    /// Adds its per-call row, and its block row if it was block-timed.
    pub fn report(self, r: &mut Report) {
        let mech = Some(self.mech);
        r.timed(
            &self.name,
            &format!("{}/call", self.group),
            mech,
            PER_CALL,
            &self.what,
            self.calls,
        );
        if !self.blocks.is_empty() {
            r.timed(
                &format!("{}/blk", self.name),
                &format!("{}/block", self.group),
                mech,
                PER_BLOCK,
                &self.what,
                self.blocks,
            );
        }
    }
}

/// Takes `calls` per-call samples and `blocks` block samples of each
/// measurement, spread over `rounds` rounds that visit them all in turn.
pub fn run_rounds(list: &mut [Measure], rounds: usize, calls: usize, blocks: usize, warm: usize) {
    let rounds = rounds.max(1);
    let (calls, blocks) = (calls.div_ceil(rounds), blocks.div_ceil(rounds));
    for _ in 0..rounds {
        for m in list.iter_mut() {
            m.calls.extend(per_call(warm, calls, &mut m.f));
            if blocks > 0 {
                m.blocks.extend(per_block(blocks, &mut m.f));
            }
        }
    }
}

/// Ends the run (by a panic the guards unwind through) if a bridged call failed.
pub fn ok(r: ffb_loader::Result<()>) {
    if let Err(e) = r {
        panic!("a bridged call failed during the benchmark: {e}");
    }
}

/// Ends the run if a round trip of the `what` baseline failed.
pub fn io_ok(what: &str, r: std::io::Result<()>) {
    if let Err(e) = r {
        panic!("the {what} baseline failed during the benchmark: {e}");
    }
}
