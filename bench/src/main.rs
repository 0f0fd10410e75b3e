//! `ffb-bench`: what a call through the bridge costs, measured beside its
//! baselines in the same run: an in-process call (libloading), and
//! request/response helper processes over a unix socket, a pipe and a futex
//! handoff on shared memory. Run it through `scripts/bench.sh`.
//!
//! Per-call figures are medians (and p99s) of timings taken on the host with
//! an `Instant` pair around each call; the pair's own cost is the `timer` row.
//! Sub-microsecond calls are also timed in blocks of 1,000 (median over
//! blocks of the time per call), which removes the timer overhead; the targets
//! for the hot null call, add and mix4 are judged on those block figures.
//!
//! The machine is shared, so whatever is compared is measured interleaved:
//! hot calls and the payload sweep in rounds that visit every mechanism in
//! turn, the idle wake-ups and batches in alternating pairs, the loaded calls
//! in alternating windows of equal wall time.
//!
//! Every child process (baseline helpers, CPU hogs) is killed and reaped on
//! every path (errors, panics, SIGINT/SIGTERM/SIGHUP), and dies with this
//! process anyway (`PR_SET_PDEATHSIG`); the fork servers the bridges started
//! are shut down on the way out. Nothing here is asserted: timings belong in
//! benchmarks, not in tests.

use std::cell::RefCell;
use std::fs::File;
use std::hint::black_box as bb;
use std::io::IsTerminal;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use ffb_loader::{Bridge, BridgeBuilder, BridgeMode, CallOutput, FunctionId, Value, WORST_CASE};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "ffb-bench",
    about = "Measure ffb against in-process and IPC baselines"
)]
struct Args {
    /// The fixture library with ffb_nop, ffb_add_i64, ffb_mix4 and ffb_nop_bytes (scripts/bench.sh builds it).
    #[arg(long, value_name = "PATH")]
    lib: PathBuf,
    /// Calls per per-call measurement (blocks, sweeps and samples scale with it).
    #[arg(long, default_value_t = 100_000)]
    calls: usize,
    /// A short run (a tenth of the calls, fewer samples; under a minute).
    #[arg(long)]
    quick: bool,
    /// Also write every figure, target and verdict as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also draw median latency by payload size (log-log) as SVG to this file.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Also time loading this policy (a preset or a file) and starting a
    /// helper under it from a warm fork server; may be given more than once.
    #[arg(long, value_name = "FILE_OR_PRESET")]
    policy: Vec<String>,
    /// Internal: serve as a baseline helper (stream or futex).
    #[arg(long, hide = true, value_name = "MODE")]
    baseline_child: Option<String>,
    /// Internal: burn a CPU until killed.
    #[arg(long, hide = true)]
    hog: bool,
}

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// Calls per timed block for the block-timed (timer-free) figures.
const BLOCK: usize = 1000;
/// Calls in one batch, and in the one-at-a-time run it is compared with.
const BATCH: usize = 1000;
/// Payload sizes of the sweep.
const SWEEP: [usize; 6] = [64, KIB, 16 * KIB, 256 * KIB, MIB, 4 * MIB];
/// The largest payload a baseline carries.
const MAX_PAYLOAD: usize = 8 * MIB;
/// The zero-copy buffer, and the arena of the bridge that holds it.
const SHARED_LEN: usize = 16 * MIB;
const SHARED_ARENA: usize = 48 * MIB;
/// The arena of the main bridge (the sweep's 4 MiB fits with room to spare).
const MAIN_ARENA: usize = 8 * MIB;
/// Each mechanism's turn under load.
const LOAD_WINDOW: Duration = Duration::from_millis(10);
/// The idle gap before each "first call after idle" sample.
const IDLE_GAP: Duration = Duration::from_millis(12);
/// The baselines, in column order.
const BASELINES: [&str; 4] = ["in-process", "socket", "pipe", "futex"];

static PANIC: Mutex<Option<String>> = Mutex::new(None);

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            if e.use_stderr() {
                let text = e.render().to_string();
                eprintln!(
                    "ffb-bench: {}",
                    text.lines()
                        .next()
                        .unwrap_or("bad usage")
                        .trim_start_matches("error: ")
                );
                return ExitCode::from(2);
            }
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    if args.hog {
        hog();
    }
    if let Some(mode) = &args.baseline_child {
        return baseline_child(mode, &args.lib);
    }
    // A panic (a bridged call failing mid-measurement) unwinds through the
    // guards, which kill every child; then it is reported in one line.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info
            .location()
            .map(|l| format!(" (at {}:{})", l.file(), l.line()))
            .unwrap_or_default();
        *PANIC.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(format!("{what}{at}").replace('\n', " "));
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&args)));
    progress_done();
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("ffb-bench: {}", e.replace('\n', " "));
            ExitCode::from(1)
        }
        Err(_) => {
            let msg = PANIC
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_else(|| "panicked".into());
            eprintln!("ffb-bench: {msg}");
            ExitCode::from(1)
        }
    }
}

/// How much of everything to measure.
struct Plan {
    quick: bool,
    /// Per-call samples.
    calls: usize,
    /// Blocks of [`BLOCK`] calls.
    blocks: usize,
    /// Interleaved rounds the hot and sweep measurements are spread over.
    rounds: usize,
    warm_spawns: usize,
    /// Sweep samples per size: bytes budget / size, clamped to [min, max].
    sweep_bytes: usize,
    sweep_min: usize,
    sweep_max: usize,
    zero_copy: usize,
    batches: usize,
    busy_cpu: Duration,
    idle_cpu: Duration,
    wake_samples: usize,
    bursts: usize,
    load_budget: Duration,
}

impl Plan {
    fn new(calls: usize, quick: bool) -> Plan {
        let n = if quick { calls / 10 } else { calls }.max(1000);
        Plan {
            quick,
            calls: n,
            blocks: (n / BLOCK).clamp(20, 200),
            rounds: if quick { 3 } else { 5 },
            warm_spawns: if quick { 10 } else { 50 },
            sweep_bytes: if quick { 32 * MIB } else { 256 * MIB },
            sweep_min: if quick { 15 } else { 50 },
            sweep_max: (n / 10).max(1000),
            zero_copy: if quick { 30 } else { 200 },
            batches: if quick { 20 } else { 100 },
            busy_cpu: Duration::from_millis(500),
            idle_cpu: Duration::from_secs(if quick { 1 } else { 2 }),
            wake_samples: if quick { 50 } else { 200 },
            bursts: if quick { 10 } else { 30 },
            load_budget: Duration::from_secs(if quick { 3 } else { 6 }),
        }
    }

