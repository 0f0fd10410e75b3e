//! What the kernel says about a process: its CPU time and the CPU it last
//! ran on (`/proc/<pid>/stat`), the clock tick, and the caller's CPU.

use std::str::FromStr;

/// The clock ticks per second `/proc/<pid>/stat` counts in.
pub fn clock_tick() -> f64 {
    // SAFETY: sysconf only reads a system constant; it has no pointer
    // arguments and no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of `pid`, in clock ticks.
pub fn cpu_ticks(pid: i32) -> Result<u64, String> {
    let stat = Stat::read(pid)?;
    Ok(stat.field::<u64>(14)? + stat.field::<u64>(15)?)
}

/// The CPU `pid` last ran on (field 39 of stat(5)).
pub fn last_cpu(pid: i32) -> Option<i32> {
    Stat::read(pid).ok()?.field(39).ok()
}

/// The CPU this thread runs on (-1 if unknown).
pub fn current_cpu() -> i32 {
    // SAFETY: sched_getcpu takes no arguments and only reports which CPU the
    // calling thread is on.
    unsafe { libc::sched_getcpu() }
}

/// The fields of `/proc/<pid>/stat` after the command name, which may hold
/// spaces and parentheses itself (hence the split at the last ')').
struct Stat {
    path: String,
    fields: Vec<String>,
}

impl Stat {
    fn read(pid: i32) -> Result<Stat, String> {
        let path = format!("/proc/{pid}/stat");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
        let fields = text
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        Ok(Stat { path, fields })
    }

    /// Field `i` of stat(5), counted from 1; the first after the ')' is field 3.
    fn field<T: FromStr>(&self, i: usize) -> Result<T, String> {
        self.fields
            .get(i - 3)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{}: no field {i}", self.path))
    }
}
