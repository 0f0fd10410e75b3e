//! One live helper process, seen from the host: spawn, handshake, the
//! spin-then-sleep call handoff, the seccomp listener, and how it ended.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffb_contract::artefacts::{FsSpec, LandlockSpec};
use ffb_contract::wire::{current_cpu_hint, WIRE_VERSION};
use ffb_contract::wire::{HelperMessage, Op, SpawnRequest, Status, MAX_HANDSHAKE};
use ffb_policy::sandbox::{CompiledFilter, Namespace, Phase, SandboxPolicy, Verdict};
use ffb_policy::syscalls::display_name;

use ffb_contract::spin::AdaptiveSpin;

use crate::arena::Arena;
use crate::audit::{AuditEvent, AuditLog};
use crate::error::{signal_name, Error, ErrorKind, Result};
use crate::forkserver;

/// Everything needed to start a helper.
pub(crate) struct HelperSpec {
    pub shim: PathBuf,
    pub library: String,
    pub functions: Vec<String>,
    pub policy: Arc<SandboxPolicy>,
    pub filter: Arc<CompiledFilter>,
    pub arena_len: usize,
    pub helper_spin_us: u32,
    pub host_spin: Duration,
    pub env: Vec<(String, String)>,
    pub output: Option<PathBuf>,
    pub load_timeout: Duration,
    pub audit: Option<Arc<AuditLog>>,
    pub learn: Option<Arc<std::sync::Mutex<crate::learn::Learned>>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KillReason {
    Violation { nr: i64, args: [u64; 6] },
    Timeout,
    Protocol,
    Dropped,
}

/// How long the host may spin while a woken helper gets going: about two
/// blocking wake-ups on this class of machine.
const WAKE_SPIN: Duration = Duration::from_micros(150);

/// The helper's answer to one request, read once from the arena.
pub(crate) struct Response {
    pub status: Status,
    pub ret: u64,
    pub message_len: u32,
}

pub(crate) struct Helper {
    pid: i32,
    pidfd: OwnedFd,
    status_pipe: OwnedFd,
    wake: OwnedFd,
    listener: Option<OwnedFd>,
    arena: Arena,
    seq: u32,
    phase: Phase,
    policy: Arc<SandboxPolicy>,
    library: String,
    /// Spin budget for waits on a helper that was awake.
    spin: AdaptiveSpin,
    /// Spin budget for waits that began by waking the helper.
    wake_spin: AdaptiveSpin,
    /// When the helper was last moved off the host's CPU.
    last_nudge: Option<Instant>,
    killed: Option<KillReason>,
    /// Set once the helper is known to be gone (and its status consumed).
    ended: Option<Error>,
    audit: Option<Arc<AuditLog>>,
    learn: Option<Arc<std::sync::Mutex<crate::learn::Learned>>>,
}

fn sys_err(what: &str) -> Error {
    Error::new(
        ErrorKind::LoadFailed,
        format!("{what}: {}", io::Error::last_os_error()),
    )
}

fn owned(fd: RawFd, what: &str) -> Result<OwnedFd> {
    if fd < 0 {
        Err(sys_err(what))
    } else {
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

fn pipe_pair(kind: libc::c_int) -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    let rc = if kind == 0 {
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }
    } else {
        unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                kind | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        }
    };
    if rc != 0 {
        return Err(sys_err("creating a channel"));
    }
    Ok((owned(fds[0], "")?, owned(fds[1], "")?))
}

