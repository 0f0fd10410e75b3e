//! What the suite checks from outside the helper: the host's own state, a
//! bystander making calls on other helpers while the attack runs, victim
//! processes, and the audit log.

use std::fs;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use ffb_loader::{Pool, PoolConfig, Value};
use ffb_tests::procfs::has_ended;
use ffb_tests::{bridge_builder, shim_bin};
use serde_json::Value as Json;

use super::corpus::corpus_lib;

/// A word in the test process that attacks on the host's memory aim at
/// (`process_vm_writev`, `/proc/PID/mem`). Never written by the tests.
pub static SENTINEL: AtomicU64 = AtomicU64::new(0x5e17_1e10_5e17_1e10);

/// A secret a host process holds in its environment, which no helper may
/// see. (Given to an `ffb` child, not set here: changing this process's
/// environment would race with other tests reading theirs.)
pub const SECRET_VAR: &str = "FFB_TEST_SECRET";
pub const SECRET: &str = "hostile-corpus-secret-4b1d";

/// What an attack on the host could change, read from the host's side.
#[derive(Debug, PartialEq, Eq)]
pub struct HostState {
    /// Every resource limit, soft and hard.
    rlimits: Vec<(u64, u64)>,
    nice: i32,
    scheduler: i32,
    process_group: i32,
    session: i32,
    /// Whether `State:` of /proc/self/status says stopped, and its
    /// `TracerPid:` (0: not traced).
    stopped: bool,
    tracer: String,
    environ: Vec<u8>,
    sentinel: u64,
    /// The fork server's pid, and whether it is alive.
    fork_server: (u32, bool),
}

impl HostState {
    pub fn now() -> HostState {
        let rlimits = (0..RESOURCES)
            .map(|r| {
                let mut l = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                // SAFETY: getrlimit writes one rlimit into the live `l`.
                let got = unsafe { libc::getrlimit(r as _, &mut l) };
                assert_eq!(got, 0, "getrlimit {r}");
                (l.rlim_cur, l.rlim_max)
            })
            .collect();
        let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        HostState {
            rlimits,
            // SAFETY: these read the calling process's own attributes.
            nice: unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) },
            // SAFETY: as above.
            scheduler: unsafe { libc::sched_getscheduler(0) },
            // SAFETY: as above.
            process_group: unsafe { libc::getpgrp() },
            // SAFETY: as above.
            session: unsafe { libc::getsid(0) },
            stopped: field("State:").starts_with(['T', 't']),
            tracer: field("TracerPid:"),
            environ: fs::read("/proc/self/environ").expect("/proc/self/environ"),
            sentinel: SENTINEL.load(Ordering::SeqCst),
            fork_server: {
                // The bystanders' pool runs on it, so it has started.
                let pid = ffb_loader::fork_server_pid(&shim_bin()).expect("the fork server runs");
                (pid, !has_ended(pid as i32))
            },
        }
    }
}

/// Linux's resource limits, `RLIMIT_CPU` (0) to `RLIMIT_RTTIME` (15).
const RESOURCES: u32 = 16;

const BYSTANDER_DECLS: &[&str] = &["hostile_sleep_ms(i64) -> i64", "hostile_ping(i64) -> i64"];

/// The pool of well-behaved helpers the bystanders call on (the corpus
/// under `pure`, so the same fork server as the attacks).
fn bystander_pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        Pool::new(
            bridge_builder(corpus_lib(), BYSTANDER_DECLS),
            PoolConfig {
                min_helpers: 1,
                max_helpers: 4,
                idle_timeout: None,
            },
        )
        .expect("the bystander pool")
    })
}

/// Calls on other helpers, in a loop on a thread of its own, for as long as
/// an attack runs: each must come back with its right answer.
pub struct Bystander {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<u64, String>>,
}

impl Bystander {
    /// Starts the loop and returns once its first round has completed, so
    /// that calls are in flight when the attack starts.
    pub fn start() -> Bystander {
        let pool = bystander_pool();
        let stop = Arc::new(AtomicBool::new(false));
        let first = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (stop, first) = (stop.clone(), first.clone());
            move || {
                let mut rounds = 0u64;
                loop {
                    let slept = pool
                        .call("hostile_sleep_ms", &[Value::I64(3)])
                        .map_err(|e| format!("round {rounds}: hostile_sleep_ms: {e}"))?;
                    let pinged = pool
                        .call("hostile_ping", &[Value::I64(rounds as i64)])
                        .map_err(|e| format!("round {rounds}: hostile_ping: {e}"))?;
                    if slept.ret != Value::I64(3) || pinged.ret != Value::I64(rounds as i64 + 1) {
                        return Err(format!(
                            "round {rounds}: wrong answers {slept:?} {pinged:?}"
                        ));
                    }
                    rounds += 1;
                    first.store(true, Ordering::SeqCst);
                    if stop.load(Ordering::SeqCst) {
                        return Ok(rounds);
                    }
                }
            }
        });
        while !first.load(Ordering::SeqCst) && !thread.is_finished() {
            std::thread::sleep(Duration::from_millis(1));
        }
        Bystander { stop, thread }
    }

    /// Stops the loop after one more round and checks every call in it.
    pub fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        let rounds = self
            .thread
            .join()
            .expect("the bystander thread")
            .unwrap_or_else(|e| panic!("a call on another helper was lost during the attack: {e}"));
        assert!(rounds >= 2, "the bystander made {rounds} rounds");
    }
}

/// A `sleep` in a process group of its own, for attacks aimed at another
/// process; killed when dropped.
pub struct Victim(Child);

impl Victim {
    pub fn new() -> Victim {
        use std::os::unix::process::CommandExt;
        Victim(
            Command::new("sleep")
                .arg("60")
                .process_group(0)
                .spawn()
                .expect("sleep"),
        )
    }

    pub fn pid(&self) -> i64 {
        i64::from(self.0.id())
    }

    /// Whether it still runs (and is not stopped).
    pub fn is_unharmed(&self) -> bool {
        ffb_tests::procfs::proc_stat(self.0.id() as i32)
            .is_some_and(|s| matches!(s.state, 'S' | 'R'))
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The audit log's lines, as JSON.
pub fn audit_lines(path: &Path) -> Vec<Json> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

/// Processes on the system named `comm` (a child an attack would have
/// started names itself so).
pub fn processes_named(comm: &str) -> Vec<i32> {
    ffb_tests::procfs::processes()
        .into_iter()
        .filter(|(_, s)| s.comm == comm && !s.is_dead())
        .map(|(pid, _)| pid)
        .collect()
}
