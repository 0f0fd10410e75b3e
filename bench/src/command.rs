//! Whole commands timed beside each other: `ffb sql` beside the database's
//! own shell (`sqlite3`, `psql -A`), each run to completion with its stdout
//! drained through a pipe, their output checked after the clock stops.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::measure::ns_since;

/// The `ffb` binary built beside this one.
pub fn ffb() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding ffb-bench: {e}"))?;
    let ffb = exe.with_file_name("ffb");
    if !ffb.is_file() {
        return Err(format!(
            "{} is missing: build the workspace's binaries first",
            ffb.display()
        ));
    }
    Ok(ffb)
}

/// Whether `program` runs (`program --version` exits 0), for a baseline
/// shell that may not be installed.
pub fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` to completion with its stdout drained; the wall time of the
/// whole process in ns. It must exit 0, and `check` must accept what it
/// printed (checked after the clock stops).
pub fn timed(
    cmd: &mut Command,
    check: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<f64, String> {
    let t = Instant::now();
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let ns = ns_since(t);
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    check(&out.stdout).map_err(|why| format!("{cmd:?}: {why}"))?;
    Ok(ns)
}

/// A check for [`timed`]: at least `lines` lines.
pub fn at_least_lines(lines: u64) -> impl Fn(&[u8]) -> Result<(), String> {
    move |out| {
        let n = out.iter().filter(|&&b| b == b'\n').count() as u64;
        if n < lines {
            return Err(format!("printed {n} lines, not {lines}+"));
        }
        Ok(())
    }
}
