//! `ffb sql` beside the `sqlite3` shell on the same 100k-row query of the
//! same database file (the table of [`crate::fetch`], written once to
//! `target/bench/sqlite-100k.db`): `--json` beside `sqlite3 -json`, `--csv`
//! beside `sqlite3 -csv -header`. Whole processes, interleaved, output to
//! a drained pipe; every run's output is checked for all its rows after the
//! clock stops.
//!
//! Without the `sqlite3` shell (Debian package `sqlite3`, which
//! `scripts/setup.sh` installs) the step says so on stderr and records
//! nothing.

use std::path::Path;
use std::process::Command;

use crate::command::{self, at_least_lines};
use crate::fetch::{write_table, ROWS, SELECT};
use crate::plan::Plan;
use crate::progress;
use crate::report::Report;

/// The database file the commands read.
const DB: &str = "target/bench/sqlite-100k.db";

/// A check for a JSON document whose rows are at `rows` (a JSON pointer):
/// exactly [`ROWS`] of them.
fn json_rows(rows: &'static str) -> impl Fn(&[u8]) -> Result<(), String> {
    move |out| {
        let doc: serde_json::Value =
            serde_json::from_slice(out).map_err(|e| format!("not JSON: {e}"))?;
        let n = doc.pointer(rows).and_then(|r| r.as_array()).map(Vec::len);
        if n != Some(ROWS as usize) {
            return Err(format!("{n:?} rows at {rows:?}, not {ROWS}"));
        }
        Ok(())
    }
}

/// The step: see the module docs.
pub fn measure(r: &mut Report, plan: &Plan) -> Result<(), String> {
    if !command::installed("sqlite3") {
        eprintln!(
            "ffb-bench: ffb sql vs sqlite3 rows skipped: no sqlite3 shell (Debian package sqlite3; scripts/setup.sh installs it)"
        );
        return Ok(());
    }
    progress::step("ffb sql vs the sqlite3 shell");
    let db = Path::new(DB);
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    write_table(db)?;
    let ffb = command::ffb()?;
    let ffb_cmd = |format: &str| {
        let mut c = Command::new(&ffb);
        c.args(["sql", "--bridge-mode", "--db", DB, format, SELECT]);
        c
    };
    let shell_cmd = |mode: &[&str]| {
        let mut c = Command::new("sqlite3");
        c.args(mode).args([DB, SELECT]);
        c
    };
    let (mut ffb_json, mut shell_json, mut ffb_csv, mut shell_csv) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let csv_lines = at_least_lines(ROWS + 1);
    for _ in 0..(if plan.quick { 3 } else { 9 }) {
        ffb_json.push(command::timed(&mut ffb_cmd("--json"), json_rows("/rows"))?);
        shell_json.push(command::timed(&mut shell_cmd(&["-json"]), json_rows(""))?);
        ffb_csv.push(command::timed(&mut ffb_cmd("--csv"), &csv_lines)?);
        shell_csv.push(command::timed(
            &mut shell_cmd(&["-csv", "-header"]),
            &csv_lines,
        )?);
    }
    const CMD: &str = "whole process, stdout to a drained pipe, medians of interleaved runs";
    let rows = [
        (
            "sqlite_ffb_json_100k",
            "sqlite_cli_json",
            None,
            format!("ffb sql --bridge-mode --db {DB} --json '{SELECT}' (100k rows)"),
            ffb_json,
        ),
        (
            "sqlite_shell_json_100k",
            "sqlite_cli_json",
            Some("sqlite3 -json"),
            format!("sqlite3 -json {DB} '{SELECT}'"),
            shell_json,
        ),
        (
            "sqlite_ffb_csv_100k",
            "sqlite_cli_csv",
            None,
            format!("ffb sql --bridge-mode --db {DB} --csv '{SELECT}'"),
            ffb_csv,
        ),
        (
            "sqlite_shell_csv_100k",
            "sqlite_cli_csv",
            Some("sqlite3 -csv"),
            format!("sqlite3 -csv -header {DB} '{SELECT}'"),
            shell_csv,
        ),
    ];
    for (name, group, mech, what, samples) in rows {
        r.timed(name, group, mech, CMD, &what, samples);
    }
    Ok(())
}