impl Helper {
    /// Starts a helper, takes its seccomp listener, and waits until it has
    /// loaded the library and resolved every function.
    pub fn spawn(spec: &HelperSpec) -> Result<Helper> {
        let mut arena = Arena::create(spec.arena_len)?;
        let memfd = arena.take_memfd().expect("fresh arena has its memfd");
        let wake = owned(
            unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) },
            "eventfd",
        )?;
        let (control, control_theirs) = pipe_pair(libc::SOCK_SEQPACKET)?;
        let (status_pipe, status_theirs) = pipe_pair(0)?;
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

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// Whether the helper is known to have ended.
    pub fn is_gone(&self) -> bool {
        self.ended.is_some()
    }

    /// The syscall (and its arguments, as the kernel reported them) that got
    /// this helper killed, if that is how it ended.
    pub fn violation(&self) -> Option<(i64, [u64; 6])> {
        match self.killed {
            Some(KillReason::Violation { nr, args }) => Some((nr, args)),
            _ => None,
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
            let ready = poll_fds(&fds, deadline);
            if ready[2] {
                self.answer_notifications();
            }
            if ready[0] {
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
                    let message: HelperMessage = serde_json::from_slice(&buf[..n as usize])
                        .map_err(|_| {
                            Error::new(
                                ErrorKind::Protocol,
                                "garbage on the helper's control channel",
                            )
                        })?;
                    match message {
                        HelperMessage::Listener { listener_fd } if self.listener.is_none() => {
                            self.listener = Some(self.take_listener(listener_fd)?);
                            let ack = [1u8];
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
                            let kind = match kind.as_str() {
                                "symbol_not_found" => ErrorKind::SymbolNotFound,
                                "bad_signature" => ErrorKind::BadSignature,
                                _ => ErrorKind::LoadFailed,
                            };
                            return Err(Error::new(kind, message));
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

    /// Sends one request and waits for its answer, the helper's death, or the deadline.
    /// The call's clock starts when the host first looks at it (a fast answer
    /// needs no clock at all); `timeout` runs from there.
    pub fn round_trip(
        &mut self,
        op: Op,
        func: u32,
        nargs: u32,
        timeout: Duration,
    ) -> Result<Response> {
        if let Some(e) = &self.ended {
            return Err(e.clone());
        }
        let ctl = self.arena.control();
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        // An answer the helper wrote early (to a request the extension forged
        // in the arena) must not pass for the answer to this one.
        ctl.helper.resp_seq.store(seq.wrapping_sub(1), Relaxed);
        ctl.host.op.store(op as u32, Relaxed);
        ctl.host.func.store(func, Relaxed);
        ctl.host.nargs.store(nargs, Relaxed);
        ctl.host.host_cpu.store(current_cpu_hint(), Relaxed);
        ctl.host.req_seq.store(seq, SeqCst);
        let woke_helper = ctl.helper.helper_parked.load(SeqCst) != 0;
        if woke_helper {
            futex_wake(&ctl.host.req_seq);
        }
        if !self.wait(seq, timeout, woke_helper) {
            // Dead or being killed: reap it and say why it ended.
            return Err(self.reap());
        }
        let ctl = self.arena.control();
        // The request must still be the one the host wrote: a changed request
        // means the extension rewrote it, and the answer may be to its forgery.
        let request_intact = ctl.host.req_seq.load(Relaxed) == seq
            && ctl.host.op.load(Relaxed) == op as u32
            && ctl.host.func.load(Relaxed) == func
            && ctl.host.nargs.load(Relaxed) == nargs;
        if !request_intact {
            return Err(
                self.protocol("the request in the arena was rewritten during the call".into())
            );
        }
        // Each field is read exactly once; the values are checked by the caller.
        let status_raw = ctl.helper.status.load(Acquire);
        let ret = ctl.helper.ret.load(Relaxed);
        let message_len = ctl.helper.message_len.load(Relaxed);
        let Some(status) = Status::from_u32(status_raw) else {
            return Err(self.protocol(format!("unknown status {status_raw}")));
        };
        if status == Status::BadRequest {
            let why = self.arena.message(message_len).unwrap_or_default();
            return Err(self.protocol(format!("the helper rejected the request: {why}")));
        }
        Ok(Response {
            status,
            ret,
            message_len,
        })
    }

    /// Spins, then sleeps; true when the response for `seq` is in.
    fn wait(&mut self, seq: u32, timeout: Duration, woke_helper: bool) -> bool {
        let ctl = self.arena.control();
        // A helper that was asleep needs a wake-up first: spinning through it
        // (when that has worked lately) saves a second blocking wake-up here.
        let spin = if woke_helper {
            &mut self.wake_spin
        } else {
            &mut self.spin
        };
        let budget = spin.budget();
        // Read lazily: a hot answer arrives within the first few dozen spins,
        // and a clock read would be a good share of its cost.
        let mut start: Option<Instant> = None;
        let mut spins = 0u32;
        // A woken helper is often placed on this very CPU, and a helper that
        // shares it cannot answer while this thread spins: then yield instead.
        let mut yielding = woke_helper;
        loop {
            if ctl.helper.resp_seq.load(Acquire) == seq {
                spin.answered_while_spinning();
                return true;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) {
                let now = Instant::now();
                if now - *start.get_or_insert(now) >= budget {
                    break;
                }
                if !yielding && sharing_cpu(ctl.helper.helper_cpu.load(Relaxed)) {
                    yielding = true;
                    nudge_apart(self.pid, &mut self.last_nudge);
                }
            }
            if yielding {
                unsafe { libc::sched_yield() };
            } else {
                std::hint::spin_loop();
            }
        }
        spin.slept();
        let deadline = start.unwrap_or_else(Instant::now) + timeout;
        loop {
            let ctl = self.arena.control();
            ctl.host.host_parked.store(1, SeqCst);
            if ctl.helper.resp_seq.load(SeqCst) == seq {
                ctl.host.host_parked.store(0, Relaxed);
                return true;
            }
            let listener = self.listener.as_ref().map(|l| l.as_raw_fd());
            let ready = poll_fds(
                &[
                    Some(self.wake.as_raw_fd()),
                    Some(self.pidfd.as_raw_fd()),
                    listener,
                ],
                deadline,
            );
            self.arena.control().host.host_parked.store(0, Relaxed);
            if ready[0] {
                let mut counter = [0u8; 8];
                unsafe { libc::read(self.wake.as_raw_fd(), counter.as_mut_ptr().cast(), 8) };
            }
            if ready[2] {
                self.answer_notifications();
            }
            if self.killed.is_some() || ready[1] {
                return false;
            }
            if self.arena.control().helper.resp_seq.load(Acquire) == seq {
                return true;
            }
            if Instant::now() >= deadline {
                self.kill(KillReason::Timeout);
                return false;
            }
        }
    }

    fn protocol(&mut self, message: String) -> Error {
        self.kill(KillReason::Protocol);
        self.reap();
        let e = Error::new(ErrorKind::Protocol, message);
        self.ended = Some(e.clone());
        e
    }

    /// Kills the helper (with its whole process group) and records why.
    fn kill(&mut self, reason: KillReason) {
        if self.killed.is_none() {
            self.killed = Some(reason);
        }
        unsafe {
            // While the helper lives, its pid is its process group's id.
            if !poll_fds(&[Some(self.pidfd.as_raw_fd())], Instant::now())[0] {
                libc::kill(-self.pid, libc::SIGKILL);
            }
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                0,
                0,
            );
        }
    }

    /// Waits for the fork server's report of how the helper ended and turns it
    /// into an error. Idempotent.
    fn reap(&mut self) -> Error {
        if let Some(e) = &self.ended {
            return e.clone();
        }
        // The fork server writes the wait status as soon as it reaps the helper.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut status = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            if !poll_fds(&[Some(self.status_pipe.as_raw_fd())], deadline)[0] {
                break;
            }
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

    /// Answers every pending seccomp notification. The kernel wrote these;
    /// nothing in them comes from the extension's memory.
    fn answer_notifications(&mut self) {
        let Some(listener) = self.listener.as_ref().map(|l| l.as_raw_fd()) else {
            return;
        };
        while has_notification(listener) {
            let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
            if unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
                // ENOENT: the thread died before we looked. Anything else: the
                // listener is broken, so the helper cannot be supervised.
                if io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT) {
                    self.kill(KillReason::Protocol);
                }
                return;
            }
            let nr = req.data.nr as i64;
            let args = req.data.args;
            let pid = self.pid;
            let in_pid_ns = self.policy.namespaces.contains(&Namespace::Pid);
            let mut verdict = self.policy.verdict(nr, &args, self.phase, |target| {
                if target == 0 {
                    // kill(0, ...): the helper's process group, which must still
                    // be its own (it could have joined the host's).
                    leads_own_group(pid)
                } else if in_pid_ns {
                    // Targets are ids in the helper's own namespace, where it is 1.
                    target == 1 || has_namespaced_thread(pid, target)
                } else {
                    target == pid as i64
                        || std::path::Path::new(&format!("/proc/{pid}/task/{target}")).exists()
                }
            });
            if let Some(learned) = &self.learn {
                let loading = self.phase == Phase::Loading;
                if verdict != Verdict::Continue && crate::learn::worth_recording(nr, &args, loading)
                {
                    let thread = req.pid as i32;
                    let cwd = std::fs::read_link(format!("/proc/{thread}/cwd")).ok();
                    learned.lock().unwrap_or_else(|p| p.into_inner()).record(
                        nr,
                        &args,
                        cwd,
                        |addr, len| read_memory(thread, addr, len),
                    );
                    verdict = Verdict::Continue;
                }
            }
            let mut resp = libc::seccomp_notif_resp {
                id: req.id,
                val: 0,
                error: 0,
                flags: 0,
            };
            let audited = |action: &str| {
                if let Some(audit) = &self.audit {
                    audit.record(&AuditEvent {
                        event: "violation",
                        function: None,
                        syscall: Some((nr, args)),
                        action,
                        pid,
                        detail: None,
                    });
                }
            };
            match verdict {
                Verdict::Continue => {
                    resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
                }
                Verdict::Log => {
                    audited("logged");
                    resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
                }
                Verdict::Fail(errno) => {
                    audited(&format!(
                        "errno:{}",
                        ffb_policy::file::errno_name(errno).unwrap_or("?")
                    ));
                    resp.error = -(errno as i32);
                }
                Verdict::Violation => {
                    self.kill(KillReason::Violation { nr, args });
                    return;
                }
            }
            unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
        }
    }

    /// Copies a NUL-terminated string out of the helper's memory, reading at
    /// most `bound` bytes. Reads page by page, so a string that ends just before
    /// unmapped memory is still found.
    pub fn read_cstr(&self, addr: u64, bound: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < bound + 1 {
            let start = out.len();
            out.resize(start + (bound + 1 - start).min(PAGE), 0);
            let n = read_within_page(self.pid, at, &mut out[start..]);
            if n == 0 {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("the returned string at {addr:#x} is not readable {start} bytes in"),
                ));
            }
            out.truncate(start + n);
            if let Some(nul) = out[start..].iter().position(|&b| b == 0) {
                out.truncate(start + nul);
                // Reads go a page at a time: keep only what the string needs.
                out.shrink_to_fit();
                return Ok(out);
            }
            at += n as u64;
        }
        Err(Error::new(
            ErrorKind::ResourceLimit,
            format!("the returned string is longer than the {bound}-byte bound"),
        ))
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if self.ended.is_none() {
            self.kill(KillReason::Dropped);
            self.reap();
        }
    }
}

