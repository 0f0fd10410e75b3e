//! Starting a helper: the fds and the arena it gets, the request to the fork
//! server, and the handshake until it is ready to serve.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffb_contract::spin::AdaptiveSpin;
use ffb_contract::sys::{poll_readable, seqpacket_pair};
use std::sync::atomic::Ordering::{Acquire, Relaxed};

use ffb_abi::signature::Signature;
use ffb_contract::artefacts::Namespace;
use ffb_contract::wire::{
    HelperMessage, LoadFailureKind, OwnIdentity, SpawnRequest, Status, LOADED_SEQ, MAX_HANDSHAKE,
    OWN_ID_BASE, WIRE_VERSION,
};
use ffb_policy::sandbox::Phase;

use super::confinement::landlock_spec;
use super::handoff::WAKE_SPIN;
use super::outcome::KillReason;
use super::output::{Drain, ExtensionOutput};
use super::{Helper, HelperSpec};
use crate::arena::Arena;
use crate::audit::{event_for, AuditEvent};
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
        let (output, drain) = open_output(spec.output.as_ref())?;
        // An absolute path spares the helper a getcwd (a loading-phase round
        // trip through the host), and names the directory Landlock must open.
        let library = if spec.library.contains('/') {
            std::fs::canonicalize(&spec.library)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| spec.library.clone())
        } else {
            spec.library.clone()
        };
        let landlock = (spec.learn.is_none())
            .then(|| landlock_spec(&spec.policy, &library, &spec.preload, &spec.listable));
        let baseline = baseline_namespaces(&spec.policy, spec.learn.is_some());
        let own_identity = own_identity(spec, &library, landlock.as_ref(), &baseline);
        let request = SpawnRequest {
            wire_version: WIRE_VERSION,
            landlock,
            library,
            preload: spec.preload.clone(),
            functions: spec.functions.clone(),
            filter: (*spec.filter).clone(),
            limits: spec.policy.limits.clone(),
            arena_len: arena.len() as u64,
            spin_us: spec.helper_spin_us,
            env: spec.env.clone(),
            namespaces: spec.policy.namespaces.clone(),
            baseline_namespaces: baseline,
            run_as: spec.policy.run_as.clone(),
            // The host reads the helper's memory (returned strings, learn
            // mode) and takes its listener with pidfd_getfd: with the helper
            // non-dumpable, only CAP_SYS_PTRACE still allows that.
            non_dumpable: has_capability(CAP_SYS_PTRACE),
            own_identity,
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
        );
        // Dropped before any error returns: the drain ends at its EOF.
        drop((control_theirs, memfd, output, status_theirs));
        let spawned = spawned?;
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
            functions: spec.functions.clone(),
            spin: AdaptiveSpin::new(spec.host_spin),
            // Spinning set to zero means none at all, even through a wake-up.
            wake_spin: AdaptiveSpin::new(if spec.host_spin.is_zero() {
                Duration::ZERO
            } else {
                spec.host_spin.max(WAKE_SPIN)
            }),
            last_nudge: None,
            killed: None,
            pending_clone: None,
            ended: None,
            audit: spec.audit.clone(),
            learn: spec.learn.clone(),
            _output: drain,
        };
        let mut loading_ended = None;
        match helper.handshake(
            control,
            Instant::now() + spec.load_timeout,
            &mut loading_ended,
        ) {
            Ok(()) => {
                helper.phase = Phase::Serving;
                Ok(helper)
            }
            Err(e) => {
                helper.kill(KillReason::Dropped);
                helper.reap();
                match (helper.violation(), loading_ended) {
                    (Some((nr, args)), _) => {
                        helper.audit_load(event_for(&e.kind), Some((nr, args)), &e)
                    }
                    (None, Some(event)) => helper.audit_load(event, None, &e),
                    // The library's own report (not found, bad signature):
                    // the helper ended it as asked, nothing to audit.
                    (None, None) => {}
                }
                Err(e)
            }
        }
    }

    /// The handshake: take the listener while the helper locks down, then
    /// supervise its loading until it reports the end of it in the arena
    /// ([`LOADED_SEQ`]), dies, or runs out of time.
    ///
    /// The control socket carries only what the shim sends before `dlopen`;
    /// the helper closes it once the listener is taken, and the host drops
    /// its end then too. Whatever a constructor writes anywhere after that is
    /// at most the helper's claim: the host's own messages name the host's
    /// declarations and quote the helper's text as the helper's.
    ///
    /// A helper that dies or runs out of time sets `ended` to the audit
    /// event that says so (`crash`, `exit`, `timeout`, `violation`...).
    fn handshake(
        &mut self,
        control: OwnedFd,
        deadline: Instant,
        ended: &mut Option<&'static str>,
    ) -> Result<()> {
        let mut control = Some(control);
        let mut buf = vec![0u8; MAX_HANDSHAKE];
        loop {
            let fds = [
                control.as_ref().map(|c| c.as_raw_fd()),
                Some(self.pidfd.as_raw_fd()),
                self.listener.as_ref().map(|l| l.as_raw_fd()),
                Some(self.wake.as_raw_fd()),
            ];
            let ready = poll_readable(&fds, Some(deadline));
            if ready[2] {
                self.answer_notifications();
            }
            // A violation kills the helper: its control socket reads EOF and
            // its pidfd turns readable, but what counts is the verdict.
            if self.killed.is_some() {
                return Err(self.ended_while_loading(ended));
            }
            if let (true, Some(socket)) = (ready[0], control.as_ref()) {
                // SAFETY: receives at most `buf.len()` bytes into the live buffer.
                let n = unsafe {
                    libc::recv(
                        socket.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if n == 0 {
                    // The helper closed the socket before handing over its
                    // listener: it died (or is dying) while locking down.
                    return Err(self.ended_while_loading(ended));
                }
                if n > 0 {
                    // No code of the library has run yet: this is the shim.
                    let message = HelperMessage::decode(&buf[..n as usize]).map_err(|_| {
                        Error::new(
                            ErrorKind::Protocol,
                            "garbage on the helper's control channel",
                        )
                    })?;
                    match message {
                        HelperMessage::Listener { listener_fd } => {
                            self.listener = Some(self.take_listener(listener_fd)?);
                            let ack = [1u8];
                            // SAFETY: sends the one live byte of `ack`.
                            unsafe {
                                libc::send(
                                    socket.as_raw_fd(),
                                    ack.as_ptr().cast(),
                                    1,
                                    libc::MSG_NOSIGNAL,
                                )
                            };
                            // The helper closes its end before dlopen; nothing
                            // more may come on this socket.
                            control = None;
                        }
                        HelperMessage::Failed { kind, message } => {
                            return Err(Error::new(load_failure(kind), message));
                        }
                    }
                    continue;
                }
            }
            if ready[3] {
                let mut counter = [0u8; 8];
                // SAFETY: reads at most 8 bytes into the live 8-byte buffer.
                unsafe { libc::read(self.wake.as_raw_fd(), counter.as_mut_ptr().cast(), 8) };
                if self.listener.is_some() {
                    if let Some(loaded) = self.loaded() {
                        return loaded;
                    }
                }
            }
            if ready[1] {
                return Err(self.ended_while_loading(ended));
            }
            if Instant::now() >= deadline {
                self.kill(KillReason::Timeout);
                *ended = Some(event_for(&ErrorKind::Timeout));
                return Err(Error::new(
                    ErrorKind::LoadFailed,
                    "the helper did not finish loading in time",
                ));
            }
        }
    }

    /// The helper's report of how loading ended, if it has made one: read
    /// once from the arena, and turned into the host's own words. The kind
    /// can only be one the helper may legitimately report, and names the
    /// host's declaration; any text is quoted as the helper's.
    fn loaded(&mut self) -> Option<Result<()>> {
        let ctl = self.arena.control();
        if ctl.helper.resp_seq.load(Acquire) != LOADED_SEQ {
            return None;
        }
        let status = ctl.helper.status.load(Relaxed);
        let index = ctl.helper.ret.load(Relaxed);
        let said = self
            .arena
            .message(ctl.helper.message_len.load(Relaxed))
            .unwrap_or_default();
        let quoted = if said.is_empty() {
            String::new()
        } else {
            format!("; the helper reported: \"{}\"", said.escape_debug())
        };
        let declared = usize::try_from(index)
            .ok()
            .and_then(|i| self.functions.get(i));
        let declaration = |what: &str| match declared {
            Some(text) => {
                let name = Signature::parse(text).map_or_else(|_| text.clone(), |s| s.name);
                format!("'{name}' (declared as '{text}') {what}")
            }
            None => format!("a function the host never declared (index {index}) {what}"),
        };
        Some(match Status::from_u32(status) {
            Some(Status::Ok) => Ok(()),
            Some(Status::SymbolNotFound) if declared.is_some() => Err(Error::new(
                ErrorKind::SymbolNotFound,
                format!("{}{quoted}", declaration("was not found in the library")),
            )),
            Some(Status::BadSignature) if declared.is_some() => Err(Error::new(
                ErrorKind::BadSignature,
                format!("{}{quoted}", declaration("could not be prepared for calls")),
            )),
            Some(Status::BadRequest) => Err(Error::new(
                ErrorKind::LoadFailed,
                format!("cannot load '{}'{quoted}", self.library),
            )),
            _ => Err(self.protocol(format!(
                "the helper's report on loading makes no sense (status {status}, {}){quoted}",
                declaration("").trim_end()
            ))),
        })
    }

    /// The error for a helper that ended (or was killed) while loading:
    /// a violation is reported as such, anything else as a failed load
    /// saying how the helper ended.
    fn ended_while_loading(&mut self, ended: &mut Option<&'static str>) -> Error {
        let death = self.reap();
        *ended = Some(event_for(&death.kind));
        match death.kind {
            ErrorKind::PolicyViolation { .. } => Error::new(
                death.kind,
                format!("while loading '{}': {}", self.library, death.message),
            ),
            _ => Error::new(
                ErrorKind::LoadFailed,
                format!("the helper ended while loading: {death}"),
            ),
        }
    }

    /// Writes how a helper ended while it loaded (a violation, a crash, an
    /// exit, the load timeout) to the audit log, if there is one: the bridge
    /// never saw this helper serve.
    fn audit_load(&self, event: &'static str, syscall: Option<(i64, [u64; 6])>, error: &Error) {
        if let Some(audit) = &self.audit {
            audit.record(&AuditEvent {
                event,
                function: None,
                syscall,
                action: "killed",
                pid: self.pid,
                detail: Some(error),
            });
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

/// The helper's stdout and stderr: /dev/null, or the bridge's output (a
/// pipe to a capped drain, see [`ExtensionOutput`]).
fn open_output(output: Option<&Arc<ExtensionOutput>>) -> Result<(OwnedFd, Option<Drain>)> {
    match output {
        Some(o) => o.helper_end(),
        None => std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map(|null| (OwnedFd::from(null), None))
            .map_err(|e| Error::with_source(ErrorKind::LoadFailed, format!("/dev/null: {e}"), e)),
    }
}

/// `CAP_SYS_ADMIN`, whose absence makes a helper need a user namespace for
/// the namespaces it always gets.
const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_SYS_PTRACE`, which the host needs to keep reaching a non-dumpable
/// helper's memory.
const CAP_SYS_PTRACE: u32 = 19;

/// Whether this process has capability `cap` (below 32) in its effective set.
fn has_capability(cap: u32) -> bool {
    capabilities() & (1 << cap) != 0
}

/// The host's effective capabilities 0 to 31 (all that ffb asks about).
fn capabilities() -> u32 {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: a version-3 header asks for two Data records, and `data` holds
    // two; capget writes only those and the header's version.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc == 0 {
        data[0].effective
    } else {
        0
    }
}

/// `CAP_SETGID`, `CAP_SETUID` and `CAP_SETPCAP`: what a host needs to give
/// its helpers uids of their own (the switch, and the securebits that keep
/// the two DAC capabilities across it).
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;
const CAP_SETPCAP: u32 = 8;

/// A uid of its own for the helper, when the host is root and may switch
/// users (`CAP_SETUID`, `CAP_SETGID`, `CAP_SETPCAP`), and keeps reaching a
/// helper of another uid (`CAP_SYS_PTRACE`, for `pidfd_getfd` and
/// `process_vm_readv`). Not with `run_as` (the policy's user wins). With a
/// user namespace the helper switches before it makes the namespace, which
/// then maps that uid alone (`shim/src/lockdown.rs`
/// `switch_before_user_namespace`). A host that is not root keeps today's
/// model: the helper has the host's uid, inside the baseline's user
/// namespace.
///
/// Which DAC capabilities it keeps, both bounded by Landlock: see
/// [`OwnIdentity`] and `docs/SECURITY.md` ("Identity").
fn own_identity(
    spec: &HelperSpec,
    library: &str,
    landlock: Option<&ffb_contract::artefacts::LandlockSpec>,
    baseline: &[Namespace],
) -> Option<OwnIdentity> {
    // SAFETY: geteuid has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || spec.policy.run_as.is_some() {
        return None;
    }
    // In a user namespace the DAC capabilities would count only for files
    // of the uids it maps, which is the helper's own alone: none are kept.
    let user_ns =
        spec.policy.namespaces.contains(&Namespace::User) || baseline.contains(&Namespace::User);
    let caps = capabilities();
    let needed = [CAP_SETGID, CAP_SETUID, CAP_SETPCAP, CAP_SYS_PTRACE];
    if needed.iter().any(|cap| caps & (1 << cap) == 0) {
        return None;
    }
    // Reads and writes stay bounded by Landlock wherever it confines the
    // filesystem.
    let bounded = landlock.is_some_and(|l| l.fs.is_some());
    let learn = spec.learn.is_some();
    let fs = &spec.policy.filesystem;
    Some(OwnIdentity {
        base: OWN_ID_BASE,
        // Without Landlock (learn mode, an explicitly unconfined import)
        // reads are what a capless uid 0 had: every root-owned file.
        dac_read: !user_ns && (!bounded || !fs.read.is_empty() || !readable_by_others(library)),
        // Learn mode records the paths a library writes, so it may write
        // where a capless uid 0 could (but owns nothing: no chmod, chown or
        // explicit times on root's files). Otherwise, without Landlock no
        // write is bounded: nothing beyond what others may write.
        // Not with a metadata call granted: write access alone lets a
        // process set a file's times to now and its user.* attributes, and
        // Landlock confines neither, so CAP_DAC_OVERRIDE would extend them
        // to every file. The write grants then work where the helper's own
        // uid may write (lint says so).
        dac_write: !user_ns
            && (learn || (bounded && !fs.write.is_empty() && !grants_metadata(&spec.policy))),
    })
}

/// Whether the policy lets any call that changes file metadata run.
fn grants_metadata(policy: &ffb_policy::sandbox::SandboxPolicy) -> bool {
    policy.rules.iter().any(|rule| {
        rule.action.runs() && ffb_policy::lint::METADATA_SYSCALLS.contains(&rule.syscall.as_str())
    })
}

/// Whether a user who owns nothing can read `library`: the file readable by
/// others, every directory above it searchable by others. A soname is
/// found in the system library directories, which are.
fn readable_by_others(library: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = Path::new(library);
    if !library.contains('/') {
        return true;
    }
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode());
    if !mode(path).is_ok_and(|m| m & 0o004 != 0) {
        return false;
    }
    path.ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty())
        .all(|dir| mode(dir).is_ok_and(|m| m & 0o001 != 0))
}

/// The namespaces every helper enters beside the policy's:
/// * IPC: no System V object of another process is reachable;
/// * mount: `/proc` read-only, `/proc/sys` with it;
/// * with a user namespace first when the host lacks `CAP_SYS_ADMIN` (an
///   unprivileged host can make the others only inside one);
/// * net, when the policy grants no TCP port and this is not learn mode:
///   the fork server's shared empty network namespace, which only a host
///   with `CAP_SYS_ADMIN` has (a fresh one per helper would cost about
///   0.4 ms at every spawn). Unix sockets by path still work there.
///
/// The fork server's shared pid namespace is not asked for: every helper
/// it can make one for is born into it. Those the policy already asks for
/// are not repeated.
fn baseline_namespaces(policy: &ffb_policy::sandbox::SandboxPolicy, learn: bool) -> Vec<Namespace> {
    let privileged = has_capability(CAP_SYS_ADMIN);
    let mut baseline = vec![Namespace::Ipc, Namespace::Mount];
    if !privileged {
        baseline.insert(0, Namespace::User);
    }
    let tcp = !policy.network.connect_tcp.is_empty() || !policy.network.bind_tcp.is_empty();
    if privileged && !tcp && !learn {
        baseline.push(Namespace::Net);
    }
    baseline.retain(|ns| !policy.namespaces.contains(ns));
    baseline
}