    fn sweep_samples(&self, size: usize) -> usize {
        (self.sweep_bytes / size).clamp(self.sweep_min, self.sweep_max)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Unit {
    Ns,
    Percent,
}

struct Row {
    name: String,
    /// Rows in the same group measure the same thing by different mechanisms.
    group: String,
    /// "bridge", or the baseline this row measures.
    mech: Option<&'static str>,
    what: String,
    method: String,
    unit: Unit,
    median: f64,
    p99: Option<f64>,
    samples: usize,
    /// A throughput: value and unit ("B/s" or "calls/s").
    rate: Option<(f64, &'static str)>,
    /// Shown in the main table (sweep rows have their own).
    main: bool,
}

struct Target {
    id: String,
    row: String,
    goal: String,
    figure: f64,
    limit: f64,
    at_most: bool,
    /// How the figure reads ("171 ns", "48.2x the socket").
    shown: String,
    basis: String,
}

impl Target {
    fn met(&self) -> bool {
        if self.at_most {
            self.figure <= self.limit
        } else {
            self.figure >= self.limit
        }
    }
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    targets: Vec<Target>,
}

impl Report {
    fn timed(
        &mut self,
        name: &str,
        group: &str,
        mech: Option<&'static str>,
        method: &str,
        what: &str,
        samples: Vec<f64>,
    ) -> &mut Row {
        let (median, p99, n) = summarize(samples);
        self.rows.push(Row {
            name: name.into(),
            group: group.into(),
            mech,
            what: what.into(),
            method: method.into(),
            unit: Unit::Ns,
            median,
            p99: Some(p99),
            samples: n,
            rate: None,
            main: true,
        });
        self.rows.last_mut().expect("just pushed")
    }

    fn value(&mut self, name: &str, unit: Unit, what: &str, method: &str, v: f64, samples: usize) {
        self.rows.push(Row {
            name: name.into(),
            group: name.into(),
            mech: None,
            what: what.into(),
            method: method.into(),
            unit,
            median: v,
            p99: None,
            samples,
            rate: None,
            main: true,
        });
    }

    fn get(&self, name: &str) -> &Row {
        self.rows
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no row {name}"))
    }

    fn median(&self, name: &str) -> f64 {
        self.get(name).median
    }

    fn baseline_of(&self, row: &Row, mech: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|o| o.group == row.group && o.mech == Some(mech) && o.name != row.name)
    }

    /// `this ÷ in-process` for the in-process column, `baseline ÷ this`
    /// (how many times faster than it) for the others.
    fn ratio(&self, row: &Row, mech: &str) -> Option<f64> {
        if row.unit != Unit::Ns || row.median <= 0.0 {
            return None;
        }
        let base = self.baseline_of(row, mech)?;
        if base.median <= 0.0 {
            return None;
        }
        Some(if mech == "in-process" {
            row.median / base.median
        } else {
            base.median / row.median
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn target(
        &mut self,
        row: &str,
        goal: &str,
        figure: f64,
        limit: f64,
        at_most: bool,
        shown: String,
        basis: &str,
    ) {
        let id = format!("T{}", self.targets.len() + 1);
        self.targets.push(Target {
            id,
            row: row.into(),
            goal: goal.into(),
            figure,
            limit,
            at_most,
            shown,
            basis: basis.into(),
        });
    }
}

fn summarize(mut samples: Vec<f64>) -> (f64, f64, usize) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN, 0);
    }
    samples.sort_unstable_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), samples.len())
}

/// The least warm-up before each per-call measurement: the bridge's spin
/// budgets adapt over many calls, and a helper that was idle may take
/// thousands of calls to spin again (the `bridge_burst_after_idle` row).
const MIN_WARM: Duration = Duration::from_millis(20);

/// Times each of `n` calls with an `Instant` pair, after at least `warm`
/// untimed ones and [`MIN_WARM`].
fn per_call(warm: usize, n: usize, mut f: impl FnMut()) -> Vec<f64> {
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
        samples.push(t.elapsed().as_nanos() as f64);
    }
    samples
}

/// Latencies in buckets about 1 % wide, for measurements with too many
/// samples to keep.
struct Hist {
    counts: Vec<u64>,
    total: u64,
}

impl Hist {
    /// Bucket width in ln(ns): 1 %.
    const STEP: f64 = 0.01;

    fn new() -> Hist {
        // e^(2300 x 0.01) ns is about 10 s.
        Hist {
            counts: vec![0; 2300],
            total: 0,
        }
    }

    fn add(&mut self, ns: u64) {
        let i = ((ns.max(1) as f64).ln() / Self::STEP) as usize;
        let last = self.counts.len() - 1;
        self.counts[i.min(last)] += 1;
        self.total += 1;
    }

