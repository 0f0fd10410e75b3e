//! Starting a helper: the fds and the arena it gets, the request to the fork
//! server, and the handshake until it is ready to serve.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use ffb_contract::spin::AdaptiveSpin;
use ffb_contract::sys::{poll_readable, seqpacket_pair};
use ffb_contract::wire::{
    HelperMessage, LoadFailureKind, SpawnRequest, MAX_HANDSHAKE, WIRE_VERSION,
};
use ffb_policy::sandbox::Phase;

use super::confinement::landlock_spec;
use super::handoff::WAKE_SPIN;
use super::outcome::KillReason;
use super::{Helper, HelperSpec};
use crate::arena::Arena;
use crate::error::{Error, ErrorKind, Result};
use crate::forkserver;

impl Helper {
    /// Starts a helper, takes its seccomp listener, and waits until it has
    /// loaded the library and resolved every function.
    pub fn spawn(spec: &HelperSpec) -> Result<Helper> {
        let mut arena = Arena::create(spec.arena_len)?;
        let memfd = arena.take_memfd().expect("fresh arena has its memfd");
        // SAFETY: eventfd takes an initial value and flags, and touches no memory.
        let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        let wake = owned(wake, "eventfd")?;
        let (control, control_theirs) = control_channel()?;
        let (status_pipe, status_theirs) = status_channel()?;
        let output = open_output(spec.output.as_deref())?;
        // An absolute path spares the helper a getcwd (a loading-phase round
        // trip through the host), and names the directory Landlock must open.
        let library = if spec.library.contains('/') {
            std::fs::canonicalize(&spec.library)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| spec.library.clone())
        } else {
            spec.library.clone()
        };
        let request = SpawnRequest {
            wire_version: WIRE_VERSION,
            landlock: (spec.learn.is_none()).then(|| landlock_spec(&spec.policy, &library)),
            library,
            functions: spec.functions.clone(),
            filter: (*spec.filter).clone(),
            limits: spec.policy.limits.clone(),
            arena_len: arena.len() as u64,
            spin_us: spec.helper_spin_us,
            env: spec.env.clone(),
            namespaces: spec.policy.namespaces.clone(),
            run_as: spec.policy.run_as.clone(),
        };
        let spawned = forkserver::spawn(
            &spec.shim,
            &request,
            [
                control_theirs.as_raw_fd(),
                wake.as_raw_fd(),
                memfd.as_raw_fd(),
                output.as_raw_fd(),
                status_theirs.as_raw_fd(),
            ],
        )?;
        drop((control_theirs, memfd, output, status_theirs));
        let mut helper = Helper {
            pid: spawned.pid,
            pidfd: spawned.pidfd,
            status_pipe,
            wake,
            listener: None,
            arena,
            seq: 0,
            phase: Phase::Loading,
            policy: spec.policy.clone(),
            library: spec.library.clone(),
            spin: AdaptiveSpin::new(spec.host_spin),
            // Spinning set to zero means none at all, even through a wake-up.
            wake_spin: AdaptiveSpin::new(if spec.host_spin.is_zero() {
                Duration::ZERO
            } else {
                spec.host_spin.max(WAKE_SPIN)
            }),
            last_nudge: None,
            killed: None,
            ended: None,
            audit: spec.audit.clone(),
            learn: spec.learn.clone(),
        };
        match helper.handshake(&control, Instant::now() + spec.load_timeout) {
            Ok(()) => {
                helper.phase = Phase::Serving;
                Ok(helper)
            }
            Err(e) => {
                helper.kill(KillReason::Dropped);
                helper.reap();
                Err(e)
            }
        }
    }

    fn handshake(&mut self, control: &OwnedFd, deadline: Instant) -> Result<()> {
        let mut buf = vec![0u8; MAX_HANDSHAKE];
        loop {
            let listener = self.listener.as_ref().map(|l| l.as_raw_fd());
            let fds = [
                Some(control.as_raw_fd()),
                Some(self.pidfd.as_raw_fd()),
                listener,
            ];
            let ready = poll_readable(&fds, Some(deadline));
            if ready[2] {
                self.answer_notifications();
            }
            if ready[0] {
                // SAFETY: receives at most `buf.len()` bytes into the live buffer.
                let n = unsafe {
                    libc::recv(
                        control.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if n == 0 {
                    return Err(Error::new(
                        ErrorKind::LoadFailed,
                        "the helper closed its control channel while loading",
                    ));
                }
                if n > 0 {
                    // Read once: the library's constructors may have written here too.
                    let message = HelperMessage::decode(&buf[..n as usize]).map_err(|_| {
                        Error::new(
                            ErrorKind::Protocol,
                            "garbage on the helper's control channel",
                        )
                    })?;
                    match message {
                        HelperMessage::Listener { listener_fd } if self.listener.is_none() => {
                            self.listener = Some(self.take_listener(listener_fd)?);
                            let ack = [1u8];
                            // SAFETY: sends the one live byte of `ack`.
                            unsafe {
                                libc::send(
                                    control.as_raw_fd(),
                                    ack.as_ptr().cast(),
                                    1,
                                    libc::MSG_NOSIGNAL,
                                )
                            };
                        }
                        HelperMessage::Ready if self.listener.is_some() => return Ok(()),
                        HelperMessage::Failed { kind, message } => {
                            return Err(Error::new(load_failure(kind), message));
                        }
                        _ => {
                            return Err(Error::new(
                                ErrorKind::Protocol,
                                "the helper's handshake came out of order",
                            ))
                        }
                    }
                    continue;
                }
            }
            if ready[1] {
                let death = self.reap();
                return Err(match death.kind {
                    ErrorKind::PolicyViolation { .. } => Error::new(
                        death.kind,
                        format!("while loading '{}': {}", self.library, death.message),
                    ),
                    _ => Error::new(
                        ErrorKind::LoadFailed,
                        format!("the helper ended while loading: {death}"),
                    ),
                });
            }
            if Instant::now() >= deadline {
                self.kill(KillReason::Timeout);
                return Err(Error::new(
                    ErrorKind::LoadFailed,
                    "the helper did not finish loading in time",
                ));
            }
        }
    }

    /// Takes the listener out of the helper and checks it really is one: a
    /// constructor cannot have sent this message (none has run yet), but the
    /// check costs nothing and guards the one thing violation reports rest on.
    fn take_listener(&self, remote_fd: i32) -> Result<OwnedFd> {
        // SAFETY: pidfd_getfd takes a pidfd, an fd number and flags, and
        // touches no memory of ours.
        let fd =
            unsafe { libc::syscall(libc::SYS_pidfd_getfd, self.pidfd.as_raw_fd(), remote_fd, 0) };
        let fd = owned(fd as RawFd, "taking the seccomp listener (pidfd_getfd)")?;
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !link.contains("seccomp notify") {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("the helper's listener is not a seccomp listener ({link})"),
            ));
        }
        Ok(fd)
    }
}

