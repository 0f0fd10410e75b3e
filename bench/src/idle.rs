//! What an idle helper costs: its CPU time while calls stream and while
//! idle, the first call after it idled (beside the futex baseline's), and
//! how soon back-to-back calls are fast again.

use std::time::Instant;

use crate::baselines::Baseline;
use crate::fixture::Hot;
use crate::measure::{block, io_ok, ns_since, ok, per_call};
use crate::plan::{Plan, IDLE_GAP};
use crate::procfs::{clock_tick, cpu_ticks, current_cpu, last_cpu};
use crate::progress;
use crate::report::{Report, Unit};

const STAT: &str = "/proc/<pid>/stat, 1 sample";

/// The helper's CPU time per call while calls stream, then while idle;
/// returns the helper's pid.
pub fn helper_cpu(r: &mut Report, plan: &Plan, hot: &Hot) -> Result<i32, String> {
    progress::step("helper CPU time");
    let nop = hot.fns.nop;
    let (bridge, out) = &mut *hot.borrow();
    let pid = bridge.helper_pid().ok_or("the bridge has no helper pid")?;
    let tick = clock_tick();
    per_call(10_000, 0, || ok(bridge.call_into(nop, &[], out)));
    let respawns = bridge.respawns();
    let c0 = cpu_ticks(pid)?;
    let t = Instant::now();
    let mut calls = 0usize;
    while t.elapsed() < plan.busy_cpu {
        for _ in 0..10_000 {
            ok(bridge.call_into(nop, &[], out));
        }
        calls += 10_000;
    }
    let c1 = cpu_ticks(pid)?;
    let busy_wall = t.elapsed().as_secs_f64();
    let t = Instant::now();
    std::thread::sleep(plan.idle_cpu);
    let c2 = cpu_ticks(pid)?;
    let idle_wall = t.elapsed().as_secs_f64();
    if bridge.respawns() != respawns || bridge.helper_pid() != Some(pid) {
        return Err("the helper was replaced while its CPU time was measured".into());
    }
    let busy_cpu = (c1 - c0) as f64 / tick;
    let idle_cpu = (c2 - c1) as f64 / tick;
    r.value(
        "helper_cpu_per_call",
        Unit::Ns,
        &format!("helper utime+stime ÷ calls over {calls} hot null calls ({busy_wall:.2} s)"),
        STAT,
        busy_cpu * 1e9 / calls as f64,
        calls,
    );
    r.value(
        "helper_busy_cpu",
        Unit::Percent,
        "helper CPU while those calls ran, % of one core",
        STAT,
        busy_cpu / busy_wall * 100.0,
        1,
    );
    r.value(
        "helper_idle_cpu",
        Unit::Percent,
        &format!(
            "helper CPU while idle for {idle_wall:.1} s after the calls, % of one core (resolution {:.1} %)",
            100.0 / tick / idle_wall
        ),
        STAT,
        idle_cpu / idle_wall * 100.0,
        1,
    );
    Ok(pid)
}

/// The first call after the helper (or the futex peer) was idle for 12 ms.
pub fn first_call(r: &mut Report, plan: &Plan, hot: &Hot, futex: &mut Baseline) {
    progress::step("first call after idle");
    let nop = hot.fns.nop;
    let (bridge, out) = &mut *hot.borrow();
    let (mut b_wake, mut f_wake) = (Vec::new(), Vec::new());
    for _ in 0..plan.wake_samples {
        std::thread::sleep(IDLE_GAP);
        let t = Instant::now();
        ok(bridge.call_into(nop, &[], out));
        b_wake.push(ns_since(t));
        std::thread::sleep(IDLE_GAP);
        let t = Instant::now();
        io_ok("futex", futex.round_trip(&[]));
        f_wake.push(ns_since(t));
    }
    let method = "per call, 12 ms idle before each";
    r.timed(
        "bridge_idle_wake",
        "idle_wake",
        Some("bridge"),
        method,
        "first bridged null call after the helper was idle for 12 ms",
        b_wake,
    );
    r.timed(
        "futex_idle_wake",
        "idle_wake",
        Some("futex"),
        method,
        "first futex round trip after 12 ms idle (interleaved with the row above)",
        f_wake,
    );
}

/// Back-to-back calls right after idling: how soon the helper spins again.
pub fn burst(r: &mut Report, plan: &Plan, hot: &Hot, pid: i32) {
    progress::step("calls right after idle");
    let nop = hot.fns.nop;
    let (bridge, out) = &mut *hot.borrow();
    let mut burst = Vec::with_capacity(plan.bursts);
    let mut shared_cpu = 0;
    for _ in 0..plan.bursts {
        std::thread::sleep(IDLE_GAP);
        ok(bridge.call_into(nop, &[], out));
        std::thread::sleep(IDLE_GAP);
        burst.push(block(|| ok(bridge.call_into(nop, &[], out))));
        if last_cpu(pid) == Some(current_cpu()) {
            shared_cpu += 1;
        }
    }
    r.timed(
        "bridge_burst_after_idle",
        "null/block",
        Some("bridge"),
        "first 1,000 calls after idle, time per call",
        &format!(
            "1,000 back-to-back null calls right after the helper idled twice for 12 ms (vs bridge_null/blk); host and helper ended on the same CPU in {shared_cpu} of {}",
            plan.bursts
        ),
        burst,
    );
}