    fn quantile(&self, q: f64) -> f64 {
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

/// Times `blocks` blocks of [`BLOCK`] calls; each sample is a block's time per call.
fn per_block(blocks: usize, mut f: impl FnMut()) -> Vec<f64> {
    for _ in 0..BLOCK {
        f();
    }
    let mut samples = Vec::with_capacity(blocks);
    for _ in 0..blocks {
        let t = Instant::now();
        for _ in 0..BLOCK {
            f();
        }
        samples.push(t.elapsed().as_nanos() as f64 / BLOCK as f64);
    }
    samples
}

const PER_CALL: &str = "per call (Instant pair)";
const PER_BLOCK: &str = "block of 1,000 calls, time per call";

/// One of several measurements taken in interleaved rounds.
struct Measure<'a> {
    name: String,
    group: String,
    mech: &'static str,
    what: String,
    f: Box<dyn FnMut() + 'a>,
    calls: Vec<f64>,
    blocks: Vec<f64>,
}

impl<'a> Measure<'a> {
    fn new(
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
    fn report(self, r: &mut Report) {
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
fn run_rounds(list: &mut [Measure], rounds: usize, calls: usize, blocks: usize, warm: usize) {
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

fn ok(r: ffb_loader::Result<()>) {
    if let Err(e) = r {
        panic!("a bridged call failed during the benchmark: {e}");
    }
}

fn io_ok(what: &str, r: std::io::Result<()>) {
    if let Err(e) = r {
        panic!("the {what} baseline failed during the benchmark: {e}");
    }
}

fn progress(step: &str) {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2Kffb-bench: {step} ...");
    }
}

fn progress_done() {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
}

/// Shuts down the fork servers the bridges started, on every path.
struct ForkServers;

impl Drop for ForkServers {
    fn drop(&mut self) {
        ffb_loader::shutdown_fork_servers();
    }
}

fn builder(lib: &str, arena: usize) -> BridgeBuilder {
    Bridge::builder(lib)
        .bridge_mode(BridgeMode::Enabled)
        .declare("ffb_nop() -> void")
        .declare("ffb_add_i64(i64, i64) -> i64")
        .declare("ffb_mix4(i32, f64, i64, f32) -> f64")
        .declare("ffb_nop_bytes(bytes) -> void")
        .arena_size(arena)
}

struct Functions {
    nop: FunctionId,
    add: FunctionId,
    mix: FunctionId,
    bytes: FunctionId,
}

fn functions(b: &Bridge) -> Functions {
    let f = |name| b.function(name).expect("declared");
    Functions {
        nop: f("ffb_nop"),
        add: f("ffb_add_i64"),
        mix: f("ffb_mix4"),
        bytes: f("ffb_nop_bytes"),
    }
}

fn run(args: &Args) -> Result<(), String> {
    // Declared first so it is dropped last, after every bridge.
    let _servers = ForkServers;
    install_signal_handlers();
    let started = Instant::now();
    let started_utc = utc_now();
    let load_start = loadavg();
    for path in [&args.json, &args.plot].into_iter().flatten() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
    }
    let plan = Plan::new(args.calls, args.quick);
    let n = plan.calls;
    let warm = (n / 10).clamp(100, 10_000);
    let lib = args.lib.to_string_lossy().into_owned();
    let mut r = Report::default();

    progress("timer and in-process calls");
    r.timed(
        "timer",
        "timer",
        None,
        PER_CALL,
        "Instant::now() pair alone",
        per_call(warm, n, || {}),
    );

    // In-process: the floor any bridge is measured against.
    let inproc = unsafe { libloading::Library::new(&args.lib) }
        .map_err(|e| format!("loading {}: {e}", args.lib.display()))?;
    let sym = |name: &str| format!("{name} in {}", args.lib.display());
    let nop: libloading::Symbol<unsafe extern "C" fn()> =
        unsafe { inproc.get(b"ffb_nop\0") }.map_err(|e| format!("{}: {e}", sym("ffb_nop")))?;
    let add: libloading::Symbol<unsafe extern "C" fn(i64, i64) -> i64> =
        unsafe { inproc.get(b"ffb_add_i64\0") }
            .map_err(|e| format!("{}: {e}", sym("ffb_add_i64")))?;
    let mix: libloading::Symbol<unsafe extern "C" fn(i32, f64, i64, f32) -> f64> =
        unsafe { inproc.get(b"ffb_mix4\0") }.map_err(|e| format!("{}: {e}", sym("ffb_mix4")))?;
    let nop_bytes: libloading::Symbol<unsafe extern "C" fn(*mut u8)> =
        unsafe { inproc.get(b"ffb_nop_bytes\0") }
            .map_err(|e| format!("{}: {e}", sym("ffb_nop_bytes")))?;
    // Plain function pointers (valid while `inproc` lives, to the end of the run).
    let (nop, add, mix, nop_bytes) = (*nop, *add, *mix, *nop_bytes);

    // Helper start: cold (fork server exec + fork + load), then warm.
    progress("helper start");
    let t = Instant::now();
    let cold = builder(&lib, MAIN_ARENA)
        .load()
        .map_err(|e| e.to_string())?;
    let cold_ns = t.elapsed().as_nanos() as f64;
    drop(cold);
    r.timed(
        "spawn_cold",
        "spawn_cold",
        None,
        "one sample",
        "first helper: fork server exec + fork + seccomp + dlopen + resolve",
        vec![cold_ns],
    );
    let mut spawns = Vec::with_capacity(plan.warm_spawns);
    for _ in 0..plan.warm_spawns {
        let t = Instant::now();
        let b = builder(&lib, MAIN_ARENA)
            .load()
            .map_err(|e| e.to_string())?;
        spawns.push(t.elapsed().as_nanos() as f64);
        drop(b);
    }
    r.timed(
        "spawn_warm",
        "spawn_warm",
        None,
        "per load()",
        "helper from a warm fork server: fork + seccomp + dlopen + resolve",
        spawns,
    );
    for spec in &args.policy {
        let mut spawns = Vec::with_capacity(plan.warm_spawns);
        for _ in 0..plan.warm_spawns {
            let t = Instant::now();
            let policy = ffb_policy::file::load_policy(spec).map_err(|e| e.to_string())?;
            let b = builder(&lib, MAIN_ARENA)
                .policy(policy)
                .load()
                .map_err(|e| e.to_string())?;
            spawns.push(t.elapsed().as_nanos() as f64);
            drop(b);
        }
        let name = format!("spawn_policy:{spec}");
        r.timed(
            &name,
            "spawn_policy",
            None,
            "per load()",
            "policy parse + compile + helper start under it, warm fork server",
            spawns,
        );
    }

    // Hot calls: in-process, bridged and the IPC baselines, measured in
    // interleaved rounds so that noise from the rest of the machine falls on
    // all of them alike.
    progress("hot calls");
    let bridge = builder(&lib, MAIN_ARENA)
        .load()
        .map_err(|e| e.to_string())?;
    let fns = functions(&bridge);
    let out = CallOutput {
        ret: Value::Null,
        out: Vec::new(),
        effects: &WORST_CASE,
    };
    // Shared by the interleaved measurements (a RefCell costs ~1 ns a call).
    let hot = RefCell::new((bridge, out));
    let mut socket = Baseline::start("socket", &args.lib)?;
    let mut pipe = Baseline::start("pipe", &args.lib)?;
    let mut futex = Baseline::start("futex", &args.lib)?;
    let mut spin = Baseline::start("spin", &args.lib)?;
    let add_args = [Value::I64(40), Value::I64(2)];
    let mix_args = [
        Value::I32(1),
        Value::F64(2.0),
        Value::I64(3),
        Value::F32(4.0),
    ];
    let bridged = |f: FunctionId, a: &[Value]| {
        let (bridge, out) = &mut *hot.borrow_mut();
        ok(bridge.call_into(f, a, out));
    };
    {
        let mut list = vec![
            Measure::new(
                "in_process_null",
                "null",
                "in-process",
                "void f(void) called directly (libloading)",
                || unsafe { nop() },
            ),
            Measure::new(
                "in_process_add",
                "add",
                "in-process",
                "i64 add(i64, i64) called directly",
                || {
                    bb(unsafe { add(bb(40), bb(2)) });
                },
            ),
            Measure::new(
                "in_process_mix4",
                "mix4",
                "in-process",
                "f64 mix4(i32, f64, i64, f32) called directly",
                || {
                    bb(unsafe { mix(bb(1), bb(2.0), bb(3), bb(4.0)) });
                },
            ),
            Measure::new(
                "bridge_null",
                "null",
                "bridge",
                "void f(void) through the bridge (hot helper)",
                || bridged(fns.nop, &[]),
            ),
            Measure::new(
                "bridge_add",
                "add",
                "bridge",
                "i64 add(i64, i64) through the bridge",
                || bridged(fns.add, &add_args),
            ),
            Measure::new(
                "bridge_mix4",
                "mix4",
                "bridge",
                "f64 mix4(i32, f64, i64, f32) through the bridge",
                || bridged(fns.mix, &mix_args),
            ),
        ];
        for (b, what) in [
            (
                &mut socket,
                "request/response over a unix socket with a helper process",
            ),
            (
                &mut pipe,
                "request/response over two pipes with a helper process",
            ),
            (
                &mut futex,
                "futex wait/wake handoff on shared memory with a helper process",
            ),
            (
                &mut spin,
                "floor: spin 100 µs, then futex, on shared memory with a helper process (no adaptation)",
            ),
        ] {
            let mode = b.mode;
            list.push(Measure::new(
                &format!("{mode}_null"),
                "null",
                mode,
                what,
                move || io_ok(mode, b.round_trip(&[])),
            ));
        }
        run_rounds(&mut list, plan.rounds, n, plan.blocks, warm);
        for m in list {
            m.report(&mut r);
        }
    }

    // Batches against the same calls made one at a time, interleaved.
    progress("batches");
    per_call(BLOCK, 0, || bridged(fns.nop, &[]));
    {
        let (bridge, out) = &mut *hot.borrow_mut();
        let batch: Vec<(FunctionId, &[Value])> = vec![(fns.nop, &[][..]); BATCH];
        let (mut batched, mut single) = (Vec::new(), Vec::new());
        for k in 0..plan.batches + 3 {
            let t = Instant::now();
            if let Err(e) = bridge.call_batch(&batch) {
                return Err(format!("call_batch failed: {e}"));
            }
            let b = t.elapsed().as_nanos() as f64 / BATCH as f64;
            let t = Instant::now();
            for _ in 0..BATCH {
                ok(bridge.call_into(fns.nop, &[], out));
            }
            let s = t.elapsed().as_nanos() as f64 / BATCH as f64;
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
    }

    // The payload sweep: every mechanism carries the payload both ways.
    let mut payload_in = vec![0u8; MAX_PAYLOAD];
    let mut payload_out = vec![0u8; MAX_PAYLOAD];
    for &size in &SWEEP {
        let label = size_label(size);
        progress(&format!("payload sweep, {label}"));
        let samples = plan.sweep_samples(size);
        let sweep_warm = (samples / plan.rounds / 5).clamp(3, 100);
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
                    unsafe { nop_bytes(pin.as_mut_ptr()) };
                    pout[..size].copy_from_slice(&pin[..size]);
                    bb(&pout);
                },
            ),
            Measure::new(
                "bridge",
                "",
                "bridge",
                "ffb_nop_bytes(bytes) through the bridge: copied in and back out",
                || bridged(fns.bytes, &bytes_args),
            ),
        ];
        for b in [&mut socket, &mut pipe, &mut futex] {
            let mode = b.mode;
            let what = if mode == "futex" {
                "copied into shared memory, futex handoff, copied back out"
            } else {
                "8-byte length + payload sent, read by the helper and sent back"
            };
            list.push(Measure::new(mode, "", mode, what, move || {
                io_ok(mode, b.round_trip(payload))
            }));
        }
        run_rounds(&mut list, plan.rounds, samples, 0, sweep_warm);
        for m in list {
            let name = format!("{}_bytes_{label}", m.name);
            let row = r.timed(
                &name,
                &format!("bytes/{label}"),
                Some(m.mech),
                PER_CALL,
                &format!("{label} payload: {}", m.what),
                m.calls,
            );
            row.rate = Some((2.0 * size as f64 / row.median * 1e9, "B/s"));
            row.main = m.mech == "bridge" && size == MIB;
        }
    }
    let (mut bridge, mut out) = hot.into_inner();
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
    row.rate = Some((2.0 * MIB as f64 / row.median * 1e9, "B/s"));
    drop((src, dst, payload_in, payload_out));

