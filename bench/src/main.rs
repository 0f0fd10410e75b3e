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
//!
//! One run, in order ([`run`]): the timer, helper start ([`spawn`]), hot calls
//! and batches ([`hot`]), the payload sweep ([`sweep`]), zero copy
//! ([`zero_copy`]), the helper's CPU time and wake-ups ([`idle`]), calls
//! under load ([`load`]); then the database rows (`--only sql` runs just
//! these): a 100k-row SQLite SELECT by fetch program, in process and one
//! call per cell ([`fetch`]), `ffb sql` beside the `sqlite3` shell
//! ([`sql_sqlite`]), a
//! 100k-row PostgreSQL SELECT bridged, in process and `ffb sql` beside
//! `psql -A` ([`sql_postgres`]); then the Python helper's rows (`--only
//! python` runs just these): a hot small call beside in-process CPython,
//! multiprocessing and a MessagePack subprocess, and helper starts
//! ([`python`]); then the targets ([`targets`]) and the
//! report ([`text`], [`json`], [`plot`]).

mod baselines;
mod children;
mod command;
mod context;
mod fetch;
mod fixture;
mod format;
mod hot;
mod idle;
mod json;
mod load;
mod measure;
mod plan;
mod plot;
mod procfs;
mod progress;
mod python;
mod report;
mod spawn;
mod sql_postgres;
mod sql_sqlite;
mod sweep;
mod targets;
mod text;
mod zero_copy;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;

use baselines::{Baselines, InProcess};
use context::{Context, Start};
use fixture::Hot;
use plan::Plan;
use report::Report;

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
    /// Measure only these steps: `sql` is the database rows (SQLite by
    /// fetch program, in process and by command; PostgreSQL), `python` the
    /// Python helper's rows, for working on them. Targets whose rows were not measured are left out.
    #[arg(long, value_enum, value_name = "STEPS")]
    only: Option<Only>,
    /// Internal: serve as a baseline helper (stream or futex).
    #[arg(long, hide = true, value_name = "MODE")]
    baseline_child: Option<String>,
    /// Internal: burn a CPU until killed.
    #[arg(long, hide = true)]
    hog: bool,
}

/// The steps `--only` can pick.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    Sql,
    Python,
}

/// The message of the last panic, for the one-line report in [`main`].
static PANIC: Mutex<Option<String>> = Mutex::new(None);

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => return usage(e),
    };
    if args.hog {
        load::hog();
    }
    if let Some(mode) = &args.baseline_child {
        return baselines::serve(mode, &args.lib);
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
    progress::done();
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

/// Bad usage in one line on stderr (exit 2); `--help` and `--version` as
/// clap prints them (exit 0).
fn usage(e: clap::Error) -> ExitCode {
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
    ExitCode::SUCCESS
}

/// The whole run: every measurement step in order, then the report.
fn run(args: &Args) -> Result<(), String> {
    // Declared first so it is dropped last, after every bridge.
    let _servers = children::ForkServers;
    children::install_signal_handlers();
    let start = Start::now();
    create_output_dirs(args)?;
    let plan = Plan::new(args.calls, args.quick);
    let lib = args.lib.to_string_lossy().into_owned();
    let mut r = Report::default();

    if args.only.is_none() {
        calls(&mut r, &plan, args, &lib)?;
    }
    if args.only.is_none_or(|o| o == Only::Sql) {
        fetch::measure(&mut r, &plan)?;
        sql_sqlite::measure(&mut r, &plan)?;
        sql_postgres::measure(&mut r, &plan)?;
    }
    if args.only.is_none_or(|o| o == Only::Python) {
        python::measure(&mut r, &plan)?;
    }

    targets::set(&mut r, &args.policy);
    let ctx = Context::new(start, &plan);
    progress::done();
    text::print(&r, &ctx);
    write_outputs(args, &r, &ctx, &plan)
}

/// Everything but the database rows: the timer, helper start, hot calls
/// and batches, the payload sweep, zero copy, the helper's CPU time and
/// wake-ups, calls under load.
fn calls(r: &mut Report, plan: &Plan, args: &Args, lib: &str) -> Result<(), String> {
    progress::step("timer and in-process calls");
    measure::timer(r, plan);
    // In-process: the floor any bridge is measured against.
    let inproc = InProcess::load(&args.lib)?;
    spawn::measure(r, plan, lib, &args.policy)?;

    progress::step("hot calls");
    let hot = Hot::load(lib)?;
    let mut baselines = Baselines::start(&args.lib)?;
    hot::calls(r, plan, &inproc, &hot, &mut baselines);
    hot::batches(r, plan, &hot)?;
    sweep::payloads(r, plan, &inproc, &hot, &mut baselines);
    sweep::memcpy_floor(r, plan);
    zero_copy::measure(r, plan, lib, &hot)?;
    let pid = idle::helper_cpu(r, plan, &hot)?;
    idle::first_call(r, plan, &hot, &mut baselines.futex);
    idle::burst(r, plan, &hot, pid);
    load::measure(r, plan, &hot, &mut baselines.futex, &args.lib)?;
    Ok(())
}

/// Creates the folders of `--json` and `--plot` before measuring, so that a
/// bad path fails in a second, not after the run.
fn create_output_dirs(args: &Args) -> Result<(), String> {
    for path in [&args.json, &args.plot].into_iter().flatten() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
    }
    Ok(())
}

/// Writes the `--json` document and draws the `--plot`, if asked for.
fn write_outputs(args: &Args, r: &Report, ctx: &Context, plan: &Plan) -> Result<(), String> {
    if let Some(path) = &args.json {
        let doc = json::document(r, ctx, plan);
        std::fs::write(
            path,
            serde_json::to_string_pretty(&doc).expect("json") + "\n",
        )
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        plot::draw(r, ctx, path).map_err(|e| format!("drawing {}: {e}", path.display()))?;
    }
    Ok(())
}
