//! The seccomp monitor: the host's answers to the helper's user
//! notifications (the syscalls its filter routes to the host), the
//! verdicts' audit, and learn mode's recording.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use ffb_policy::errno::errno_name;
use ffb_policy::sandbox::{is_supervised, is_thread_clone, supervised_lock_call, Phase, Verdict};

use super::lock_supervisor::LockAnswer;
use super::outcome::KillReason;
use super::remote_memory::read_memory;
use super::Helper;
use crate::audit::AuditEvent;

impl Helper {
    /// Answers every pending seccomp notification. The kernel wrote these;
    /// nothing in them comes from the extension's memory.
    pub(super) fn answer_notifications(&mut self) {
        let Some(listener) = self.listener.as_ref().map(|l| l.as_raw_fd()) else {
            return;
        };
        while has_notification(listener) {
            let req = match receive(listener) {
                Ok(req) => req,
                Err(e) => {
                    // ENOENT: the thread died before we looked. Anything else: the
                    // listener is broken, so the helper cannot be supervised.
                    if e.raw_os_error() != Some(libc::ENOENT) {
                        self.kill(KillReason::Protocol);
                    }
                    return;
                }
            };
            let nr = req.data.nr as i64;
            let args = req.data.args;
            let mut resp = libc::seccomp_notif_resp {
                id: req.id,
                val: 0,
                error: 0,
                flags: 0,
            };
            let threads_before = Cell::new(None);
            if is_thread_clone(nr, &args) {
                if let Some(pending) = self.pending_clone.take() {
                    pending.settle(self.pid, req.pid as i32);
                }
            }
            if nr == libc::SYS_connect && self.policy.supervises_connect() && self.learn.is_none() {
                // Never CONTINUE: the host makes the connect (broker.rs).
                resp.error = self.broker_connect(&req);
                // SAFETY: SEND reads one seccomp_notif_resp from the live `resp`.
                unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
                continue;
            }
            if let Some(lock) = supervised_lock_call(nr, &args).filter(|_| self.learn.is_none()) {
                // The host checks the file (lock_supervisor.rs).
                match self.answer_lock(&req, lock) {
                    LockAnswer::Respond(resp) => send_response(listener, &resp),
                    LockAnswer::Deferred => {}
                    LockAnswer::Violation => {
                        self.kill(KillReason::Violation { nr, args });
                        return;
                    }
                }
                continue;
            }
            let verdict = self.verdict(&req, &threads_before);
            match verdict {
                Verdict::Continue => {
                    resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
                }
                Verdict::Log => {
                    self.audit_verdict(nr, args, "logged");
                    resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
                }
                Verdict::Fail(errno) => {
                    let action = format!("errno:{}", errno_name(errno).unwrap_or("?"));
                    self.audit_verdict(nr, args, &action);
                    resp.error = -(errno as i32);
                }
                Verdict::Violation => {
                    // No answer: the syscall never runs, and the helper dies.
                    self.kill(KillReason::Violation { nr, args });
                    return;
                }
            }
            // SAFETY: SEND reads one seccomp_notif_resp from the live `resp`.
            let sent = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
            if let (Some(before), true) = (threads_before.get(), sent == 0) {
                if resp.flags != 0 {
                    // A thread let through: it must be counted before the next
                    // clone is answered, or concurrent clones could all pass
                    // the limit.
                    self.pending_clone = Some(PendingClone {
                        caller: req.pid as i32,
                        threads_before: before,
                        at: Instant::now(),
                    });
                }
            }
        }
    }

    /// The policy's verdict on one notification; in learn mode, whatever
    /// the policy would refuse is recorded and let through instead.
    ///
    /// A new thread is counted against the policy's limit: `threads_before`
    /// gets the count it was judged on.
    fn verdict(&self, req: &libc::seccomp_notif, threads_before: &Cell<Option<u64>>) -> Verdict {
        let nr = req.data.nr as i64;
        let args = req.data.args;
        let pid = self.pid;
        let count = || {
            // Unreadable: the helper is gone, and the count does not matter.
            let n = thread_count(pid).unwrap_or(u64::MAX);
            threads_before.set(Some(n));
            n
        };
        let aimed_at_self = |target: i64| {
            if target == 0 {
                // kill(0, ...): the helper's process group, which must still
                // be its own (it could have joined the host's).
                leads_own_group(pid)
            } else if in_pid_namespace(pid) {
                // Targets are ids in the helper's pid namespace: the fork
                // server's shared one, or the policy's own (where it is 1).
                has_namespaced_thread(pid, target)
            } else {
                target == pid as i64
                    || std::path::Path::new(&format!("/proc/{pid}/task/{target}")).exists()
            }
        };
        let verdict = self
            .policy
            .verdict_counting(nr, &args, self.phase, aimed_at_self, count);
        let Some(learned) = &self.learn else {
            return verdict;
        };
        let loading = self.phase == Phase::Loading;
        // Learning never lifts the thread limit, nor lets a call aimed at
        // another process through.
        let supervised = is_thread_clone(nr, &args) || is_supervised(nr, &args);
        if verdict == Verdict::Continue
            || supervised
            || !crate::learn::worth_recording(nr, &args, loading)
        {
            return verdict;
        }
        let thread = req.pid as i32;
        let cwd = std::fs::read_link(format!("/proc/{thread}/cwd")).ok();
        learned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(nr, &args, cwd, |addr, len| read_memory(thread, addr, len));
        Verdict::Continue
    }

