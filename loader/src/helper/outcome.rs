//! How a helper ends: the host's reasons for killing one, reaping it
//! through the fork server's status pipe, and turning its wait status into
//! the [`Error`] every later call on it gets.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ffb_contract::sys::poll_readable;
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

impl Helper {
    /// Kills the helper for breaking the protocol and returns the error
    /// every later call gets.
    pub(super) fn protocol(&mut self, message: String) -> Error {
        self.kill(KillReason::Protocol);
        self.reap();
        let e = Error::new(ErrorKind::Protocol, message);
        self.ended = Some(e.clone());
        e
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
        // The fork server writes the wait status as soon as it reaps the helper.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut status = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            if !poll_readable(&[Some(self.status_pipe.as_raw_fd())], Some(deadline))[0] {
                break;
            }
            // SAFETY: reads at most `4 - got` bytes into the rest of the
            // live 4-byte buffer.
            let n = unsafe {
                libc::read(
                    self.status_pipe.as_raw_fd(),
                    status[got..].as_mut_ptr().cast(),
                    4 - got,
                )
            };
            if n <= 0 {
                break;
            }
            got += n as usize;
        }
        let error = if got == 4 {
            self.classify(i32::from_ne_bytes(status))
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

    /// The error for a helper that ended with wait status `status`: the
    /// host's own reason for killing it first, then what the status says.
    fn classify(&self, status: i32) -> Error {
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
        if sig == libc::SIGXCPU || sig == libc::SIGXFSZ {
            return Error::new(
                ErrorKind::ResourceLimit,
                format!(
                    "the helper hit a resource limit ({}; CPU limit {} s)",
                    signal_name(sig),
                    self.policy.limits.cpu_seconds
                ),
            );
        }
        let name = signal_name(sig);
        Error::new(
            ErrorKind::Crashed {
                signal: name.clone(),
            },
            format!("the helper died from {name}"),
        )
    }
}
