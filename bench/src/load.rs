//! Calls under load: a CPU hog on every core (this binary re-executed with
//! `--hog`), while bridged and futex calls take turns in windows of equal
//! wall time, so that both see the same scheduler.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::baselines::Baseline;
use crate::children::{child_command, Child};
use crate::fixture::Hot;
use crate::measure::{io_ok, ok, Hist};
use crate::plan::{Plan, LOAD_WINDOW};
use crate::procfs::{clock_tick, cpu_ticks};
use crate::progress;
use crate::report::{Report, Row, Unit};

/// CPU hogs, killed and reaped when dropped.
struct Hogs(Vec<Child>);

impl Hogs {
    fn start(count: usize, lib: &Path) -> Result<Hogs, String> {
        let mut hogs = Hogs(Vec::with_capacity(count));
        for _ in 0..count {
            let mut cmd: Command = child_command(lib)?;
            cmd.arg("--hog").stdin(Stdio::null()).stdout(Stdio::null());
            let child = Child::spawn(&mut cmd).map_err(|e| format!("starting a CPU hog: {e}"))?;
            hogs.0.push(child);
        }
        Ok(hogs)
    }

    /// utime + stime of all the hogs, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        self.0
            .iter()
            .filter_map(|c| cpu_ticks(c.id() as i32).ok())
            .sum()
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        // All die at once; dropping each then reaps it.
        for c in &mut self.0 {
            c.kill();
        }
    }
}

/// The `--hog` child: burns a CPU until killed.
pub fn hog() -> ! {
    let mut x = 1u64;
    loop {
        for _ in 0..1_000_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
}

/// Bridged null calls and futex round trips with a hog on every core;
/// latencies go to histograms (the bridge may make millions of calls).
pub fn measure(
    r: &mut Report,
    plan: &Plan,
    hot: &Hot,
    futex: &mut Baseline,
    lib: &Path,
) -> Result<(), String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    progress::step(&format!("under load ({cpus} hogs)"));
    let hogs = Hogs::start(cpus, lib)?;
    std::thread::sleep(Duration::from_millis(200));
    let nop = hot.fns.nop;
    let (bridge, out) = &mut *hot.borrow();
    let (mut b_load, mut f_load) = (Hist::new(), Hist::new());
    let hog_ticks = hogs.cpu_ticks();
    let t0 = Instant::now();
    // Alternate windows of equal wall time, so both mechanisms see the
    // same scheduler.
    while t0.elapsed() < plan.load_budget {
        window(&mut b_load, || ok(bridge.call_into(nop, &[], out)));
        window(&mut f_load, || io_ok("futex", futex.round_trip(&[])));
    }
    let wall = t0.elapsed().as_secs_f64();
    let share = (hogs.cpu_ticks() - hog_ticks) as f64 / clock_tick() / (wall * cpus as f64);
    let what = format!(
        "with {cpus} CPU-bound processes (one per core; they got {:.0} % of the CPUs)",
        share * 100.0
    );
    let method = format!(
        "per call, alternating {} ms windows, 1 % histogram",
        LOAD_WINDOW.as_millis()
    );
    let bridged = format!("bridged null call {what}");
    r.rows
        .push(row("bridge_null_load", "bridge", b_load, bridged, &method));
    let futexed = format!("futex round trip {what}");
    r.rows
        .push(row("futex_null_load", "futex", f_load, futexed, &method));
    Ok(())
}

/// One mechanism's turn: 10 untimed calls, then calls timed for [`LOAD_WINDOW`].
fn window(hist: &mut Hist, mut call: impl FnMut()) {
    for _ in 0..10 {
        call();
    }
    let window = Instant::now();
    while window.elapsed() < LOAD_WINDOW {
        let t = Instant::now();
        call();
        hist.add(t.elapsed().as_nanos() as u64);
    }
}

fn row(name: &str, mech: &'static str, hist: Hist, what: String, method: &str) -> Row {
    Row {
        name: name.into(),
        group: "load".into(),
        mech: Some(mech),
        what,
        method: method.into(),
        unit: Unit::Ns,
        median: hist.quantile(0.5),
        p99: Some(hist.quantile(0.99)),
        samples: hist.total as usize,
        rate: None,
        main: true,
    }
}
