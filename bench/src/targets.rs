//! The speed targets and their verdicts: one table, in id order (T1 first),
//! each target judged on one row of the report.

use crate::format::{fmt_rate, fmt_ratio, human};
use crate::plan::SHARED_LEN;
use crate::report::{bytes_per_s, Report};
use Bound::{AtLeast, AtMost};
use Figure::*;

/// A target, judged.
pub struct Target {
    pub id: String,
    pub row: String,
    pub goal: String,
    pub figure: f64,
    pub limit: f64,
    pub at_most: bool,
    /// How the figure reads ("171 ns", "48.2x the socket").
    pub shown: String,
    pub basis: String,
}

impl Target {
    pub fn met(&self) -> bool {
        if self.at_most {
            self.figure <= self.limit
        } else {
            self.figure >= self.limit
        }
    }

    /// "met" or "missed".
    pub fn verdict(&self) -> &'static str {
        if self.met() {
            "met"
        } else {
            "missed"
        }
    }
}

/// How a target's figure is made from the medians, and how it reads.
#[derive(Clone, Copy)]
enum Figure {
    /// The row's median in ns: "152 ns".
    Latency,
    /// The row's median, a percentage: "0.50 %".
    Percent,
    /// The row's median, beside that of another row: "63 µs (2x memcpy 36 µs)".
    Beside(&'static str, &'static str),
    /// Another row's median ÷ this one's: "306x the socket".
    Times(&'static str, &'static str),
    /// This row's median ÷ that of a futex row, both shown, and the hot
    /// futex round trip if `true`.
    VersusFutex(&'static str, bool),
    /// Another row's median ÷ this one's, shown as both throughputs.
    Rates(&'static str, Rate),
    /// This row's median ÷ another's, both shown: "1.3x in-process (40 ms vs 31 ms)".
    Over(&'static str, &'static str),
}

/// A throughput made from a median.
#[derive(Clone, Copy)]
enum Rate {
    /// This many bytes per median.
    Bytes(usize),
    /// One call per median.
    Calls,
}

impl Rate {
    fn show(self, ns: f64) -> String {
        match self {
            Rate::Bytes(n) => fmt_rate(bytes_per_s(n, ns), "B/s"),
            Rate::Calls => fmt_rate(1e9 / ns, "calls/s"),
        }
    }
}

/// A target before it is judged.
struct Goal {
    /// The row it is judged on ([`POLICY_ROWS`]: one target per `--policy`).
    row: &'static str,
    goal: &'static str,
    /// The figure must be at most `limit` (else at least).
    at_most: bool,
    limit: f64,
    figure: Figure,
    basis: &'static str,
}

const fn goal(
    row: &'static str,
    goal: &'static str,
    bound: Bound,
    limit: f64,
    figure: Figure,
    basis: &'static str,
) -> Goal {
    let at_most = matches!(bound, Bound::AtMost);
    Goal {
        row,
        goal,
        at_most,
        limit,
        figure,
        basis,
    }
}

/// Which side of its limit a target's figure must be on.
enum Bound {
    AtMost,
    AtLeast,
}

/// The prefix of the `spawn_policy:SPEC` rows, one per `--policy`.
const POLICY_ROWS: &str = "spawn_policy:";
const BLOCK_TIMED: &str = "block-timed median (no timer overhead)";
const OVER_LOADS: &str = "median over loads";
const CLI_RUNS: &str = "medians of whole processes, interleaved";

/// Every target, in id order.
#[rustfmt::skip]
const GOALS: [Goal; 21] = [
    goal("bridge_null/blk", "hot null call ≤ 0.30 µs", AtMost, 300.0, Latency, BLOCK_TIMED),
    goal("bridge_null/blk", "hot null call ≥ 100x faster than the unix socket", AtLeast, 100.0, Times("socket_null/blk", "the socket"), "block-timed medians of both"),
    goal("helper_idle_cpu", "idle helper uses ≤ 1 % of a core", AtMost, 1.0, Percent, "utime+stime from /proc/<pid>/stat"),
    goal("bridge_idle_wake", "first call after ≥ 10 ms idle ≤ 1.2x the futex baseline", AtMost, 1.2, VersusFutex("futex_idle_wake", true), "per-call medians, interleaved, 12 ms idle before each"),
    goal("bridge_null_load", "null call under full CPU load ≤ 1.5x the futex round trip", AtMost, 1.5, VersusFutex("futex_null_load", false), "per-call medians, interleaved under the same load"),
    goal("bridge_add/blk", "add(i64, i64) ≤ 0.40 µs", AtMost, 400.0, Latency, BLOCK_TIMED),
    goal("bridge_mix4/blk", "mix4(i32, f64, i64, f32) ≤ 0.40 µs", AtMost, 400.0, Latency, BLOCK_TIMED),
    goal("bridge_bytes_1MiB", "1 MiB bytes copied in and back out ≤ 100 µs", AtMost, 100_000.0, Beside("memcpy_2x1MiB", "2x memcpy"), "per-call median"),
    goal("bridge_shared_16MiB", "zero copy 16 MiB ≥ 0.9x memcpy throughput", AtLeast, 0.9, Rates("memcpy_16MiB", Rate::Bytes(SHARED_LEN)), "per-call medians"),
    goal("spawn_warm", "helper start from a warm fork server ≤ 1 ms", AtMost, 1e6, Latency, OVER_LOADS),
    goal(POLICY_ROWS, "policy compile + helper start ≤ 5 ms (issue 3)", AtMost, 5e6, Latency, OVER_LOADS),
    goal("spawn_cold", "first (cold) helper start ≤ 10 ms", AtMost, 1e7, Latency, "one sample"),
    goal("batch_1000", "batch of 1,000 calls ≥ 5x the calls/s of one at a time", AtLeast, 5.0, Rates("single_1000", Rate::Calls), "medians, interleaved"),
    goal("sqlite_fetch_100k", "100k-row x 4-col SQLite SELECT by fetch program ≤ 1.5x in-process libsqlite3 (issue 10)", AtMost, 1.5, Over("sqlite_inproc_100k", "in-process"), "medians of whole scans, interleaved"),
    goal("sqlite_fetch_100k", "the same SELECT ≥ 5x faster by fetch program than one call per cell", AtLeast, 5.0, Times("sqlite_per_cell_100k", "one call per cell"), "medians of whole scans"),
    goal("sqlite_ffb_json_100k", "ffb sql --json no slower than sqlite3 -json, same query and file (issue 10)", AtMost, 1.0, Over("sqlite_shell_json_100k", "sqlite3 -json"), CLI_RUNS),
    goal("sqlite_ffb_csv_100k", "ffb sql --csv no slower than sqlite3 -csv, same query and file (issue 10)", AtMost, 1.0, Over("sqlite_shell_csv_100k", "sqlite3 -csv"), CLI_RUNS),
    goal("pg_bridged_100k", "100k-row PostgreSQL SELECT over the unix socket ≤ 1.1x in-process libpq (issue 10)", AtMost, 1.1, Over("pg_inproc_100k", "in-process"), "medians of whole queries, interleaved"),
    goal("pg_ffb_sql_100k", "ffb sql no slower than psql -A on the same query (issue 10)", AtMost, 1.0, Over("pg_psql_100k", "psql -A"), CLI_RUNS),
    goal("python_add/blk", "hot small Python call (two ints in, an int out) ≤ 3 µs (issue 12)", AtMost, 3000.0, Latency, BLOCK_TIMED),
    goal("python_start_pandas", "Python helper start with pandas imported ≤ 5 ms (issue 12)", AtMost, 5e6, Latency, "median of whole starts"),
];

/// Judges every target on the rows of `r`. A target whose rows were not
/// measured (`--only`, or no PostgreSQL server) is left out, and keeps its
/// id: the others do not move.
pub fn set(r: &mut Report, policies: &[String]) {
    let mut id = 0;
    for goal in &GOALS {
        if goal.row == POLICY_ROWS {
            for spec in policies {
                id += 1;
                judge(r, id, &format!("{POLICY_ROWS}{spec}"), goal);
            }
        } else {
            id += 1;
            judge(r, id, goal.row, goal);
        }
    }
}

impl Figure {
    /// The other row the figure is made with, if any.
    fn other_row(self) -> Option<&'static str> {
        match self {
            Latency | Percent => None,
            Beside(row, _) | Times(row, _) | VersusFutex(row, _) | Rates(row, _) | Over(row, _) => {
                Some(row)
            }
        }
    }
}

/// Records `goal`, judged on `row`, as target `T{id}`, if its rows exist.
fn judge(r: &mut Report, id: usize, row: &str, goal: &Goal) {
    if !r.has(row) || goal.figure.other_row().is_some_and(|o| !r.has(o)) {
        return;
    }
    let v = r.median(row);
    let (figure, shown) = match goal.figure {
        Latency => (v, human(v)),
        Percent => (v, format!("{v:.2} %")),
        Beside(other, what) => (
            v,
            format!("{} ({what} {})", human(v), human(r.median(other))),
        ),
        Times(other, what) => {
            let x = r.median(other) / v;
            (x, format!("{}x {what}", fmt_ratio(x)))
        }
        VersusFutex(futex_row, with_hot) => {
            let futex = r.median(futex_row);
            let hot = if with_hot {
                format!("; futex hot {}", human(r.median("futex_null")))
            } else {
                String::new()
            };
            let x = v / futex;
            let shown = format!(
                "{}x futex ({} vs {}{hot})",
                fmt_ratio(x),
                human(v),
                human(futex)
            );
            (x, shown)
        }
        Over(other, what) => {
            let base = r.median(other);
            let x = v / base;
            (
                x,
                format!("{}x {what} ({} vs {})", fmt_ratio(x), human(v), human(base)),
            )
        }
        Rates(slower_row, rate) => {
            let slower = r.median(slower_row);
            let x = slower / v;
            (
                x,
                format!(
                    "{}x ({} vs {})",
                    fmt_ratio(x),
                    rate.show(v),
                    rate.show(slower)
                ),
            )
        }
    };
    r.targets.push(Target {
        id: format!("T{id}"),
        row: row.into(),
        goal: goal.goal.into(),
        figure,
        limit: goal.limit,
        at_most: goal.at_most,
        shown,
        basis: goal.basis.into(),
    });
}
