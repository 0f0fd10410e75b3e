//! `/proc` observers: what this process holds (fds, children, arena
//! mappings) and the state of other processes, for tests that assert that
//! nothing leaks and that ended helpers are really gone.

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// The open file descriptors of this process with their `readlink`
/// targets (e.g. `socket:[1234]`, `/memfd:ffb-arena (deleted)`), sorted by
/// fd.
///
/// The directory fd used to list `/proc/self/fd` is closed before the
/// links are read, so it does not appear in the result.
pub fn open_fds() -> Vec<(i32, String)> {
    let fds: Vec<i32> = fs::read_dir("/proc/self/fd")
        .expect("ffb-tests: cannot read /proc/self/fd")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    let mut out: Vec<(i32, String)> = fds
        .into_iter()
        .filter_map(|fd| {
            fs::read_link(format!("/proc/self/fd/{fd}"))
                .ok()
                .map(|t| (fd, t.to_string_lossy().into_owned()))
        })
        .collect();
    out.sort();
    out
}

/// Number of lines in `/proc/self/maps` that contain `memfd:`, i.e. the
/// memfd-backed mappings (shared arenas) this process currently holds.
pub fn memfd_mappings() -> usize {
    fs::read_to_string("/proc/self/maps")
        .expect("ffb-tests: cannot read /proc/self/maps")
        .lines()
        .filter(|l| l.contains("memfd:"))
        .count()
}

/// The fields of `/proc/PID/stat` the tests look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// The parent's pid.
    pub ppid: i32,
    /// The one-letter state: `R`, `S`, `Z` for a zombie, `X` for dead, ...
    pub state: char,
    /// The command name (at most 15 bytes; may hold spaces and parentheses).
    pub comm: String,
    /// When the process started, in clock ticks since boot: with the pid it
    /// names one process, even after the pid is reused.
    pub start_time: u64,
}

impl ProcStat {
    /// Whether the process has exited: a zombie runs no code, it only waits
    /// for whoever is now its parent to reap it.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// The stat of process `pid`, or `None` if there is no such process (it may
/// exit between being listed and being read).
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether process `pid` is gone or dead (see [`ProcStat::is_dead`]).
pub fn has_ended(pid: i32) -> bool {
    proc_stat(pid).is_none_or(|s| s.is_dead())
}

/// Parses `pid (comm) state ppid ...`. `comm` may itself contain spaces and
/// parentheses, so the fields are counted after the *last* `)`.
fn parse_stat(stat: &str) -> Option<ProcStat> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state), rest[1] field 4 (ppid), rest[19] field 22
    // (starttime).
    Some(ProcStat {
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        comm,
        start_time: rest.get(19)?.parse().ok()?,
    })
}

/// Every process on the system with its stat, in no particular order.
pub fn processes() -> Vec<(i32, ProcStat)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, proc_stat(pid)?)))
        .collect()
}

/// Every process whose parent is `ppid`: `(pid, state, comm)`, sorted by
/// pid. Only thread-group leaders are listed (threads are not children).
pub fn children_of(ppid: i32) -> Vec<(i32, char, String)> {
    let mut out: Vec<_> = processes()
        .into_iter()
        .filter(|(_, s)| s.ppid == ppid)
        .map(|(pid, s)| (pid, s.state, s.comm))
        .collect();
    out.sort();
    out
}

/// Every process whose parent is this process (see [`children_of`]).
pub fn child_processes() -> Vec<(i32, char, String)> {
    children_of(std::process::id() as i32)
}