    // Zero copy: fill a 16 MiB shared buffer and pass it by reference.
    progress("zero copy");
    {
        let mut zc = builder(&lib, SHARED_ARENA)
            .load()
            .map_err(|e| e.to_string())?;
        let f = functions(&zc).bytes;
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
            ok(zc.call_into(f, &shared_args, &mut out));
            if timed {
                call_only.push(t.elapsed().as_nanos() as f64);
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
        row.rate = Some((SHARED_LEN as f64 / row.median * 1e9, "B/s"));
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
        row.rate = Some((SHARED_LEN as f64 / row.median * 1e9, "B/s"));
    }

    // Cost of idle: the helper's CPU time while calls stream, then while idle.
    progress("helper CPU time");
    let pid = bridge.helper_pid().ok_or("the bridge has no helper pid")?;
    let tick = clock_tick();
    per_call(10_000, 0, || ok(bridge.call_into(fns.nop, &[], &mut out)));
    let respawns = bridge.respawns();
    let c0 = cpu_ticks(pid)?;
    let t = Instant::now();
    let mut calls = 0usize;
    while t.elapsed() < plan.busy_cpu {
        for _ in 0..10_000 {
            ok(bridge.call_into(fns.nop, &[], &mut out));
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
        &format!(
            "helper utime+stime ÷ calls over {calls} hot null calls ({:.2} s)",
            busy_wall
        ),
        "/proc/<pid>/stat, 1 sample",
        busy_cpu * 1e9 / calls as f64,
        calls,
    );
    r.value(
        "helper_busy_cpu",
        Unit::Percent,
        "helper CPU while those calls ran, % of one core",
        "/proc/<pid>/stat, 1 sample",
        busy_cpu / busy_wall * 100.0,
        1,
    );
    r.value(
        "helper_idle_cpu",
        Unit::Percent,
        &format!(
            "helper CPU while idle for {:.1} s after the calls, % of one core (resolution {:.1} %)",
            idle_wall,
            100.0 / tick / idle_wall
        ),
        "/proc/<pid>/stat, 1 sample",
        idle_cpu / idle_wall * 100.0,
        1,
    );

    // The first call after the helper (or futex peer) was idle for 12 ms.
    progress("first call after idle");
    let (mut b_wake, mut f_wake) = (Vec::new(), Vec::new());
    for _ in 0..plan.wake_samples {
        std::thread::sleep(IDLE_GAP);
        let t = Instant::now();
        ok(bridge.call_into(fns.nop, &[], &mut out));
        b_wake.push(t.elapsed().as_nanos() as f64);
        std::thread::sleep(IDLE_GAP);
        let t = Instant::now();
        io_ok("futex", futex.round_trip(&[]));
        f_wake.push(t.elapsed().as_nanos() as f64);
    }
    r.timed(
        "bridge_idle_wake",
        "idle_wake",
        Some("bridge"),
        "per call, 12 ms idle before each",
        "first bridged null call after the helper was idle for 12 ms",
        b_wake,
    );
    r.timed(
        "futex_idle_wake",
        "idle_wake",
        Some("futex"),
        "per call, 12 ms idle before each",
        "first futex round trip after 12 ms idle (interleaved with the row above)",
        f_wake,
    );

    // Back-to-back calls right after idling: how soon the helper spins again.
    progress("calls right after idle");
    let mut burst = Vec::with_capacity(plan.bursts);
    let mut shared_cpu = 0;
    for _ in 0..plan.bursts {
        std::thread::sleep(IDLE_GAP);
        ok(bridge.call_into(fns.nop, &[], &mut out));
        std::thread::sleep(IDLE_GAP);
        let t = Instant::now();
        for _ in 0..BLOCK {
            ok(bridge.call_into(fns.nop, &[], &mut out));
        }
        burst.push(t.elapsed().as_nanos() as f64 / BLOCK as f64);
        if last_cpu(pid) == Some(unsafe { libc::sched_getcpu() }) {
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

    // Under load: a CPU hog on every core; bridge and futex interleaved.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    progress(&format!("under load ({cpus} hogs)"));
    {
        let hogs = Hogs::start(cpus, &args.lib)?;
        std::thread::sleep(Duration::from_millis(200));
        // Alternate windows of equal wall time, so both mechanisms see the
        // same scheduler; latencies go to histograms (the bridge may make
        // millions of calls).
        let (mut b_load, mut f_load) = (Hist::new(), Hist::new());
        let hog_ticks = hogs.cpu_ticks();
        let t0 = Instant::now();
        while t0.elapsed() < plan.load_budget {
            for k in 0..2 {
                let mut call = || {
                    if k == 0 {
                        ok(bridge.call_into(fns.nop, &[], &mut out))
                    } else {
                        io_ok("futex", futex.round_trip(&[]))
                    }
                };
                for _ in 0..10 {
                    call();
                }
                let hist = if k == 0 { &mut b_load } else { &mut f_load };
                let window = Instant::now();
                while window.elapsed() < LOAD_WINDOW {
                    let t = Instant::now();
                    call();
                    hist.add(t.elapsed().as_nanos() as u64);
                }
            }
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
        for (name, mech, hist, what) in [
            (
                "bridge_null_load",
                "bridge",
                b_load,
                format!("bridged null call {what}"),
            ),
            (
                "futex_null_load",
                "futex",
                f_load,
                format!("futex round trip {what}"),
            ),
        ] {
            r.rows.push(Row {
                name: name.into(),
                group: "load".into(),
                mech: Some(mech),
                what,
                method: method.clone(),
                unit: Unit::Ns,
                median: hist.quantile(0.5),
                p99: Some(hist.quantile(0.99)),
                samples: hist.total as usize,
                rate: None,
                main: true,
            });
        }
    }
    drop((socket, pipe, futex, spin));
    drop(bridge);
    drop(inproc);

    set_targets(&mut r, &args.policy);
    let load_end = loadavg();
    let elapsed = started.elapsed().as_secs_f64();
    progress_done();

    let ctx = Context {
        command: std::env::args().collect(),
        script: std::env::var("FFB_BENCH_SCRIPT").ok(),
        build: std::env::var("FFB_BENCH_BUILD")
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default(),
        toolchain: std::env::var("FFB_BENCH_TOOLCHAIN").ok(),
        started_utc,
        elapsed,
        load_start,
        load_end,
        machine: machine(),
        plan_text: format!(
            "{} run: {} calls per per-call figure, {} blocks of {}, sweep {}..{} samples per size, {} idle-wake samples, load budget {} s",
            if plan.quick { "quick" } else { "full" },
            plan.calls,
            plan.blocks,
            BLOCK,
            plan.sweep_min,
            plan.sweep_max,
            plan.wake_samples,
            plan.load_budget.as_secs()
        ),
    };
    print_report(&r, &ctx);
    if let Some(path) = &args.json {
        let doc = json_doc(&r, &ctx, &plan);
        std::fs::write(
            path,
            serde_json::to_string_pretty(&doc).expect("json") + "\n",
        )
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        plot(&r, &ctx, path).map_err(|e| format!("drawing {}: {e}", path.display()))?;
    }
    Ok(())
}

fn set_targets(r: &mut Report, policies: &[String]) {
    let timer_note = "block-timed median (no timer overhead)";
    let null = r.median("bridge_null/blk");
    r.target(
        "bridge_null/blk",
        "hot null call ≤ 0.30 µs",
        null,
        300.0,
        true,
        human(null),
        timer_note,
    );
    let socket = r.median("socket_null/blk") / null;
    r.target(
        "bridge_null/blk",
        "hot null call ≥ 100x faster than the unix socket",
        socket,
        100.0,
        false,
        format!("{}x the socket", fmt_ratio(socket)),
        "block-timed medians of both",
    );
    let idle = r.median("helper_idle_cpu");
    r.target(
        "helper_idle_cpu",
        "idle helper uses ≤ 1 % of a core",
        idle,
        1.0,
        true,
        format!("{idle:.2} %"),
        "utime+stime from /proc/<pid>/stat",
    );
    let wake = r.median("bridge_idle_wake") / r.median("futex_idle_wake");
    r.target(
        "bridge_idle_wake",
        "first call after ≥ 10 ms idle ≤ 1.2x the futex baseline",
        wake,
        1.2,
        true,
        format!(
            "{}x futex ({} vs {}; futex hot {})",
            fmt_ratio(wake),
            human(r.median("bridge_idle_wake")),
            human(r.median("futex_idle_wake")),
            human(r.median("futex_null"))
        ),
        "per-call medians, interleaved, 12 ms idle before each",
    );
    let load = r.median("bridge_null_load") / r.median("futex_null_load");
    r.target(
        "bridge_null_load",
        "null call under full CPU load ≤ 1.5x the futex round trip",
        load,
        1.5,
        true,
        format!(
            "{}x futex ({} vs {})",
            fmt_ratio(load),
            human(r.median("bridge_null_load")),
            human(r.median("futex_null_load"))
        ),
        "per-call medians, interleaved under the same load",
    );
    for (row, goal) in [
        ("bridge_add/blk", "add(i64, i64) ≤ 0.40 µs"),
        ("bridge_mix4/blk", "mix4(i32, f64, i64, f32) ≤ 0.40 µs"),
    ] {
        let v = r.median(row);
        r.target(row, goal, v, 400.0, true, human(v), timer_note);
    }
    let mib = r.median("bridge_bytes_1MiB");
    r.target(
        "bridge_bytes_1MiB",
        "1 MiB bytes copied in and back out ≤ 100 µs",
        mib,
        100_000.0,
        true,
        format!(
            "{} (2x memcpy {})",
            human(mib),
            human(r.median("memcpy_2x1MiB"))
        ),
        "per-call median",
    );
    let zc = r.median("memcpy_16MiB") / r.median("bridge_shared_16MiB");
    r.target(
        "bridge_shared_16MiB",
        "zero copy 16 MiB ≥ 0.9x memcpy throughput",
        zc,
        0.9,
        false,
        format!(
            "{}x ({} vs {})",
            fmt_ratio(zc),
            fmt_rate(
                16.0 * MIB as f64 / r.median("bridge_shared_16MiB") * 1e9,
                "B/s"
            ),
            fmt_rate(16.0 * MIB as f64 / r.median("memcpy_16MiB") * 1e9, "B/s")
        ),
        "per-call medians",
    );
    let warm = r.median("spawn_warm");
    r.target(
        "spawn_warm",
        "helper start from a warm fork server ≤ 1 ms",
        warm,
        1e6,
        true,
        human(warm),
        "median over loads",
    );
    for spec in policies {
        let name = format!("spawn_policy:{spec}");
        let v = r.median(&name);
        r.target(
            &name,
            "policy compile + helper start ≤ 5 ms (issue 3)",
            v,
            5e6,
            true,
            human(v),
            "median over loads",
        );
    }
    let cold = r.median("spawn_cold");
    r.target(
        "spawn_cold",
        "first (cold) helper start ≤ 10 ms",
        cold,
        1e7,
        true,
        human(cold),
        "one sample",
    );
    let batch = r.median("single_1000") / r.median("batch_1000");
    r.target(
        "batch_1000",
        "batch of 1,000 calls ≥ 5x the calls/s of one at a time",
        batch,
        5.0,
        false,
        format!(
            "{}x ({} vs {})",
            fmt_ratio(batch),
            fmt_rate(1e9 / r.median("batch_1000"), "calls/s"),
            fmt_rate(1e9 / r.median("single_1000"), "calls/s")
        ),
        "medians, interleaved",
    );
}

struct Context {
    command: Vec<String>,
    script: Option<String>,
    build: Vec<String>,
    toolchain: Option<String>,
    started_utc: String,
    elapsed: f64,
    load_start: String,
    load_end: String,
    machine: serde_json::Value,
    plan_text: String,
}

fn print_report(r: &Report, ctx: &Context) {
    let m = &ctx.machine;
    println!("# ffb-bench");
    println!("command:    {}", shell_words(&ctx.command));
    if let Some(s) = &ctx.script {
        println!("via:        {s}");
    }
    for b in &ctx.build {
        println!("built with: {b}");
    }
    if let Some(t) = &ctx.toolchain {
        println!("toolchain:  {t}");
    }
    println!(
        "machine:    Linux {}, {} cpus ({}), {} GiB",
        m["kernel"].as_str().unwrap_or("?"),
        m["cpus"],
        m["cpu_model"].as_str().unwrap_or("?"),
        m["mem_gib"]
    );
    println!(
        "load avg:   {} at start, {} at end",
        ctx.load_start, ctx.load_end
    );
    println!(
        "run:        started {}, took {:.1} s; {}",
        ctx.started_utc, ctx.elapsed, ctx.plan_text
    );
    println!();
    println!("Medians and p99s. ÷in-proc = this ÷ the in-process call (how many times its cost);");
    println!("socket÷ / pipe÷ / futex÷ = that baseline ÷ this (how many times faster than it),");
    println!("each against the same measurement of that baseline in this run. Rows ending /blk");
    println!("are block-timed (1,000 calls per timing) and carry no timer overhead; the targets");
    println!("for the hot null call, add and mix4 are judged on them. Compared measurements are");
    println!(
        "interleaved (rounds, alternating pairs or equal-time windows) so that noise from the"
    );
    println!("rest of the machine falls on all of them alike.");
    println!();
    let mut table = vec![vec![
        "measurement".to_string(),
        "median".into(),
        "p99".into(),
        "÷in-proc".into(),
        "socket÷".into(),
        "pipe÷".into(),
        "futex÷".into(),
        "rate".into(),
        "target".into(),
        "what".into(),
    ]];
    for row in r.rows.iter().filter(|row| row.main) {
        let mut line = vec![
            row.name.clone(),
            fmt_value(row.median, row.unit),
            row.p99.map_or("-".into(), |v| fmt_value(v, row.unit)),
        ];
        for mech in BASELINES {
            line.push(
                r.ratio(row, mech)
                    .map_or("-".into(), |x| fmt_ratio(x) + "x"),
            );
        }
        line.push(row.rate.map_or("-".into(), |(v, u)| fmt_rate(v, u)));
        let verdicts: Vec<String> = r
            .targets
            .iter()
            .filter(|t| t.row == row.name)
            .map(|t| format!("{} {}", t.id, if t.met() { "met" } else { "missed" }))
            .collect();
        line.push(if verdicts.is_empty() {
            "-".into()
        } else {
            verdicts.join(", ")
        });
        line.push(row.what.clone());
        table.push(line);
    }
    print_table(
        &table,
        &[false, true, true, true, true, true, true, true, false],
    );

    println!();
    println!(
        "Payload sweep: median round trip with the payload carried both ways (p99 in brackets);"
    );
    println!("the ratio after each baseline is that baseline ÷ the bridge (for in-process: bridge ÷ it).");
    println!();
    let mut table = vec![vec![
        "payload".to_string(),
        "bridge".into(),
        "in-process+copy".into(),
        "bridge÷".into(),
        "socket".into(),
        "÷bridge".into(),
        "pipe".into(),
        "÷bridge".into(),
        "futex".into(),
        "÷bridge".into(),
    ]];
    for &size in &SWEEP {
        let label = size_label(size);
        let cell = |prefix: &str| {
            let row = r.get(&format!("{prefix}_bytes_{label}"));
            format!(
                "{} [{}]",
                human(row.median),
                human(row.p99.unwrap_or(f64::NAN))
            )
        };
        let bridge = r.get(&format!("bridge_bytes_{label}"));
        let mut line = vec![label.clone(), cell("bridge")];
        for (prefix, mech) in [
            ("in_process", "in-process"),
            ("socket", "socket"),
            ("pipe", "pipe"),
            ("futex", "futex"),
        ] {
            line.push(cell(prefix));
            line.push(
                r.ratio(bridge, mech)
                    .map_or("-".into(), |x| fmt_ratio(x) + "x"),
            );
        }
        table.push(line);
    }
    print_table(
        &table,
        &[false, true, true, true, true, true, true, true, true],
    );

    println!();
    let met = r.targets.iter().filter(|t| t.met()).count();
    println!("Targets: {met} of {} met.", r.targets.len());
    println!();
    let mut table = vec![vec![
        "id".to_string(),
        "row".into(),
        "target".into(),
        "measured".into(),
        "verdict".into(),
        "judged on".into(),
    ]];
    for t in &r.targets {
        table.push(vec![
            t.id.clone(),
            t.row.clone(),
            t.goal.clone(),
            t.shown.clone(),
            if t.met() { "met" } else { "missed" }.into(),
            t.basis.clone(),
        ]);
    }
    print_table(&table, &[false, false, false, false, false]);
}

/// Prints rows padded to column widths (right-aligned where `right`); the
/// last column is not padded.
fn print_table(rows: &[Vec<String>], right: &[bool]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
                break;
            }
            let pad = width[c].saturating_sub(cell.chars().count());
            if right.get(c).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        println!("{}", line.trim_end());
    }
}

fn json_doc(r: &Report, ctx: &Context, plan: &Plan) -> serde_json::Value {
    let unit = |u: Unit| match u {
        Unit::Ns => "ns",
        Unit::Percent => "percent_of_a_core",
    };
    let rows: Vec<_> = r
        .rows
        .iter()
        .map(|row| {
            let ratios: serde_json::Map<String, serde_json::Value> = BASELINES
                .iter()
                .filter_map(|m| r.ratio(row, m).map(|x| (m.replace('-', "_"), json!(x))))
                .collect();
            json!({
                "name": row.name,
                "group": row.group,
                "mechanism": row.mech,
                "what": row.what,
                "method": row.method,
                "unit": unit(row.unit),
                "median": row.median,
                "p99": row.p99,
                "samples": row.samples,
                "rate": row.rate.map(|(v, u)| json!({"value": v, "unit": u})),
                "ratios": ratios,
                "targets": r.targets.iter().filter(|t| t.row == row.name).map(|t| t.id.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let targets: Vec<_> = r
        .targets
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "row": t.row,
                "target": t.goal,
                "figure": t.figure,
                "comparison": if t.at_most { "<=" } else { ">=" },
                "limit": t.limit,
                "measured": t.shown,
                "judged_on": t.basis,
                "met": t.met(),
            })
        })
        .collect();
    let mut series = serde_json::Map::new();
    for mech in ["bridge", "in-process", "socket", "pipe", "futex"] {
        let points: Vec<_> = SWEEP
            .iter()
            .filter_map(|&size| {
                let group = format!("bytes/{}", size_label(size));
                r.rows
                    .iter()
                    .find(|row| row.group == group && row.mech == Some(mech))
                    .map(|row| json!({"bytes": size, "median_ns": row.median, "p99_ns": row.p99}))
            })
            .collect();
        series.insert(mech.into(), json!(points));
    }
    json!({
        "command": ctx.command,
        "script": ctx.script,
        "build_commands": ctx.build,
        "toolchain": ctx.toolchain,
        "started_utc": ctx.started_utc,
        "elapsed_s": ctx.elapsed,
        "quick": plan.quick,
        "calls": plan.calls,
        "plan": ctx.plan_text,
        "machine": ctx.machine,
        "loadavg_start": ctx.load_start,
        "loadavg_end": ctx.load_end,
        "notes": [
            "Per-call figures include one Instant::now() pair (the timer row); rows ending /blk are block-timed (1,000 calls per timing, median over blocks of the time per call) and carry no timer overhead.",
            "Targets for the hot null call, add and mix4 are judged on the block-timed medians.",
            "ratios.in_process = this median / the in-process median of the same group; ratios.socket, .pipe, .futex = that baseline's median / this median (how many times faster than it).",
            "Rates: B/s counts the payload both ways for the sweep and memcpy_2x1MiB, and 16 MiB once for the zero-copy rows.",
        ],
        "results": rows,
        "targets": targets,
        "sweep": series,
    })
}

/// One line of the plot: its label, colour and (bytes, µs) points.
type Series = (&'static str, plotters::style::RGBColor, Vec<(f64, f64)>);

fn plot(r: &Report, ctx: &Context, path: &Path) -> Result<(), String> {
    use plotters::prelude::*;
    let series: Vec<Series> = [
        (
            "ffb bridge (bytes copied in and out)",
            "bridge",
            RGBColor(200, 30, 30),
        ),
        (
            "in-process call + 2 memcpy",
            "in-process",
            RGBColor(60, 60, 60),
        ),
        ("unix socket helper", "socket", RGBColor(30, 90, 200)),
        ("pipe helper", "pipe", RGBColor(30, 150, 60)),
        (
            "futex helper (shared memory)",
            "futex",
            RGBColor(200, 130, 0),
        ),
    ]
    .into_iter()
    .map(|(label, mech, color)| {
        let points = SWEEP
            .iter()
            .filter_map(|&size| {
                let group = format!("bytes/{}", size_label(size));
                r.rows
                    .iter()
                    .find(|row| row.group == group && row.mech == Some(mech))
                    .filter(|row| row.median > 0.0)
                    .map(|row| (size as f64, row.median / 1e3))
            })
            .collect();
        (label, color, points)
    })
    .collect();
    let all = series.iter().flat_map(|s| s.2.iter().map(|p| p.1));
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return Err("no sweep data".into());
    }
    let (lo, hi) = (
        10f64.powf((lo * 0.95).log10().floor()),
        10f64.powf((hi * 1.05).log10().ceil()),
    );
    let decades: Vec<f64> = (lo.log10().round() as i32..=hi.log10().round() as i32)
        .map(|p| 10f64.powi(p))
        .collect();
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let caption = format!(
        "ffb round trip by payload size (median, payload both ways), {}",
        ctx.started_utc
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (32f64..(8 * MIB) as f64)
                .log_scale()
                .with_key_points(SWEEP.iter().map(|&s| s as f64).collect()),
            (lo..hi).log_scale().with_key_points(decades),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("payload each way (bytes)")
        .y_desc("median round trip")
        .x_label_formatter(&|v| pretty_size(*v))
        .y_label_formatter(&|v| decade_label(v * 1e3))
        .draw()
        .map_err(e)?;
    for (label, color, points) in series {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)).point_size(4))
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    let machine = &ctx.machine;
    root.draw(&Text::new(
        format!(
            "Linux {}, {} cpus, {}; load avg {} → {}",
            machine["kernel"].as_str().unwrap_or("?"),
            machine["cpus"],
            machine["cpu_model"].as_str().unwrap_or("?"),
            ctx.load_start,
            ctx.load_end
        ),
        (20, 620),
        ("sans-serif", 12).into_font().color(&RGBColor(90, 90, 90)),
    ))
    .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

fn human(ns: f64) -> String {
    if !ns.is_finite() {
        "-".into()
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// "10 ns", "1 µs", "100 µs", "1 ms", ... for an axis in nanoseconds.
fn decade_label(ns: f64) -> String {
    let (v, unit) = if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    format!("{} {unit}", trim(v))
}

fn fmt_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ns => human(v),
        Unit::Percent => format!("{v:.2} %"),
    }
}

fn fmt_ratio(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn fmt_rate(v: f64, unit: &str) -> String {
    match unit {
        "B/s" if v >= 1e9 => format!("{:.2} GB/s", v / 1e9),
        "B/s" => format!("{:.1} MB/s", v / 1e6),
        _ if v >= 1e6 => format!("{:.2} M/s", v / 1e6),
        _ => format!("{:.0} k/s", v / 1e3),
    }
}

fn size_label(size: usize) -> String {
    if size >= MIB && size.is_multiple_of(MIB) {
        format!("{}MiB", size / MIB)
    } else if size >= KIB && size.is_multiple_of(KIB) {
        format!("{}KiB", size / KIB)
    } else {
        format!("{size}B")
    }
}

fn pretty_size(v: f64) -> String {
    if v >= MIB as f64 {
        format!("{} MiB", trim(v / MIB as f64))
    } else if v >= KIB as f64 {
        format!("{} KiB", trim(v / KIB as f64))
    } else {
        format!("{} B", trim(v))
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn machine() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mem_kib: f64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    json!({
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpus_online": unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) },
        "cpu_model": cpu,
        "mem_gib": (mem_kib / (1024.0 * 1024.0)).round(),
        "clock_ticks_per_s": clock_tick(),
    })
}

/// Now as RFC 3339 UTC (the audit log's format).
fn utc_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn clock_tick() -> f64 {
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    let fields: Vec<&str> = text
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Fields 14 and 15 of stat(5); the first after the ')' is field 3.
    let field = |i: usize| -> Result<u64, String> {
        fields
            .get(i - 3)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{path}: no field {i}"))
    };
    Ok(field(14)? + field(15)?)
}

/// Our live children (baselines and hogs), for the signal handler.
static CHILDREN: [AtomicI32; 32] = [const { AtomicI32::new(0) }; 32];

fn track(pid: u32) {
    for slot in &CHILDREN {
        if slot.compare_exchange(0, pid as i32, SeqCst, SeqCst).is_ok() {
            return;
        }
    }
}

fn untrack(pid: u32) {
    for slot in &CHILDREN {
        let _ = slot.compare_exchange(pid as i32, 0, SeqCst, SeqCst);
    }
}

/// On SIGINT, SIGTERM or SIGHUP: kill and reap every child, say so in one
/// line, and exit. (Children also die with us by `PR_SET_PDEATHSIG`; this
/// reaps them too, and the fork servers exit when they see our socket close.)
extern "C" fn on_signal(sig: libc::c_int) {
    for slot in &CHILDREN {
        let pid = slot.swap(0, SeqCst);
        if pid > 0 {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
    let msg = b"\r\x1b[2Kffb-bench: interrupted by a signal; its children were killed\n";
    // Without the progress line's erase sequence when stderr is not a terminal.
    let msg = if STDERR_TTY.load(SeqCst) {
        &msg[..]
    } else {
        &msg[5..]
    };
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(128 + sig);
    }
}

static STDERR_TTY: AtomicBool = AtomicBool::new(false);

fn install_signal_handlers() {
    STDERR_TTY.store(std::io::stderr().is_terminal(), SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// The CPU `pid` last ran on (field 39 of stat(5)).
fn last_cpu(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    rest.split_whitespace().nth(39 - 3)?.parse().ok()
}

/// A command re-executing this binary as a child that dies with us.
fn child_command(lib: &Path) -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding ffb-bench: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--lib").arg(lib);
    let parent = unsafe { libc::getpid() };
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the benchmark exited"));
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// CPU hogs, killed and reaped when dropped.
struct Hogs(Vec<Child>);

impl Hogs {
    fn start(count: usize, lib: &Path) -> Result<Hogs, String> {
        let mut hogs = Hogs(Vec::with_capacity(count));
        for _ in 0..count {
            let child = child_command(lib)?
                .arg("--hog")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| format!("starting a CPU hog: {e}"))?;
            track(child.id());
            hogs.0.push(child);
        }
        Ok(hogs)
    }
}

impl Hogs {
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
        for c in &mut self.0 {
            untrack(c.id());
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

fn hog() -> ! {
    let mut x = 1u64;
    loop {
        for _ in 0..1_000_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
}

/// The futex baseline's shared page: request and response sequence words on
/// their own cache lines, the payload length, then the payload.
const FUTEX_REQ: usize = 0;
const FUTEX_RESP: usize = 64;
const FUTEX_LEN: usize = 128;
/// For the spin baseline: set while the child / the host sleeps.
const CHILD_PARKED: usize = 192;
const HOST_PARKED: usize = 256;
/// How long each side of the spin baseline spins before it sleeps.
const SPIN_FLOOR: Duration = Duration::from_micros(100);
const FUTEX_DATA: usize = 4096;
const FUTEX_MAP: usize = FUTEX_DATA + MAX_PAYLOAD;

/// A baseline helper: a child process that calls ffb_nop (or ffb_nop_bytes
/// on the payload) once per request. Killed and reaped when dropped.
struct Baseline {
    mode: &'static str,
    child: Child,
    io: BaselineIo,
    /// Where the response lands (8-byte length + payload).
    buf: Vec<u8>,
}

enum BaselineIo {
    Stream {
        to: OwnedFd,
        from: OwnedFd,
    },
    /// Futex handoff; with `spin`, each side first spins for [`SPIN_FLOOR`].
    Futex {
        map: *mut u8,
        spin: bool,
    },
}

impl Baseline {
    fn start(mode: &'static str, lib: &Path) -> Result<Baseline, String> {
        let io = |e: std::io::Error| format!("starting the {mode} baseline: {e}");
        let mut cmd = child_command(lib)?;
        let mut ours = None;
        let mut futex_map = None;
        match mode {
            "socket" => {
                cmd.arg("--baseline-child").arg("stream");
                let (a, b) = std::os::unix::net::UnixStream::pair().map_err(io)?;
                let b2 = b.try_clone().map_err(io)?;
                cmd.stdin(Stdio::from(OwnedFd::from(b)))
                    .stdout(Stdio::from(OwnedFd::from(b2)));
                let a2 = a.try_clone().map_err(io)?;
                ours = Some((OwnedFd::from(a), OwnedFd::from(a2)));
            }
            "pipe" => {
                cmd.arg("--baseline-child").arg("stream");
                cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
            }
            "futex" | "spin" => {
                cmd.arg("--baseline-child").arg(mode);
                let fd = unsafe { libc::memfd_create(c"ffb-bench".as_ptr(), libc::MFD_CLOEXEC) };
                if fd < 0 {
                    return Err(io(std::io::Error::last_os_error()));
                }
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                if unsafe { libc::ftruncate(fd.as_raw_fd(), FUTEX_MAP as libc::off_t) } != 0 {
                    return Err(io(std::io::Error::last_os_error()));
                }
                let map = map_shared(fd.as_raw_fd()).map_err(io)?;
                futex_map = Some(map);
                cmd.stdin(Stdio::from(fd));
            }
            other => return Err(format!("unknown baseline {other}")),
        }
        if futex_map.is_some() {
            cmd.stdout(Stdio::null());
        }
        let child = cmd.spawn().map_err(|e| {
            if let Some(map) = futex_map {
                unsafe { libc::munmap(map.cast(), FUTEX_MAP) };
            }
            io(e)
        })?;
        track(child.id());
        Self::finish(mode, child, ours, futex_map)
    }

    fn finish(
        mode: &'static str,
        mut child: Child,
        ours: Option<(OwnedFd, OwnedFd)>,
        futex_map: Option<*mut u8>,
    ) -> Result<Baseline, String> {
        let io = match (ours, futex_map) {
            (Some((to, from)), _) => BaselineIo::Stream { to, from },
            (None, Some(map)) => BaselineIo::Futex {
                map,
                spin: mode == "spin",
            },
            (None, None) => BaselineIo::Stream {
                to: OwnedFd::from(child.stdin.take().expect("piped")),
                from: OwnedFd::from(child.stdout.take().expect("piped")),
            },
        };
        let mut b = Baseline {
            mode,
            child,
            io,
            buf: vec![0u8; 8 + MAX_PAYLOAD],
        };
        // One round trip proves the child is up (and has loaded the library).
        b.round_trip(&[])
            .map_err(|e| format!("the {mode} baseline did not answer: {e}"))?;
        Ok(b)
    }

    /// One request/response carrying `payload` both ways.
    fn round_trip(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let len = payload.len();
        match &self.io {
            BaselineIo::Stream { to, from } => {
                write2(to.as_raw_fd(), &(len as u64).to_ne_bytes(), payload)?;
                let got = read_msg(from.as_raw_fd(), &mut self.buf)?;
                if got != len {
                    return Err(std::io::Error::other(format!(
                        "answered {got} bytes for {len}"
                    )));
                }
            }
            BaselineIo::Futex { map, spin } => unsafe {
                let base = *map;
                let req = &*(base.add(FUTEX_REQ) as *const AtomicU32);
                let resp = &*(base.add(FUTEX_RESP) as *const AtomicU32);
                let len_word = &*(base.add(FUTEX_LEN) as *const AtomicU64);
                let child_parked = &*(base.add(CHILD_PARKED) as *const AtomicU32);
                let host_parked = &*(base.add(HOST_PARKED) as *const AtomicU32);
                std::ptr::copy_nonoverlapping(payload.as_ptr(), base.add(FUTEX_DATA), len);
                len_word.store(len as u64, SeqCst);
                let seq = req.load(SeqCst).wrapping_add(1);
                req.store(seq, SeqCst);
                if !*spin || child_parked.load(SeqCst) != 0 {
                    futex(req, libc::FUTEX_WAKE, 1);
                }
                let t = Instant::now();
                if *spin {
                    spin_until(|| resp.load(SeqCst) == seq);
                }
                loop {
                    host_parked.store(1, SeqCst);
                    let now = resp.load(SeqCst);
                    if now == seq {
                        host_parked.store(0, SeqCst);
                        break;
                    }
                    if t.elapsed() > Duration::from_secs(10) {
                        host_parked.store(0, SeqCst);
                        return Err(std::io::Error::other("no answer in 10 s"));
                    }
                    futex_wait_timeout(resp, now, Duration::from_secs(1));
                }
                std::ptr::copy_nonoverlapping(
                    base.add(FUTEX_DATA),
                    self.buf.as_mut_ptr().add(8),
                    len,
                );
            },
        }
        Ok(())
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        untrack(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let BaselineIo::Futex { map, .. } = self.io {
            unsafe { libc::munmap(map.cast(), FUTEX_MAP) };
        }
    }
}

fn map_shared(fd: RawFd) -> std::io::Result<*mut u8> {
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            FUTEX_MAP,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(map.cast())
}

/// Spins until `done` or for [`SPIN_FLOOR`]; true if done.
fn spin_until(done: impl Fn() -> bool) -> bool {
    let t = Instant::now();
    let mut spins = 0u32;
    loop {
        if done() {
            return true;
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) && t.elapsed() >= SPIN_FLOOR {
            return false;
        }
        std::hint::spin_loop();
    }
}

fn futex(word: &AtomicU32, op: i32, val: u32) {
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            val,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

fn futex_wait_timeout(word: &AtomicU32, val: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            val,
            &ts as *const libc::timespec,
        );
    }
}

/// Writes `a` then `b` with as few syscalls as possible (one, normally).
fn write2(fd: RawFd, mut a: &[u8], mut b: &[u8]) -> std::io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let iov = [
            libc::iovec {
                iov_base: a.as_ptr() as *mut libc::c_void,
                iov_len: a.len(),
            },
            libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            },
        ];
        let n = unsafe { libc::writev(fd, iov.as_ptr(), 2) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let mut n = n as usize;
        let k = n.min(a.len());
        a = &a[k..];
        n -= k;
        b = &b[n.min(b.len())..];
    }
    Ok(())
}

/// Reads one message (8-byte length + payload) into `buf`; returns the
/// payload length. Only one message is ever in flight, so reading greedily
/// never takes bytes of the next one.
fn read_msg(fd: RawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    let mut need = 8;
    loop {
        while got < need {
            let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            got += n as usize;
        }
        if need == 8 {
            let len = u64::from_ne_bytes(buf[..8].try_into().expect("8 bytes")) as usize;
            if len > buf.len() - 8 {
                return Err(std::io::Error::other(format!("a {len}-byte message")));
            }
            need = 8 + len;
            if got < need {
                continue;
            }
        }
        if got != need {
            return Err(std::io::Error::other("more than one message in flight"));
        }
        return Ok(need - 8);
    }
}

fn baseline_child(mode: &str, lib: &Path) -> ExitCode {
    let Ok(lib) = (unsafe { libloading::Library::new(lib) }) else {
        return ExitCode::from(3);
    };
    let Ok(nop) = (unsafe { lib.get::<unsafe extern "C" fn()>(b"ffb_nop\0") }) else {
        return ExitCode::from(3);
    };
    let Ok(nop_bytes) = (unsafe { lib.get::<unsafe extern "C" fn(*mut u8)>(b"ffb_nop_bytes\0") })
    else {
        return ExitCode::from(3);
    };
    match mode {
        "stream" => {
            // Raw fds 0 and 1: no buffering, no line discipline.
            let mut buf = vec![0u8; 8 + MAX_PAYLOAD];
            while let Ok(len) = read_msg(0, &mut buf) {
                if len == 0 {
                    unsafe { nop() };
                } else {
                    unsafe { nop_bytes(buf[8..].as_mut_ptr()) };
                }
                if write2(1, &buf[..8 + len], &[]).is_err() {
                    break;
                }
            }
        }
        "futex" | "spin" => unsafe {
            let spin = mode == "spin";
            let stdin = File::from_raw_fd(0);
            let Ok(base) = map_shared(stdin.as_raw_fd()) else {
                return ExitCode::from(3);
            };
            let req = &*(base.add(FUTEX_REQ) as *const AtomicU32);
            let resp = &*(base.add(FUTEX_RESP) as *const AtomicU32);
            let len_word = &*(base.add(FUTEX_LEN) as *const AtomicU64);
            let child_parked = &*(base.add(CHILD_PARKED) as *const AtomicU32);
            let host_parked = &*(base.add(HOST_PARKED) as *const AtomicU32);
            let mut seen = 0;
            loop {
                if spin {
                    spin_until(|| req.load(SeqCst) != seen);
                }
                while req.load(SeqCst) == seen {
                    child_parked.store(1, SeqCst);
                    if req.load(SeqCst) == seen {
                        futex(req, libc::FUTEX_WAIT, seen);
                    }
                    child_parked.store(0, SeqCst);
                }
                seen = req.load(SeqCst);
                if len_word.load(SeqCst) == 0 {
                    nop();
                } else {
                    nop_bytes(base.add(FUTEX_DATA));
                }
                resp.store(seen, SeqCst);
                if !spin || host_parked.load(SeqCst) != 0 {
                    futex(resp, libc::FUTEX_WAKE, 1);
                }
            }
        },
        _ => return ExitCode::from(2),
    }
    ExitCode::SUCCESS
}
