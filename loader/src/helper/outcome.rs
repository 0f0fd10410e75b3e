//! How a helper ends: the host's reasons for killing one, reaping it
//! through the fork server's status pipe, and turning its wait status into
//! the [`Error`] every later call on it gets.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ffb_contract::sys::poll_readable;
use ffb_contract::wire::ExitReport;
use ffb_policy::syscalls::display_name;

use super::Helper;
use crate::error::{signal_name, Error, ErrorKind};

/// Why the host killed a helper; it decides the error over the wait status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KillReason {
    Violation { nr: i64, args: [u64; 6] },
    Timeout,
    Protocol,
    Dropped,
}

/// How long the host waits, on a failure that looks like the helper's
/// fault, for the helper to turn out to have ended instead. A helper that
/// exits from another thread while it answers tears down in microseconds;
/// this is a bound for a loaded machine, paid only on the failure path.
pub(super) const DEATH_GRACE: Duration = Duration::from_millis(200);

impl Helper {
    /// Kills the helper for breaking the protocol and returns the error
    /// every later call gets. A helper that has ended (or ends within
    /// [`DEATH_GRACE`]) is reported as it ended instead: a dying helper can
    /// look like one breaking the protocol, and dead is what it is.
    pub(super) fn protocol(&mut self, message: String) -> Error {
        if self.killed.is_none() && self.ends_within(DEATH_GRACE) {
            return self.reap();
        }
        self.kill(KillReason::Protocol);
        self.reap();
        let e = Error::new(ErrorKind::Protocol, message);
        self.ended = Some(e.clone());
        e
    }

    /// Whether the helper has ended, or ends within `grace` (its pidfd turns
    /// readable once every thread of it is gone).
    pub(super) fn ends_within(&self, grace: Duration) -> bool {
        self.ended.is_some()
            || poll_readable(
                &[Some(self.pidfd.as_raw_fd())],
                Some(Instant::now() + grace),
            )[0]
    }

    /// Kills the helper (with its whole process group) and records why.
    pub(super) fn kill(&mut self, reason: KillReason) {
        if self.killed.is_none() {
            self.killed = Some(reason);
        }
        // While the helper lives, its pid is its process group's id.
        if !poll_readable(&[Some(self.pidfd.as_raw_fd())], Some(Instant::now()))[0] {
            // SAFETY: kill takes a process group and a signal, and touches no
            // memory; the pidfd was not readable, so the helper (the group's
            // leader, unreaped) still holds the id.
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        }
        // SAFETY: pidfd_send_signal takes a pidfd, a signal, no siginfo
        // (null) and no flags; a pidfd cannot name a reused pid.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                0,
                0,
            )
        };
    }

    /// Waits for the fork server's report of how the helper ended and turns it
    /// into an error. Idempotent.
    pub(super) fn reap(&mut self) -> Error {
        if let Some(e) = &self.ended {
            return e.clone();
        }
        // The fork server writes its report as soon as it reaps the helper.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut report = [0u8; ExitReport::LEN];
        let mut got = 0;
        while got < ExitReport::LEN {
            if !poll_readable(&[Some(self.status_pipe.as_raw_fd())], Some(deadline))[0] {
                break;
            }
            // SAFETY: reads at most `LEN - got` bytes into the rest of the
            // live report buffer.
            let n = unsafe {
                libc::read(
                    self.status_pipe.as_raw_fd(),
                    report[got..].as_mut_ptr().cast(),
                    ExitReport::LEN - got,
                )
            };
            if n <= 0 {
                break;
            }
            got += n as usize;
        }
        let error = if got == ExitReport::LEN {
            self.classify(ExitReport::decode(&report))
        } else {
            Error::new(
                ErrorKind::Crashed {
                    signal: "SIGKILL".into(),
                },
                "the helper's fork server ended before reporting how the helper ended",
            )
        };
        self.ended = Some(error.clone());
        error
    }

    /// The error for a helper that ended as `report` says: the host's own
    /// reason for killing it first, then what the wait status says. A
    /// `SIGXCPU` (or the `SIGKILL` one second after it) is the CPU limit only
    /// when the helper's CPU time really reached the limit; otherwise the
    /// extension sent it to itself, and it is a signal like any other.
    fn classify(&self, report: ExitReport) -> Error {
        let status = report.status;
        match self.killed {
            Some(KillReason::Violation { nr, .. }) => {
                let syscall = display_name(nr);
                return Error::new(
                    ErrorKind::PolicyViolation {
                        syscall: syscall.clone(),
                        nr,
                    },
                    format!(
                        "the extension called {syscall} (nr {nr}), which policy '{}' forbids; the helper was killed",
                        self.policy.name
                    ),
                );
            }
            Some(KillReason::Timeout) => {
                return Error::new(
                    ErrorKind::Timeout,
                    "the call timed out; the helper was killed",
                )
            }
            Some(KillReason::Protocol) => {
                return Error::new(
                    ErrorKind::Protocol,
                    "the helper broke the protocol and was killed",
                )
            }
            Some(KillReason::Dropped) | None => {}
        }
        if libc::WIFEXITED(status) {
            let code = libc::WEXITSTATUS(status);
            return Error::new(
                ErrorKind::Exited { code },
                format!("the helper exited with code {code} during the call"),
            );
        }
        let sig = if libc::WIFSIGNALED(status) {
            libc::WTERMSIG(status)
        } else {
            0
        };
        // The kernel checks RLIMIT_CPU against tick-sampled time, while
        // wait4 reports the scheduler's precise time, which runs a few
        // percent lower: allow 100 ms plus 5 % of the limit for the two to
        // disagree. A SIGXCPU raised by the extension itself is a signal
        // unless it happens that close to the limit.
        let limit_us = self
            .policy
            .limits
            .cpu_seconds
            .max(1)
            .saturating_mul(1_000_000);
        let slack = |us: u64| us.saturating_sub(100_000 + us / 20);
        let reached = match sig {
            libc::SIGXCPU => report.cpu_us >= slack(limit_us),
            libc::SIGKILL => report.cpu_us >= slack(limit_us.saturating_add(1_000_000)),
            _ => false,
        };
        if reached {
            return Error::new(
                ErrorKind::ResourceLimit,
                format!(
                    "the helper hit its CPU limit ({}; {:.2} s of CPU, limit {} s)",
                    signal_name(sig),
                    report.cpu_us as f64 / 1e6,
                    self.policy.limits.cpu_seconds
                ),
            );
        }
        let name = signal_name(sig);
        let message = if sig == libc::SIGXCPU {
            // Said, since SIGXCPU usually means the limit: this one did not.
            format!(
                "the helper died from {name}, after {:.2} s of CPU (below its {} s limit: not the CPU limit)",
                report.cpu_us as f64 / 1e6,
                self.policy.limits.cpu_seconds
            )
        } else {
            format!("the helper died from {name}")
        };
        Error::new(
            ErrorKind::Crashed {
                signal: name.clone(),
            },
            message,
        )
    }
}
