//! The circumstances of a run, recorded beside its figures: the command, how
//! it was built, the machine, the load average and when it ran.

use std::time::Instant;

use serde_json::json;

use crate::plan::Plan;
use crate::procfs::clock_tick;

/// What is recorded as the run starts.
pub struct Start {
    at: Instant,
    utc: String,
    load: String,
}

impl Start {
    pub fn now() -> Start {
        Start {
            at: Instant::now(),
            utc: utc_now(),
            load: loadavg(),
        }
    }
}

/// Enough to rerun the measurement and to judge how quiet the machine was.
pub struct Context {
    /// This process's own command line.
    pub command: Vec<String>,
    /// The `scripts/bench.sh` command line, which the script passes in
    /// `FFB_BENCH_SCRIPT` (as it does the build and toolchain).
    pub script: Option<String>,
    pub started_utc: String,
    /// The build commands, one a line in `FFB_BENCH_BUILD`.
    pub build: Vec<String>,
    pub toolchain: Option<String>,
    /// Seconds the whole run took.
    pub elapsed: f64,
    /// The load average before and after: a busy machine shows here.
    pub load_start: String,
    pub load_end: String,
    /// Kernel, CPUs, memory and clock tick, as JSON (reported as is).
    pub machine: serde_json::Value,
    /// What [`Plan::describe`] says.
    pub plan_text: String,
}

impl Context {
    /// The context of the run that began at `start`, as it ends now.
    pub fn new(start: Start, plan: &Plan) -> Context {
        let load_end = loadavg();
        let elapsed = start.at.elapsed().as_secs_f64();
        Context {
            command: std::env::args().collect(),
            script: std::env::var("FFB_BENCH_SCRIPT").ok(),
            build: std::env::var("FFB_BENCH_BUILD")
                .map(|s| s.lines().map(str::to_string).collect())
                .unwrap_or_default(),
            toolchain: std::env::var("FFB_BENCH_TOOLCHAIN").ok(),
            started_utc: start.utc,
            elapsed,
            load_start: start.load,
            load_end,
            machine: machine(),
            plan_text: plan.describe(),
        }
    }
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
    // SAFETY: sysconf only reads a system figure; it has no pointer
    // arguments and no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    json!({
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpus_online": online,
        "cpu_model": cpu,
        "mem_gib": (mem_kib / (1024.0 * 1024.0)).round(),
        "clock_ticks_per_s": clock_tick(),
    })
}

/// Now as RFC 3339 UTC (the audit log's format).
fn utc_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