/// The error kind for a helper's own report of why it could not start.
fn load_failure(kind: LoadFailureKind) -> ErrorKind {
    match kind {
        LoadFailureKind::LoadFailed => ErrorKind::LoadFailed,
        LoadFailureKind::SymbolNotFound => ErrorKind::SymbolNotFound,
        LoadFailureKind::BadSignature => ErrorKind::BadSignature,
    }
}

/// The last OS error, as a failure to start the helper while doing `what`.
fn sys_err(what: &str) -> Error {
    let e = io::Error::last_os_error();
    Error::with_source(ErrorKind::LoadFailed, format!("{what}: {e}"), e)
}

/// Owns `fd`, a syscall's fresh fd, or reports the syscall's failure.
fn owned(fd: RawFd, what: &str) -> Result<OwnedFd> {
    if fd < 0 {
        Err(sys_err(what))
    } else {
        // SAFETY: the syscall that returned `fd` just created it, and
        // nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// The handshake's socket pair: (ours, the helper's).
fn control_channel() -> Result<(OwnedFd, OwnedFd)> {
    seqpacket_pair().map_err(channel_failed)
}

/// The pipe the fork server writes the helper's wait status to: (our read
/// end, its write end). Close-on-exec, as std makes every pipe.
fn status_channel() -> Result<(OwnedFd, OwnedFd)> {
    let (read, write) = io::pipe().map_err(channel_failed)?;
    Ok((read.into(), write.into()))
}

fn channel_failed(e: io::Error) -> Error {
    Error::with_source(ErrorKind::LoadFailed, format!("creating a channel: {e}"), e)
}

fn open_output(path: Option<&Path>) -> Result<OwnedFd> {
    let file = match path {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| {
                Error::with_source(
                    ErrorKind::LoadFailed,
                    format!(
                        "cannot open the extension's output file '{}': {e}",
                        p.display()
                    ),
                    e,
                )
            })?,
        None => std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(|e| Error::with_source(ErrorKind::LoadFailed, format!("/dev/null: {e}"), e))?,
    };
    Ok(OwnedFd::from(file))
}