fn open_output(path: Option<&std::path::Path>) -> Result<OwnedFd> {
    let file = match path {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| {
                Error::new(
                    ErrorKind::LoadFailed,
                    format!(
                        "cannot open the extension's output file '{}': {e}",
                        p.display()
                    ),
                )
            })?,
        None => std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(|e| Error::new(ErrorKind::LoadFailed, format!("/dev/null: {e}")))?,
    };
    Ok(OwnedFd::from(file))
}

/// Reads up to `len` bytes of another process's memory, stopping at the
/// first unreadable page.
fn read_memory(pid: i32, addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = read_within_page(pid, addr + got as u64, &mut out[got..]);
        if n == 0 {
            break;
        }
        got += n;
    }
    (got > 0).then(|| {
        out.truncate(got);
        out
    })
}

const PAGE: usize = 4096;

/// Reads another process's memory at `at` into `out`, but never past the end
/// of the page holding `at`, so a fault beyond it cannot hide the bytes before
/// it. Returns how many bytes were read: 0 when `at` is unreadable.
fn read_within_page(pid: i32, at: u64, out: &mut [u8]) -> usize {
    let want = out.len().min(PAGE - (at as usize % PAGE));
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: want,
    };
    let remote = libc::iovec {
        iov_base: at as *mut libc::c_void,
        iov_len: want,
    };
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    n.max(0) as usize
}