/// Process `pid`'s id in its innermost pid namespace (the last of its
/// `NSpid:` ids): what the helper itself calls its pid, and what it must be
/// given to name itself.
pub fn namespaced_pid(pid: i32) -> Option<i64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// The namespace of kind `kind` (`net`, `pid`, `mnt`, `ipc`, `user`) that
/// process `pid` is in, as `/proc/PID/ns/KIND` names it (`net:[4026...]`).
pub fn namespace_of(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{kind}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// The `comm` of the init of a fork server's shared pid namespace
/// (`shim/src/shared_namespaces.rs`): a child of the fork server for its
/// whole life, and not a helper.
pub const PID_NAMESPACE_INIT: &str = "ffb-pid-init";

/// The helpers of the fork server that serves `shim` in this process (live
/// ones and ones not yet reaped; not its pid namespace's init), sorted; none
/// if no fork server runs.
pub fn fork_server_children(shim: &Path) -> Vec<i32> {
    match ffb_loader::fork_server_pid(shim) {
        Some(server) => children_of(server as i32)
            .into_iter()
            .filter(|(_, _, comm)| comm != PID_NAMESPACE_INIT)
            .map(|(pid, _, _)| pid)
            .collect(),
        None => Vec::new(),
    }
}

/// A pidfd for `pid`: signals through it reach that process, never one that
/// reused its pid. An error if the process is gone.
pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned `fd`, a new descriptor nothing else
    // owns, so the OwnedFd may close it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `signal` through `pidfd`; whether the kernel delivered it (not if
/// the process has already been reaped).
pub fn pidfd_signal(pidfd: &OwnedFd, signal: i32) -> bool {
    // SAFETY: the fd is a live pidfd borrowed for the call; the null siginfo
    // means the kernel reads no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0
}

/// SIGKILLs process `pid` through a pidfd, so a pid reused between being
/// listed and being killed is never hit; whether the signal was delivered.
pub fn pidfd_kill(pid: i32) -> bool {
    pidfd_open(pid).is_ok_and(|fd| pidfd_signal(&fd, libc::SIGKILL))
}

/// Number of entries in directory `dir` (`/proc/PID/fd`, `/proc/self/task`),
/// or `usize::MAX` if it cannot be read, so that a vanished process never
/// compares equal to a count taken while it lived.
fn entries_in(dir: &str) -> usize {
    fs::read_dir(dir).map_or(usize::MAX, |d| d.count())
}

/// Everything this process and its fork server hold that an ended helper
/// could leave behind, for the leak tests to compare before and after.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    /// This process's open fds ([`open_fds`]).
    pub fds: Vec<(i32, String)>,
    /// This process's children other than the fork server.
    pub children: Vec<(i32, char, String)>,
    /// Its memfd mappings ([`memfd_mappings`]).
    pub memfds: usize,
    /// The fork server's helpers, live or not yet reaped.
    pub helpers: Vec<i32>,
    /// The fork server's open fds (it keeps one status pipe per live helper).
    pub server_fds: usize,
    /// This process's threads (the drains of capped extension output among
    /// them).
    pub threads: usize,
}

impl Snapshot {
    /// Takes one for the fork server that serves `shim`.
    ///
    /// # Panics
    /// If no fork server runs for `shim`.
    pub fn take(shim: &Path) -> Snapshot {
        let server = ffb_loader::fork_server_pid(shim).expect("the fork server runs") as i32;
        Snapshot {
            fds: open_fds(),
            children: child_processes()
                .into_iter()
                .filter(|(pid, _, _)| *pid != server)
                .collect(),
            memfds: memfd_mappings(),
            helpers: fork_server_children(shim),
            server_fds: entries_in(&format!("/proc/{server}/fd")),
            threads: entries_in("/proc/self/task"),
        }
    }

    /// The first snapshot for which `done` holds within `patience` (the fork
    /// server reaps asynchronously), else the last one taken.
    pub fn settled(shim: &Path, patience: Duration, done: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let deadline = Instant::now() + patience;
        loop {
            let s = Snapshot::take(shim);
            if done(&s) || Instant::now() >= deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts that this process holds exactly what it held at `baseline`,
    /// naming the first thing that differs, and that no child is a zombie.
    #[track_caller]
    pub fn assert_unchanged_since(&self, baseline: &Snapshot) {
        let zombies: Vec<_> = self.children.iter().filter(|c| c.1 == 'Z').collect();
        assert!(zombies.is_empty(), "zombies: {zombies:?}");
        assert_eq!(self.fds, baseline.fds, "open fds");
        assert_eq!(self.children, baseline.children, "child processes");
        assert_eq!(self.memfds, baseline.memfds, "memfd mappings");
        assert_eq!(self.helpers, baseline.helpers, "helpers left behind");
        assert_eq!(self.server_fds, baseline.server_fds, "fork server fds");
        assert_eq!(self.threads, baseline.threads, "threads");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_handles_odd_comm() {
        let s = "123 (a) b) (c) S 456 123 123 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 0 0";
        assert_eq!(
            parse_stat(s),
            Some(ProcStat {
                ppid: 456,
                state: 'S',
                comm: "a) b) (c".to_string(),
                start_time: 98765,
            })
        );
        assert_eq!(parse_stat("123 (a) S 456"), None, "too few fields");
    }

    #[test]
    fn proc_observers_work() {
        assert!(open_fds().iter().any(|(fd, _)| *fd <= 2));
        let _ = child_processes();
        let _ = memfd_mappings();
        let me = proc_stat(std::process::id() as i32).expect("this process");
        assert!(!me.is_dead());
        assert!(!has_ended(std::process::id() as i32));
    }

    #[test]
    fn pidfd_reaches_a_live_process_and_not_a_reaped_one() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawning sleep");
        let pid = child.id() as i32;
        let pidfd = pidfd_open(pid).expect("a pidfd for a live child");
        assert!(pidfd_kill(pid), "SIGKILL delivered to a live child");
        let status = child.wait().expect("reaping the child");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(
            !pidfd_signal(&pidfd, 0),
            "a pidfd whose process was reaped delivers nothing"
        );
    }
}