    /// Writes a syscall the host answered other than "continue" to the
    /// audit log, if there is one.
    pub(super) fn audit_verdict(&self, nr: i64, args: [u64; 6], action: &str) {
        if let Some(audit) = &self.audit {
            audit.record(&AuditEvent {
                event: "violation",
                function: None,
                syscall: Some((nr, args)),
                action,
                pid: self.pid,
                detail: None,
            });
        }
    }
}

/// Answers a notification. An answer the kernel refuses (the notification
/// was withdrawn: the thread died or was interrupted) needs nothing more.
pub(super) fn send_response(listener: RawFd, resp: &libc::seccomp_notif_resp) {
    // SAFETY: SEND reads one seccomp_notif_resp from the live `resp`.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, resp) };
}

/// Takes one notification off the listener.
fn receive(listener: RawFd) -> io::Result<libc::seccomp_notif> {
    // SAFETY: seccomp_notif is plain C data (integers and the syscall's
    // arguments); all zeroes is a valid value, and the kernel requires the
    // buffer zeroed before RECV.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV writes one seccomp_notif into the live `req`.
    if unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(req)
}

/// Whether a notification is waiting on the listener. POLLIN only: a
/// listener whose tasks are all gone reports POLLHUP, and a RECV then would
/// block for good on older kernels.
fn has_notification(listener: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd: listener,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polls the one live pollfd, without waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1 && p.revents & libc::POLLIN != 0
}

/// Whether process `pid` is the leader of its process group (field 5 of
/// /proc/PID/stat, read after the command name's closing parenthesis).
fn leads_own_group(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = stat.rsplit_once(')')?.1;
            rest.split_whitespace().nth(2)?.parse::<i32>().ok()
        })
        .is_some_and(|pgrp| pgrp == pid)
}

/// Whether helper `pid` has a thread whose id in its own pid namespace is `tid`.
fn has_namespaced_thread(pid: i32, tid: i64) -> bool {
    if tid <= 0 {
        return false;
    }
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("NSpid:"))
                    .and_then(|l| l.split_whitespace().last().map(str::to_string))
            })
            .is_some_and(|id| id == tid.to_string())
    })
}

/// Whether process `pid` lives in a pid namespace below the host's: its
/// `NSpid:` line has more than one id. Unreadable (the helper is gone): no,
/// and then no target passes as its own either.
fn in_pid_namespace(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .map(|ids| ids.split_whitespace().count() > 1)
        })
        .unwrap_or(false)
}

/// The number of threads process `pid` runs (`Threads:` in /proc/PID/status).
pub(super) fn thread_count(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// How long the host waits for a thread it let through to appear. A clone
/// that fails after all (memory, pid_max) never makes one; the wait ends here.
const THREAD_APPEARS: Duration = Duration::from_millis(5);

/// A clone the host let through whose thread may not exist yet.
pub(super) struct PendingClone {
    caller: i32,
    threads_before: u64,
    at: Instant,
}

impl PendingClone {
    /// Before a clone by thread `caller` of `helper` is counted: waits until
    /// this clone has made its thread, so that no number of threads cloning
    /// at once gets past the limit. It has when its caller clones again (its
    /// clone returned), when the helper runs more threads than it was judged
    /// on, or after [`THREAD_APPEARS`].
    fn settle(self, helper: i32, caller: i32) {
        if self.caller == caller {
            return;
        }
        while self.at.elapsed() < THREAD_APPEARS
            && thread_count(helper).is_some_and(|n| n <= self.threads_before)
        {
            std::thread::yield_now();
        }
    }
}