/// Moves the helper off this thread's CPU, at most every 50 ms: narrowing its
/// affinity migrates it at once, and restoring the affinity leaves it where
/// it went. A host and helper that share a CPU can only take turns; the
/// scheduler separates such a pair only slowly, since neither looks busy.
fn nudge_apart(pid: i32, last: &mut Option<Instant>) {
    if last.is_some_and(|t| t.elapsed() < Duration::from_millis(50)) {
        return;
    }
    *last = Some(Instant::now());
    let cpu = current_cpu_hint();
    if cpu == 0 {
        return;
    }
    unsafe {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(pid, size, &mut allowed) != 0 {
            return;
        }
        let mut elsewhere = allowed;
        libc::CPU_CLR((cpu - 1) as usize, &mut elsewhere);
        if libc::CPU_COUNT(&elsewhere) == 0 {
            return;
        }
        if libc::sched_setaffinity(pid, size, &elsewhere) == 0 {
            libc::sched_setaffinity(pid, size, &allowed);
        }
    }
}

/// Whether a peer's CPU hint says it runs on this thread's CPU.
fn sharing_cpu(peer: u32) -> bool {
    peer != 0 && peer == current_cpu_hint()
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

/// System directories the dynamic loader reads from.
const LOADER_PATHS: &[&str] = &[
    "/etc/ld.so.cache",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
];

/// Landlock rules for a policy: its own paths and ports, plus what loading
/// the library (given as a soname or a canonical path) reads. Nothing for a policy that does not confine (an imported
/// seccomp-only profile).
fn landlock_spec(policy: &SandboxPolicy, library: &str) -> LandlockSpec {
    if !policy.confine {
        return LandlockSpec::default();
    }
    let mut read = policy.filesystem.read.clone();
    let mut extra: Vec<PathBuf> = LOADER_PATHS.iter().map(PathBuf::from).collect();
    if library.contains('/') {
        extra.extend(std::path::Path::new(library).parent().map(PathBuf::from));
    }
    if let Ok(dirs) = std::env::var("LD_LIBRARY_PATH") {
        extra.extend(dirs.split(':').filter(|d| !d.is_empty()).map(PathBuf::from));
    }
    read.extend(extra.into_iter().filter(|p| p.exists()));
    let required = !policy.filesystem.read.is_empty()
        || !policy.filesystem.write.is_empty()
        || !policy.network.is_empty();
    LandlockSpec {
        fs: Some(FsSpec {
            read,
            write: policy.filesystem.write.clone(),
        }),
        net: Some(policy.network.clone()),
        required,
    }
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
    unsafe { libc::poll(&mut p, 1, 0) == 1 && p.revents & libc::POLLIN != 0 }
}

fn futex_wake(word: &std::sync::atomic::AtomicU32) {
    // Not FUTEX_PRIVATE: the helper waits on its own mapping of the same page.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1) };
}

/// Polls up to three optional fds until one is readable or `deadline` passes.
fn poll_fds<const N: usize>(fds: &[Option<RawFd>; N], deadline: Instant) -> [bool; N] {
    let mut polls: [libc::pollfd; N] = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; N];
    for (p, fd) in polls.iter_mut().zip(fds) {
        p.fd = fd.unwrap_or(-1);
    }
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = (left.as_millis().min(i32::MAX as u128 - 1) as i32)
            .saturating_add(i32::from(!left.subsec_micros().is_multiple_of(1000)));
        let n = unsafe { libc::poll(polls.as_mut_ptr(), N as libc::nfds_t, ms) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        let mut ready = [false; N];
        for (r, p) in ready.iter_mut().zip(&polls) {
            *r = p.fd >= 0 && p.revents != 0;
        }
        return ready;
    }
}
