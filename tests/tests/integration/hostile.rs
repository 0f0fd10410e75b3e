//! The hostile corpus as one suite (issue 11 §2): one test per attack class,
//! each held to the same five checks.
//!
//! The attacks are C (`tests/hostile/*.c`, one file per family, compiled
//! into one library by [`corpus`]); each class is a row built with
//! [`attack`] and run by [`Attack::run`], which checks, for every class:
//!
//! 1. **the host survives**: this process's rlimits, nice value, scheduler,
//!    process group, session, run state, tracer, environment and a sentinel
//!    word in its memory are what they were, and the fork server is alive;
//! 2. **the call gets the right error kind** (with the signal, exit code or
//!    syscall), or, where the policy allows the syscall, the result another
//!    layer (Landlock, the helper's own identity, the floor, a limit) leaves
//!    it;
//! 3. **nothing is lost**: calls on other helpers (a [`Bystander`] on a
//!    pool) run all through the attack and each gets its right answer, and
//!    on an error the caller's [`CallOutput`] is as it was;
//! 4. **the audit line names the cause**: every error has its line (event,
//!    pid, function, kind, and the signal, code or syscall and number); a
//!    call that came back has no failure line (a refusal it survived has its
//!    `errno:` line), and a respawn has its own;
//! 5. **the next call works**, on a fresh helper when the attack ended the
//!    old one, which is gone.
//!
//! Then the class's own check, from outside the helper: the file still
//! there and unchanged, the victim process alive, the listener that never
//! accepted, no process the attack tried to start.
//!
//! Timeouts for hangs are short (300 ms); nothing here measures time.

mod corpus;
mod observe;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ffb_loader::{call_effects, Bridge, CallOutput, Error, ErrorKind, SandboxPolicy, Value};
use ffb_tests::cli::{self, path_str, Scratch};
use ffb_tests::procfs::has_ended;
use ffb_tests::{bridge_builder, docker_default_profile};
use serde_json::Value as Json;

use corpus::corpus_lib;
use observe::{audit_lines, processes_named, Bystander, HostState, Victim};
use observe::{SECRET, SECRET_VAR, SENTINEL};

const PING: &str = "hostile_ping(i64) -> i64";
/// A hang's timeout.
const HANG: Duration = Duration::from_millis(300);
/// Every other call's: a hang detector only.
const CALL: Duration = Duration::from_secs(10);
/// The first buffer argument is at arena offset 4096 (the control block's
/// size), so this far back from it is the arena's start...
const TO_ARENA_START: u64 = 4096;
/// ...and this far back the helper's line (`resp_seq` at 64).
const TO_HELPER_LINE: u64 = 4096 - 64;
/// The name a child started by an attack gives itself.
const KID: &str = "ffb-hostile-kid";

/// How an attack must end.
#[derive(Clone, Debug)]
enum Expect {
    /// The helper dies from this signal.
    Crash(&'static str),
    /// The helper exits with this code.
    Exit(i32),
    /// The host gives up waiting and kills the helper.
    Timeout,
    /// The host kills the helper for this syscall.
    Violation(&'static str),
    /// A malformed answer.
    Protocol,
    /// A bound the host keeps (a string's length).
    ResourceLimit,
    /// The load fails, and the message names how the helper ended.
    LoadFailedWith(&'static str),
    /// The call comes back with this value: the policy let the syscall run,
    /// and another layer refused it (the class's outside check shows the
    /// damage was contained).
    Returns(Value),
    /// The call comes back with a value that passes the check, described.
    ReturnsSuch(&'static str, fn(&Value) -> bool),
    /// Any of these error kinds, or any answer: the extension may lie about
    /// its own result, but only in a well-typed way.
    TypedLieOr(&'static [&'static str]),
}

impl Expect {
    /// Checks `result` against this expectation.
    fn check(&self, function: &str, result: &Result<CallOutput, Error>) {
        let kind = result.as_ref().err().map(|e| &e.kind);
        let ok = match (self, kind) {
            (Expect::Crash(sig), Some(ErrorKind::Crashed { signal })) => signal == sig,
            (Expect::Exit(want), Some(ErrorKind::Exited { code })) => code == want,
            (Expect::Timeout, Some(ErrorKind::Timeout)) => true,
            (Expect::Violation(name), Some(ErrorKind::PolicyViolation { syscall, nr })) => {
                syscall == name && *nr >= 0
            }
            (Expect::Protocol, Some(ErrorKind::Protocol)) => true,
            (Expect::ResourceLimit, Some(ErrorKind::ResourceLimit)) => true,
            (Expect::LoadFailedWith(text), Some(ErrorKind::LoadFailed)) => {
                result.as_ref().unwrap_err().message.contains(text)
            }
            (Expect::Returns(want), None) => &result.as_ref().unwrap().ret == want,
            (Expect::ReturnsSuch(what, check), None) => {
                let ret = &result.as_ref().unwrap().ret;
                assert!(
                    check(ret),
                    "{function}: expected a return of {what}, got {ret:?}"
                );
                true
            }
            (Expect::TypedLieOr(_), None) => true,
            (Expect::TypedLieOr(kinds), Some(k)) => kinds.contains(&k.name()),
            _ => false,
        };
        assert!(ok, "{function}: expected {self:?}, got {result:?}");
    }
}

/// One attack class: the function, its arguments, the policy it runs
/// under, how it must end, and what to check from outside.
struct Attack {
    sig: &'static str,
    function: String,
    args: Vec<Value>,
    policy: SandboxPolicy,
    timeout: Duration,
    env: Vec<(&'static str, String)>,
    arena: Option<usize>,
    max_cstr: Option<usize>,
    output: Option<PathBuf>,
    at_load: bool,
    settle: Duration,
    expect: Expect,
    /// A refusal the helper survives (`errno:EAGAIN` for `clone`) that the
    /// audit log must record.
    refusal: Option<(&'static str, &'static str)>,
    outside: Vec<OutsideCheck>,
    scratch: Scratch,
}

/// A class's own check, from outside the helper, after the five.
type OutsideCheck = Box<dyn FnOnce(&mut Seen<'_>)>;

/// What an outside check gets to look at.
struct Seen<'a> {
    result: &'a Result<CallOutput, Error>,
    /// The bridge, on the helper the next call ran on.
    bridge: &'a mut Bridge,
}

impl Seen<'_> {
    /// The attack's `out[N]` buffer (argument `i`).
    fn out_bytes(&self, i: usize) -> &[u8] {
        match self.result {
            Ok(out) => match out.out.get(i) {
                Some(Some(Value::Bytes(b))) => b,
                other => panic!("argument {i} is not an out buffer: {other:?}"),
            },
            Err(e) => panic!("no out buffer: the call failed: {e}"),
        }
    }
}

/// A class calling `sig` (its first word is the function), under `pure`,
/// with no arguments, expecting a violation until told otherwise.
fn attack(sig: &'static str) -> Attack {
    let function = sig.split('(').next().unwrap().trim().to_string();
    let scratch = Scratch::new(&function);
    Attack {
        sig,
        function,
        args: Vec::new(),
        policy: SandboxPolicy::pure(),
        timeout: CALL,
        env: Vec::new(),
        arena: None,
        max_cstr: None,
        output: None,
        at_load: false,
        settle: Duration::ZERO,
        expect: Expect::Protocol,
        refusal: None,
        outside: Vec::new(),
        scratch,
    }
}

/// The sentinel a failed `call_into` must leave as it was.
fn untouched() -> CallOutput {
    CallOutput {
        ret: Value::Str(b"the caller's".to_vec()),
        out: vec![Some(Value::Bytes(vec![0xee; 16])), None],
        effects: call_effects(),
    }
}

impl Attack {
    fn args(mut self, args: impl Into<Vec<Value>>) -> Self {
        self.args = args.into();
        self
    }

    fn policy(mut self, policy: SandboxPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// A timeout shorter than the default hang detector, for attacks that
    /// may leave the host waiting for an answer that never comes.
    fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn hangs(mut self) -> Self {
        self.timeout = HANG;
        self.expect = Expect::Timeout;
        self
    }

    fn env(mut self, key: &'static str, value: &str) -> Self {
        self.env.push((key, value.to_string()));
        self
    }

    fn at_load(mut self) -> Self {
        self.at_load = true;
        self
    }

    /// Waits this long after the attack before the next call (for what the
    /// attack left running after it returned).
    fn settle(mut self, wait: Duration) -> Self {
        self.settle = wait;
        self
    }

    fn expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }

    fn violates(self, syscall: &'static str) -> Self {
        self.expect(Expect::Violation(syscall))
    }

    fn returns(self, v: Value) -> Self {
        self.expect(Expect::Returns(v))
    }

    /// Comes back with `-errno`.
    fn refused_with(self, errno: i32) -> Self {
        self.returns(Value::I64(-i64::from(errno)))
    }

    /// The audit log must record `syscall` refused with `action`, the
    /// helper living on.
    fn audited_refusal(mut self, syscall: &'static str, action: &'static str) -> Self {
        self.refusal = Some((syscall, action));
        self
    }

    fn outside(mut self, check: impl FnOnce(&mut Seen<'_>) + 'static) -> Self {
        self.outside.push(Box::new(check));
        self
    }

    /// A file outside every grant, with known contents, mode 0644.
    fn precious(&self, name: &str) -> PathBuf {
        let p = self.scratch.file(name, b"precious");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// Runs the attack and every check.
    fn run(self) {
        let bystander = Bystander::start();
        let before = HostState::now();
        let audit = self.scratch.path("audit.log");
        let decls = [self.sig, PING];
        let configure = |b: ffb_loader::BridgeBuilder| {
            let mut b = b
                .policy(self.policy.clone())
                .timeout(self.timeout)
                .audit_log(&audit);
            if let Some(bytes) = self.arena {
                b = b.arena_size(bytes);
            }
            if let Some(bytes) = self.max_cstr {
                b = b.max_cstr(bytes);
            }
            if let Some(path) = &self.output {
                b = b.extension_output(path);
            }
            b
        };
        let attacked_builder = self.env.iter().fold(
            configure(bridge_builder(corpus_lib(), &decls)),
            |b, (k, v)| b.env(*k, v.clone()),
        );
        let (mut bridge, attacked, result) = if self.at_load {
            let e = match attacked_builder.load() {
                Ok(_) => panic!("{}: the load succeeded", self.function),
                Err(e) => e,
            };
            let clean = configure(bridge_builder(corpus_lib(), &decls))
                .load()
                .unwrap_or_else(|e| panic!("a load without the attack: {e}"));
            (clean, None, Err(e))
        } else {
            let mut b = attacked_builder
                .load()
                .unwrap_or_else(|e| panic!("loading the corpus for {}: {e}", self.function));
            let pid = b.helper_pid();
            let f = b.function(&self.function).expect("declared");
            let mut out = untouched();
            let r = b.call_into(f, &self.args, &mut out).map(|()| out.clone());
            if r.is_err() {
                assert_eq!(
                    out,
                    untouched(),
                    "{}: a failed call changed the caller's output",
                    self.function
                );
            }
            (b, pid, r)
        };

        // 2. The error kind.
        self.expect.check(&self.function, &result);

        // 3. Nothing lost on the other helpers.
        bystander.finish();

        // 1. The host survives, unchanged.
        let after = HostState::now();
        assert_eq!(before, after, "{}: the host changed", self.function);

        // 4. The audit line.
        let ended = result.as_ref().err().filter(|e| e.kind.ends_helper());
        let lines = audit_lines(&audit);
        let of_attacked = |l: &&Json| attacked.is_none() || l["pid"] == attacked.unwrap();
        match result.as_ref().err() {
            Some(e) => {
                let named = lines
                    .iter()
                    .filter(of_attacked)
                    .any(|l| names_cause(l, e, &self.function, attacked.is_some()));
                assert!(
                    named,
                    "{}: no audit line names {e}:\n{lines:#?}",
                    self.function
                );
            }
            None => {
                // A call that came back ended nothing: no line has an error,
                // and the only violations audited are refusals it survived.
                let survived = |l: &&Json| {
                    l["event"] == "violation"
                        && l["action"]
                            .as_str()
                            .is_some_and(|a| a.starts_with("errno:"))
                };
                let failures: Vec<&Json> = lines
                    .iter()
                    .filter(of_attacked)
                    .filter(|l| l["event"] != "respawn" && !survived(l))
                    .collect();
                assert!(
                    failures.is_empty(),
                    "{}: came back, yet audited: {failures:#?}",
                    self.function
                );
                if let Some((syscall, action)) = self.refusal {
                    let recorded = lines
                        .iter()
                        .filter(of_attacked)
                        .filter(survived)
                        .any(|l| l["syscall"] == syscall && l["action"] == action);
                    assert!(
                        recorded,
                        "{}: no audit line for {syscall} {action}: {lines:#?}",
                        self.function
                    );
                }
            }
        }

        // 5. The next call works, on a fresh helper if the old one ended.
        std::thread::sleep(self.settle);
        let next = bridge
            .call_by_name("hostile_ping", &[Value::I64(41)])
            .unwrap_or_else(|e| panic!("{}: the next call failed: {e}", self.function));
        assert_eq!(next.ret, Value::I64(42));
        if ended.is_some() {
            let old = attacked.expect("a call-time failure");
            let deadline = Instant::now() + Duration::from_secs(5);
            while !has_ended(old) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            assert!(
                has_ended(old),
                "{}: the attacked helper {old} lives on",
                self.function
            );
            let new = bridge.helper_pid().expect("a live helper");
            assert_ne!(new, old);
            let respawned = audit_lines(&audit)
                .iter()
                .any(|l| l["event"] == "respawn" && l["pid"] == new);
            assert!(respawned, "{}: no respawn line for {new}", self.function);
        }

        // The class's own check, from outside.
        let mut seen = Seen {
            result: &result,
            bridge: &mut bridge,
        };
        for check in self.outside {
            check(&mut seen);
        }
        assert!(
            processes_named(KID).is_empty(),
            "{}: a process the corpus started runs: {:?}",
            self.function,
            processes_named(KID)
        );
    }
}

/// Whether audit line `l` records failure `e` of `function`.
fn names_cause(l: &Json, e: &Error, function: &str, during_call: bool) -> bool {
    let error = &l["error"];
    if e.kind == ErrorKind::LoadFailed {
        // How the load ended is in the message (which names the signal);
        // the line's event may name that or the kind.
        return error["kind"] == "load_failed" && error["message"] == e.message.as_str();
    }
    let event = match &e.kind {
        ErrorKind::PolicyViolation { .. } => "violation",
        ErrorKind::Crashed { .. } => "crash",
        ErrorKind::Exited { .. } => "exit",
        other => other.name(),
    };
    let detail = match &e.kind {
        ErrorKind::PolicyViolation { syscall, nr } => {
            l["syscall"] == syscall.as_str() && l["nr"] == *nr
        }
        ErrorKind::Crashed { signal } => error["signal"] == signal.as_str(),
        ErrorKind::Exited { code } => error["code"] == *code,
        _ => true,
    };
    l["event"] == event
        && error["kind"] == e.kind.name()
        && detail
        && (!during_call || l["function"] == function)
}

// ---------------------------------------------------------------------------
// Outside checks shared by several classes
// ---------------------------------------------------------------------------

/// `path` still holds exactly "precious", with mode 0644 and one link.
fn still_precious(path: PathBuf) -> impl FnOnce(&mut Seen<'_>) {
    move |_| {
        let meta = fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(fs::read(&path).unwrap(), b"precious", "{}", path.display());
        assert_eq!(meta.mode() & 0o7777, 0o644, "{}", path.display());
        assert_eq!(meta.nlink(), 1, "{}", path.display());
    }
}

fn absent(path: PathBuf) -> impl FnOnce(&mut Seen<'_>) {
    move |_| assert!(!path.exists(), "{} was created", path.display())
}

fn victim_unharmed(victim: Victim) -> impl FnOnce(&mut Seen<'_>) {
    move |_| assert!(victim.is_unharmed(), "the victim was signalled")
}

/// A TCP listener that must never see a connection.
fn untouched_listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn never_accepted(l: TcpListener) -> impl FnOnce(&mut Seen<'_>) {
    move |_| match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the listener accepted: {other:?}"),
    }
}

fn never_accepted_unix(l: UnixListener) -> impl FnOnce(&mut Seen<'_>) {
    move |_| {
        l.set_nonblocking(true).unwrap();
        match l.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the unix listener accepted: {other:?}"),
        }
    }
}

/// A TOML policy extending `extends` with `body` appended.
fn toml(extends: &str, body: &str) -> SandboxPolicy {
    let text = format!("extends = \"{extends}\"\n{body}");
    ffb_policy::source::parse_toml_policy(&text, "hostile.toml")
        .unwrap_or_else(|e| panic!("{text}\n{e}"))
}

fn docker() -> SandboxPolicy {
    ffb_policy::source::load_policy(path_str(&docker_default_profile()))
        .expect("Docker's default profile")
}

fn pure_allowing(names: &[&str]) -> SandboxPolicy {
    names
        .iter()
        .try_fold(SandboxPolicy::pure(), |p, n| p.allow(n))
        .expect("not on the floor")
}

fn host_pid() -> i64 {
    i64::from(std::process::id())
}

fn sentinel_address() -> u64 {
    std::ptr::addr_of!(SENTINEL) as u64
}

fn errno_among(v: &Value, errnos: &[i32]) -> bool {
    matches!(v, Value::I64(r) if errnos.iter().any(|e| *r == -i64::from(*e)))
}

fn cstr(p: &Path) -> Value {
    Value::str(path_str(p))
}

// ---------------------------------------------------------------------------
// Crashes and hangs
// ---------------------------------------------------------------------------

#[test]
fn segfault() {
    attack("hostile_segv() -> void")
        .expect(Expect::Crash("SIGSEGV"))
        .run();
}

#[test]
fn stack_overflow() {
    attack("hostile_stack_overflow() -> i64")
        .expect(Expect::Crash("SIGSEGV"))
        .run();
}

#[test]
fn abort() {
    attack("hostile_abort() -> void")
        .expect(Expect::Crash("SIGABRT"))
        .run();
}

#[test]
fn exit_with_a_code() {
    attack("hostile_exit(i32) -> void")
        .args([Value::I32(3)])
        .expect(Expect::Exit(3))
        .run();
}

#[test]
fn underscore_exit_from_a_second_thread() {
    attack("hostile_exit_from_thread(i32) -> i64")
        .args([Value::I32(4)])
        .expect(Expect::Exit(4))
        .run();
}

#[test]
fn infinite_loop() {
    attack("hostile_spin() -> void").hangs().run();
}

#[test]
fn sigstop_on_itself() {
    attack("hostile_sigstop() -> void").hangs().run();
}

#[test]
fn sleep_past_the_timeout() {
    attack("hostile_sleep_ms(i64) -> i64")
        .args([Value::I64(60_000)])
        .hangs()
        .run();
}

#[test]
fn crash_in_a_constructor() {
    attack(PING)
        .env("FFB_HOSTILE_CTOR", "segv")
        .at_load()
        .expect(Expect::LoadFailedWith("crashed (SIGSEGV)"))
        .run();
}

#[test]
fn crash_in_a_destructor() {
    attack("hostile_destructor_crash(i32) -> void")
        .args([Value::I32(0)])
        .expect(Expect::Crash("SIGSEGV"))
        .run();
}

#[test]
fn crash_in_an_atexit_handler() {
    attack("hostile_atexit_crash(i32) -> void")
        .args([Value::I32(0)])
        .expect(Expect::Crash("SIGSEGV"))
        .run();
}

// ---------------------------------------------------------------------------
// New processes (the harness checks that no child of the corpus runs)
// ---------------------------------------------------------------------------

#[test]
fn execve() {
    attack("hostile_execve() -> i64").violates("execve").run();
}

#[test]
fn execveat() {
    attack("hostile_execveat() -> i64")
        .violates("execveat")
        .run();
}

#[test]
fn fork() {
    attack("hostile_fork() -> i64").violates("fork").run();
}

#[test]
fn vfork() {
    attack("hostile_vfork() -> i64").violates("vfork").run();
}

#[test]
fn clone_of_a_process() {
    attack("hostile_clone_process(u64) -> i64")
        .args([Value::U64(0)])
        .violates("clone")
        .run();
}

#[test]
fn clone_of_a_process_sharing_its_memory() {
    attack("hostile_clone_process(u64) -> i64")
        .args([Value::U64(libc::CLONE_VM as u64)])
        .violates("clone")
        .run();
}

#[test]
fn clone_with_clone_parent() {
    attack("hostile_clone_process(u64) -> i64")
        .args([Value::U64(libc::CLONE_PARENT as u64)])
        .violates("clone")
        .run();
}

#[test]
fn clone3_of_a_process_is_enosys() {
    // clone3's flags are behind a pointer the filter cannot read: ENOSYS,
    // so glibc falls back to clone, which it can.
    attack("hostile_clone3() -> i64")
        .refused_with(libc::ENOSYS)
        .run();
}

#[test]
fn memfd_create_then_fexecve() {
    attack("hostile_memfd_fexecve() -> i64")
        .violates("memfd_create")
        .run();
}

#[test]
fn memfd_create_allowed_then_fexecve() {
    attack("hostile_memfd_fexecve() -> i64")
        .policy(pure_allowing(&["memfd_create"]))
        .violates("execveat")
        .run();
}

// ---------------------------------------------------------------------------
// Attacks on the host: signals
// ---------------------------------------------------------------------------

#[test]
fn kill_the_parent() {
    attack("hostile_kill_parent() -> i64")
        .violates("kill")
        .run();
}

#[test]
fn kill_a_process_group() {
    let victim = Victim::new();
    attack("hostile_kill(i64, i32) -> i64")
        .args([Value::I64(-victim.pid()), Value::I32(libc::SIGKILL)])
        .violates("kill")
        .outside(victim_unharmed(victim))
        .run();
}

#[test]
fn kill_every_process() {
    let victim = Victim::new();
    attack("hostile_kill(i64, i32) -> i64")
        .args([Value::I64(-1), Value::I32(libc::SIGKILL)])
        .violates("kill")
        .outside(victim_unharmed(victim))
        .run();
}

#[test]
fn tgkill_the_host() {
    attack("hostile_tgkill(i64, i32) -> i64")
        .args([Value::I64(host_pid()), Value::I32(libc::SIGKILL)])
        .violates("tgkill")
        .run();
}

#[test]
fn tkill_another_process() {
    let victim = Victim::new();
    attack("hostile_tkill(i64, i32) -> i64")
        .args([Value::I64(victim.pid()), Value::I32(libc::SIGKILL)])
        .violates("tkill")
        .outside(victim_unharmed(victim))
        .run();
}

#[test]
fn pidfd_send_signal_to_the_parent() {
    // pidfd_open is not supervised, but pidfd_send_signal is on the floor.
    let victim = Victim::new();
    attack("hostile_pidfd_send_signal(i64, i32) -> i64")
        .args([Value::I64(victim.pid()), Value::I32(libc::SIGKILL)])
        .policy(pure_allowing(&["pidfd_open"]))
        .violates("pidfd_send_signal")
        .outside(victim_unharmed(victim))
        .run();
}

#[test]
fn rt_sigqueueinfo_to_another_process() {
    let victim = Victim::new();
    attack("hostile_rt_sigqueueinfo(i64, i32) -> i64")
        .args([Value::I64(victim.pid()), Value::I32(libc::SIGKILL)])
        .violates("rt_sigqueueinfo")
        .outside(victim_unharmed(victim))
        .run();
}

// ---------------------------------------------------------------------------
// Attacks on the host: memory
// ---------------------------------------------------------------------------

#[test]
fn ptrace_attach_to_the_parent() {
    attack("hostile_ptrace_attach_parent() -> i64")
        .violates("ptrace")
        .run();
}

#[test]
fn ptrace_traceme() {
    attack("hostile_ptrace_traceme() -> i64")
        .violates("ptrace")
        .run();
}

#[test]
fn process_vm_writev_into_the_host() {
    // The harness checks the sentinel word.
    attack("hostile_process_vm_writev(i64, u64) -> i64")
        .args([Value::I64(host_pid()), Value::U64(sentinel_address())])
        .violates("process_vm_writev")
        .run();
}

#[test]
fn writing_the_hosts_proc_mem() {
    attack("hostile_write_proc_mem(i64, u64) -> i64")
        .args([Value::I64(host_pid()), Value::U64(sentinel_address())])
        .violates("openat")
        .run();
}

#[test]
fn writing_the_hosts_proc_mem_where_opens_are_allowed() {
    // Docker's profile allows the open; Landlock (nothing writable under an
    // imported profile) refuses it, before the read-only /proc would. The harness checks the sentinel word.
    attack("hostile_write_proc_mem(i64, u64) -> i64")
        .args([Value::I64(host_pid()), Value::U64(sentinel_address())])
        .policy(docker())
        .refused_with(libc::EACCES)
        .run();
}

#[test]
fn pidfd_getfd_on_the_parent() {
    attack("hostile_pidfd_getfd(i64, i32) -> i64")
        .args([Value::I64(host_pid()), Value::I32(0)])
        .policy(pure_allowing(&["pidfd_open"]))
        .violates("pidfd_getfd")
        .run();
}

// ---------------------------------------------------------------------------
// Attacks on the host: snooping
// ---------------------------------------------------------------------------

const READ_FILE: &str = "hostile_read_file(cstr, out[4096], u64) -> i64";

fn host_proc(file: &str) -> Value {
    Value::str(format!("/proc/{}/{file}", std::process::id()))
}

fn nothing_read(seen: &mut Seen<'_>) {
    // READ_FILE's out buffer is its second argument.
    assert!(
        seen.out_bytes(1).iter().all(|b| *b == 0),
        "something was read"
    );
}

#[test]
fn reading_the_hosts_environ() {
    attack(READ_FILE)
        .args([host_proc("environ"), Value::U64(4096)])
        .violates("openat")
        .run();
}

#[test]
fn reading_the_hosts_environ_where_opens_are_allowed() {
    // fs-read allows read-only opens; Landlock grants no /proc.
    attack(READ_FILE)
        .args([host_proc("environ"), Value::U64(4096)])
        .policy(SandboxPolicy::fs_read())
        .refused_with(libc::EACCES)
        .outside(nothing_read)
        .run();
}

#[test]
fn reading_the_hosts_environ_with_proc_granted() {
    // Even with /proc readable, the helper's own uid may not read another
    // uid's environ (a ptrace-mode check).
    attack(READ_FILE)
        .args([host_proc("environ"), Value::U64(4096)])
        .policy(toml("fs-read", "[filesystem]\nread = [\"/proc\"]\n"))
        .refused_with(libc::EACCES)
        .outside(nothing_read)
        .run();
}

#[test]
fn reading_the_hosts_cmdline_where_opens_are_allowed() {
    attack(READ_FILE)
        .args([host_proc("cmdline"), Value::U64(4096)])
        .policy(SandboxPolicy::fs_read())
        .refused_with(libc::EACCES)
        .run();
}

#[test]
fn reading_the_hosts_cmdline_with_proc_granted_is_possible() {
    // A known weakness, kept visible: /proc/PID/cmdline is readable by any
    // uid, so a policy that lists /proc shows every process's command line
    // (the pid namespace hides no pid in the host's procfs).
    attack(READ_FILE)
        .args([host_proc("cmdline"), Value::U64(4096)])
        .policy(toml("fs-read", "[filesystem]\nread = [\"/proc\"]\n"))
        .expect(Expect::ReturnsSuch(
            "some bytes",
            |v| matches!(v, Value::I64(n) if *n > 0),
        ))
        .outside(|seen| {
            let own = fs::read("/proc/self/cmdline").unwrap();
            assert!(seen.out_bytes(1).starts_with(&own[..own.len().min(4096)]));
        })
        .run();
}

#[test]
fn the_helpers_own_environment_holds_no_host_secret() {
    attack("hostile_own_environ(out[4096], u64) -> i64")
        .args([Value::U64(4096)])
        .env("FFB_PASSED", "on-purpose")
        .expect(Expect::ReturnsSuch(
            "some bytes",
            |v| matches!(v, Value::I64(n) if *n > 0),
        ))
        .outside(|seen| {
            // Inside: what the bridge passed on purpose, and LD_LIBRARY_PATH
            // (passed through for the loader), nothing else of this process.
            let env = String::from_utf8_lossy(seen.out_bytes(0)).into_owned();
            let mut keys: Vec<&str> = env_keys(&env).collect();
            keys.sort();
            let mut want = vec!["FFB_PASSED"];
            if std::env::var_os("LD_LIBRARY_PATH").is_some() {
                want.push("LD_LIBRARY_PATH");
            }
            want.sort();
            assert_eq!(keys, want, "{env:?}");
            assert!(env.contains("FFB_PASSED=on-purpose"), "{env:?}");
            // Outside: the helper's initial environment, as the kernel shows it.
            let pid = seen.bridge.helper_pid().expect("a live helper");
            let shown = fs::read(format!("/proc/{pid}/environ")).unwrap();
            let shown = String::from_utf8_lossy(&shown).into_owned();
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy();
                if key != "LD_LIBRARY_PATH" {
                    assert!(
                        !env_keys(&shown).any(|k| k == key),
                        "{key} in /proc/{pid}/environ"
                    );
                }
            }
        })
        .outside(|_| {
            // A host process that starts with a secret in its environment
            // (its fork server too) passes none of it to its helpers.
            let lib = path_str(corpus_lib());
            let mut cmd = cli::ffb();
            cmd.env(SECRET_VAR, SECRET).args(cli::call_args(
                lib,
                &["--json"],
                "hostile_own_environ(out[4096], u64) -> i64",
                &["4096"],
            ));
            let r = cli::run(cmd, None);
            r.expect_code(0);
            let out = r.json();
            let shown = out["out"][0]["hex"].as_str().expect("the out buffer");
            let env = String::from_utf8(hex::decode(shown).unwrap()).unwrap();
            assert!(out["ret"].as_i64() > Some(0), "{out}");
            assert!(
                !env.contains(SECRET),
                "the helper got the host's secret: {env:?}"
            );
            assert!(!env_keys(&env).any(|k| k == SECRET_VAR), "{env:?}");
        })
        .run();
}

/// The keys of a NUL-separated environment block.
fn env_keys(block: &str) -> impl Iterator<Item = &str> {
    block
        .split('\0')
        .filter_map(|entry| entry.split_once('=').map(|(key, _)| key))
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

const RDONLY: i32 = libc::O_RDONLY;
const WRITE_TRUNC: i32 = libc::O_WRONLY | libc::O_TRUNC;
const CREATE: i32 = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;

/// An open-family class: denied by `pure` for `syscall`, and where the
/// policy allows read-only or any opens, refused by Landlock.
fn open_class(sig: &'static str, flags: i32, policy: Option<SandboxPolicy>, syscall: &'static str) {
    let a = attack(sig);
    let file = a.precious("outside");
    let made = a.scratch.path("made");
    let target = if flags & libc::O_CREAT != 0 {
        &made
    } else {
        &file
    };
    let a = a.args([cstr(target), Value::I32(flags)]);
    let a = match policy {
        None => a.violates(syscall),
        Some(p) => a.policy(p).refused_with(libc::EACCES),
    };
    a.outside(still_precious(file)).outside(absent(made)).run();
}

#[test]
fn open_outside_the_policy() {
    open_class("hostile_open(cstr, i32) -> i64", RDONLY, None, "open");
}

#[test]
fn open_outside_the_grants_where_opens_are_allowed() {
    open_class(
        "hostile_open(cstr, i32) -> i64",
        RDONLY,
        Some(SandboxPolicy::fs_read()),
        "open",
    );
}

#[test]
fn openat_outside_the_policy() {
    open_class(
        "hostile_openat(cstr, i32) -> i64",
        WRITE_TRUNC,
        None,
        "openat",
    );
}

#[test]
fn openat_for_writing_where_opens_are_allowed() {
    open_class(
        "hostile_openat(cstr, i32) -> i64",
        WRITE_TRUNC,
        Some(docker()),
        "openat",
    );
}

#[test]
fn openat2_outside_the_policy() {
    open_class("hostile_openat2(cstr, i32) -> i64", CREATE, None, "openat2");
}

#[test]
fn openat2_creating_where_openat2_is_allowed() {
    open_class(
        "hostile_openat2(cstr, i32) -> i64",
        CREATE,
        Some(pure_allowing(&["openat2"])),
        "openat2",
    );
}

/// The policy a file-changing class runs under, and how it must end.
enum Under {
    /// `pure`: a violation of this syscall.
    Pure(&'static str),
    /// Docker's default profile, which allows the call: refused with this
    /// errno by Landlock or by the helper's own uid.
    Docker(i32),
}

/// A class changing a precious file by name (or creating `other` beside
/// it): afterwards the file is as it was and `other` does not exist.
fn change_class(sig: &'static str, args: impl FnOnce(&Path, &Path) -> Vec<Value>, under: Under) {
    let a = attack(sig);
    let file = a.precious("outside");
    let other = a.scratch.path("other");
    let a = a.args(args(&file, &other));
    let a = match under {
        Under::Pure(syscall) => a.violates(syscall),
        Under::Docker(errno) => a.policy(docker()).refused_with(errno),
    };
    let mtime = fs::metadata(&file).unwrap().mtime();
    let xattr_file = file.clone();
    a.outside(still_precious(file.clone()))
        .outside(absent(other))
        .outside(move |_| {
            assert_eq!(
                fs::metadata(&xattr_file).unwrap().mtime(),
                mtime,
                "times changed"
            );
            let name = std::ffi::CString::new("user.hostile").unwrap();
            let path = std::ffi::CString::new(path_str(&xattr_file)).unwrap();
            // SAFETY: both are NUL-terminated; a NULL buffer of size 0 only asks the size.
            let r =
                unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
            assert_eq!(r, -1, "an xattr was set");
        })
        .run();
}

#[test]
fn creat_outside_the_policy() {
    change_class(
        "hostile_creat(cstr) -> i64",
        |_, o| vec![cstr(o)],
        Under::Pure("creat"),
    );
}

#[test]
fn creat_where_it_is_allowed() {
    change_class(
        "hostile_creat(cstr) -> i64",
        |_, o| vec![cstr(o)],
        Under::Docker(libc::EACCES),
    );
}

#[test]
fn unlink_outside_the_policy() {
    change_class(
        "hostile_unlink(cstr) -> i64",
        |f, _| vec![cstr(f)],
        Under::Pure("unlink"),
    );
}

#[test]
fn unlink_where_it_is_allowed() {
    change_class(
        "hostile_unlink(cstr) -> i64",
        |f, _| vec![cstr(f)],
        Under::Docker(libc::EACCES),
    );
}

#[test]
fn rename_outside_the_policy() {
    change_class(
        "hostile_rename(cstr, cstr) -> i64",
        |f, o| vec![cstr(f), cstr(o)],
        Under::Pure("rename"),
    );
}

#[test]
fn rename_where_it_is_allowed() {
    change_class(
        "hostile_rename(cstr, cstr) -> i64",
        |f, o| vec![cstr(f), cstr(o)],
        Under::Docker(libc::EACCES),
    );
}

#[test]
fn truncate_outside_the_policy() {
    change_class(
        "hostile_truncate(cstr, i64) -> i64",
        |f, _| vec![cstr(f), Value::I64(0)],
        Under::Pure("truncate"),
    );
}

#[test]
fn truncate_where_it_is_allowed() {
    change_class(
        "hostile_truncate(cstr, i64) -> i64",
        |f, _| vec![cstr(f), Value::I64(0)],
        Under::Docker(libc::EACCES),
    );
}

#[test]
fn chmod_outside_the_policy() {
    change_class(
        "hostile_chmod(cstr, u32) -> i64",
        |f, _| vec![cstr(f), Value::U32(0o4777)],
        Under::Pure("chmod"),
    );
}

#[test]
fn chmod_where_it_is_allowed() {
    // Docker's profile grants chmod; the helper's own uid owns nothing.
    change_class(
        "hostile_chmod(cstr, u32) -> i64",
        |f, _| vec![cstr(f), Value::U32(0o4777)],
        Under::Docker(libc::EPERM),
    );
}

#[test]
fn utimes_outside_the_policy() {
    change_class(
        "hostile_utimes(cstr) -> i64",
        |f, _| vec![cstr(f)],
        Under::Pure("utimensat"),
    );
}

#[test]
fn utimes_where_it_is_allowed() {
    change_class(
        "hostile_utimes(cstr) -> i64",
        |f, _| vec![cstr(f)],
        Under::Docker(libc::EPERM),
    );
}

#[test]
fn setxattr_outside_the_policy() {
    change_class(
        "hostile_setxattr(cstr) -> i64",
        |f, _| vec![cstr(f)],
        Under::Pure("setxattr"),
    );
}

#[test]
fn setxattr_where_it_is_allowed() {
    change_class(
        "hostile_setxattr(cstr) -> i64",
        |f, _| vec![cstr(f)],
        Under::Docker(libc::EACCES),
    );
}

/// A write grant on `<scratch>/granted`, beside the precious file.
fn write_grant(a: &Attack) -> (SandboxPolicy, PathBuf) {
    let dir = a.scratch.path("granted");
    fs::create_dir(&dir).unwrap();
    let p = toml(
        "fs-read",
        &format!(
            "[filesystem]\nwrite = [{:?}]\n\n[[seccomp.rule]]\nsyscall = \"symlink\"\naction = \"allow\"\n\n\
             [[seccomp.rule]]\nsyscall = \"link\"\naction = \"allow\"\n\n\
             [[seccomp.rule]]\nsyscall = \"openat\"\naction = \"allow\"\n",
            path_str(&dir)
        ),
    );
    (p, dir)
}

#[test]
fn symlink_out_of_a_write_grant() {
    let a = attack("hostile_symlink_escape(cstr, cstr) -> i64");
    let file = a.precious("outside");
    let (policy, dir) = write_grant(&a);
    a.args([cstr(&file), cstr(&dir.join("link"))])
        .policy(policy)
        .refused_with(libc::EACCES)
        .outside(still_precious(file))
        .run();
}

#[test]
fn symlink_outside_the_policy() {
    let a = attack("hostile_symlink_escape(cstr, cstr) -> i64");
    let file = a.precious("outside");
    let link = a.scratch.path("link");
    a.args([cstr(&file), cstr(&link)])
        .violates("symlink")
        .outside(still_precious(file))
        .outside(absent(link))
        .run();
}

#[test]
fn hard_link_into_a_write_grant() {
    let a = attack("hostile_hardlink_escape(cstr, cstr) -> i64");
    let file = a.precious("outside");
    let (policy, dir) = write_grant(&a);
    let link = dir.join("hard");
    a.args([cstr(&file), cstr(&link)])
        .policy(policy)
        // Landlock refuses a link that would give the file the grant's rights.
        .refused_with(libc::EXDEV)
        .outside(still_precious(file))
        .outside(absent(link))
        .run();
}

#[test]
fn hard_link_outside_the_policy() {
    let a = attack("hostile_hardlink_escape(cstr, cstr) -> i64");
    let file = a.precious("outside");
    let link = a.scratch.path("hard");
    a.args([cstr(&file), cstr(&link)])
        .violates("link")
        .outside(still_precious(file))
        .outside(absent(link))
        .run();
}

const BY_HANDLE: &str = "hostile_open_by_handle(cstr, cstr, out[64], u64) -> i64";

#[test]
fn open_by_handle_outside_the_policy() {
    let a = attack(BY_HANDLE);
    let file = a.precious("outside");
    a.args([cstr(&file), Value::str("/"), Value::U64(64)])
        .violates("name_to_handle_at")
        .run();
}

#[test]
fn open_by_handle_around_landlock() {
    // A read grant gives a root host's helper CAP_DAC_READ_SEARCH, which
    // open_by_handle_at asks for; Landlock must still refuse the file.
    let a = attack(BY_HANDLE);
    let file = a.precious("outside");
    let granted = a.scratch.path("granted");
    fs::create_dir(&granted).unwrap();
    let policy = toml(
        "fs-read",
        &format!(
            "[filesystem]\nread = [{:?}]\n\n[[seccomp.rule]]\nsyscall = \"name_to_handle_at\"\naction = \"allow\"\n\n\
             [[seccomp.rule]]\nsyscall = \"open_by_handle_at\"\naction = \"allow\"\n",
            path_str(&granted)
        ),
    );
    a.args([cstr(&file), cstr(&granted), Value::U64(64)])
        .policy(policy)
        .refused_with(libc::EACCES)
        .outside(|seen| {
            if let Ok(out) = seen.result {
                if let Some(Some(Value::Bytes(b))) = out.out.get(2) {
                    assert!(!b.starts_with(b"precious"), "read through a handle");
                }
            }
        })
        .run();
}

// ---------------------------------------------------------------------------
// Network
// ---------------------------------------------------------------------------

#[test]
fn tcp_connect() {
    let (l, port) = untouched_listener();
    attack("hostile_tcp_connect(u16) -> i64")
        .args([Value::U16(port)])
        .violates("socket")
        .outside(never_accepted(l))
        .run();
}

#[test]
fn tcp_connect_to_an_unlisted_port_where_tcp_is_allowed() {
    let (l, port) = untouched_listener();
    attack("hostile_tcp_connect(u16) -> i64")
        .args([Value::U16(port)])
        .policy(SandboxPolicy::db_client())
        // Landlock: db-client lists no port.
        .refused_with(libc::EACCES)
        .outside(never_accepted(l))
        .run();
}

#[test]
fn tcp_bind_and_listen_where_tcp_is_allowed() {
    let (l, port) = untouched_listener();
    drop(l);
    attack("hostile_tcp_listen(u16) -> i64")
        .args([Value::U16(port)])
        .policy(SandboxPolicy::db_client())
        .violates("bind")
        .run();
}

#[test]
fn netlink_socket() {
    attack("hostile_netlink() -> i64").violates("socket").run();
}

#[test]
fn netlink_socket_where_tcp_is_allowed() {
    attack("hostile_netlink() -> i64")
        .policy(SandboxPolicy::db_client())
        .violates("socket")
        .run();
}

#[test]
fn unix_socket_by_path() {
    let a = attack("hostile_unix_connect(cstr, i32) -> i64");
    let path = a.scratch.path("sock");
    let l = UnixListener::bind(&path).unwrap();
    a.args([cstr(&path), Value::I32(0)])
        .policy(SandboxPolicy::db_client())
        .violates("socket")
        .outside(never_accepted_unix(l))
        .run();
}

#[test]
fn abstract_unix_socket() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("ffb-hostile-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
    let l = UnixListener::bind_addr(&addr).unwrap();
    attack("hostile_unix_connect(cstr, i32) -> i64")
        .args([Value::str(&name), Value::I32(1)])
        .policy(SandboxPolicy::db_client())
        .violates("socket")
        .outside(never_accepted_unix(l))
        .run();
}

/// `pure` with one unix socket granted: the host makes every `connect`.
fn unix_grant(granted: &Path) -> SandboxPolicy {
    toml(
        "pure",
        &format!("[network]\nconnect_unix = [{:?}]\n", path_str(granted)),
    )
}

#[test]
fn unix_socket_by_path_outside_the_unix_grant() {
    let a = attack("hostile_unix_connect(cstr, i32) -> i64");
    let (granted, other) = (a.scratch.path("granted.sock"), a.scratch.path("other.sock"));
    let granted_listener = UnixListener::bind(&granted).unwrap();
    let l = UnixListener::bind(&other).unwrap();
    for p in [&granted, &other] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o777)).unwrap();
    }
    let granted_arg = cstr(&granted);
    a.args([cstr(&other), Value::I32(0)])
        .policy(unix_grant(&granted))
        .refused_with(libc::EACCES)
        .outside(never_accepted_unix(l))
        .outside(move |seen| {
            // The control: the granted socket is reachable, through the host.
            let out = seen
                .bridge
                .call_by_name("hostile_unix_connect", &[granted_arg, Value::I32(0)])
                .unwrap();
            assert_eq!(out.ret, Value::I64(0));
            granted_listener.set_nonblocking(true).unwrap();
            assert!(
                granted_listener.accept().is_ok(),
                "the granted socket saw nothing"
            );
        })
        .run();
}

#[test]
fn abstract_unix_socket_with_a_unix_grant() {
    use std::os::linux::net::SocketAddrExt;
    let a = attack("hostile_unix_connect(cstr, i32) -> i64");
    let granted = a.scratch.path("granted.sock");
    let _granted_listener = UnixListener::bind(&granted).unwrap();
    let name = format!("ffb-hostile-granted-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
    let l = UnixListener::bind_addr(&addr).unwrap();
    a.args([Value::str(&name), Value::I32(1)])
        .policy(unix_grant(&granted))
        .refused_with(libc::EACCES)
        .outside(never_accepted_unix(l))
        .run();
}

#[test]
fn scm_rights_out_of_the_helper() {
    let a = attack("hostile_scm_rights(cstr) -> i64");
    let path = a.scratch.path("sock");
    let l = UnixListener::bind(&path).unwrap();
    a.args([cstr(&path)])
        .violates("socket")
        .outside(never_accepted_unix(l))
        .run();
}

// ---------------------------------------------------------------------------
// Kernel surfaces
// ---------------------------------------------------------------------------

#[test]
fn io_uring_setup() {
    attack("hostile_io_uring_setup() -> i64")
        .violates("io_uring_setup")
        .run();
}

#[test]
fn userfaultfd() {
    attack("hostile_userfaultfd() -> i64")
        .violates("userfaultfd")
        .run();
}

#[test]
fn bpf() {
    attack("hostile_bpf() -> i64").violates("bpf").run();
}

#[test]
fn perf_event_open() {
    attack("hostile_perf_event_open() -> i64")
        .violates("perf_event_open")
        .run();
}

#[test]
fn keyctl() {
    attack("hostile_keyctl() -> i64").violates("keyctl").run();
}

#[test]
fn add_key() {
    attack("hostile_add_key() -> i64").violates("add_key").run();
}

#[test]
fn mount() {
    attack("hostile_mount() -> i64").violates("mount").run();
}

#[test]
fn unshare_a_user_namespace() {
    attack("hostile_unshare(i64) -> i64")
        .args([Value::I64(i64::from(libc::CLONE_NEWUSER))])
        .violates("unshare")
        .run();
}

#[test]
fn unshare_where_it_is_allowed_still_cannot_mount() {
    // Capabilities inside a new user namespace change nothing the floor
    // decides.
    attack("hostile_unshare_then_mount() -> i64")
        .policy(pure_allowing(&["unshare"]))
        .violates("mount")
        .run();
}

#[test]
fn setns() {
    attack("hostile_setns(i32) -> i64")
        .args([Value::I32(0)])
        .violates("setns")
        .run();
}

#[test]
fn chroot() {
    let a = attack("hostile_chroot(cstr) -> i64");
    let dir = a.scratch.path("");
    a.args([cstr(&dir)]).violates("chroot").run();
}

#[test]
fn chroot_where_it_is_allowed() {
    // chroot needs CAP_SYS_CHROOT, which no helper keeps.
    let a = attack("hostile_chroot(cstr) -> i64");
    let dir = a.scratch.path("");
    a.args([cstr(&dir)])
        .policy(pure_allowing(&["chroot"]))
        .refused_with(libc::EPERM)
        .run();
}

#[test]
fn personality_read_implies_exec() {
    attack("hostile_personality(u64) -> i64")
        .args([Value::U64(0x0040_0000)])
        .violates("personality")
        .run();
}

#[test]
fn personality_where_it_is_allowed_makes_no_writable_memory_executable() {
    // READ_IMPLIES_EXEC would make the kernel add PROT_EXEC to a mapping the
    // filter saw asked for without it: that persona is on the floor.
    attack("hostile_read_implies_exec() -> i64")
        .policy(pure_allowing(&["personality"]))
        .violates("personality")
        .run();
    // The same bit with garbage in the register's upper half, or beside
    // other flags, is the same persona to the kernel.
    for persona in [0x0040_0000u64, 0x8040_0000, 0xffff_ffff_0040_0008] {
        attack("hostile_personality(u64) -> i64")
            .args([Value::U64(persona)])
            .policy(pure_allowing(&["personality"]))
            .violates("personality")
            .run();
    }
}

#[test]
fn personality_where_it_is_allowed_still_queries_and_sets_plain_personas() {
    // The query changes nothing; PER_LINUX (0) is what the helper runs as.
    for persona in [0xffff_ffffu64, 0] {
        attack("hostile_personality(u64) -> i64")
            .args([Value::U64(persona)])
            .policy(pure_allowing(&["personality"]))
            .expect(Expect::Returns(Value::I64(0)))
            .run();
    }
}

#[test]
fn modify_ldt() {
    attack("hostile_modify_ldt() -> i64")
        .violates("modify_ldt")
        .run();
}

#[test]
fn iopl() {
    attack("hostile_iopl(i32) -> i64")
        .args([Value::I32(3)])
        .violates("iopl")
        .run();
}

#[test]
fn iopl_where_it_is_allowed() {
    attack("hostile_iopl(i32) -> i64")
        .args([Value::I32(3)])
        .policy(pure_allowing(&["iopl"]))
        .expect(Expect::ReturnsSuch("EPERM or ENOSYS", |v| {
            errno_among(v, &[libc::EPERM, libc::ENOSYS])
        }))
        .run();
}

#[test]
fn tiocsti_on_an_inherited_fd() {
    attack("hostile_tiocsti(i32, cstr) -> i64")
        .args([Value::I32(0), Value::str("id\n")])
        .violates("ioctl")
        .run();
}

#[test]
fn tiocsti_where_ioctl_is_allowed() {
    attack("hostile_tiocsti(i32, cstr) -> i64")
        .args([Value::I32(0), Value::str("id\n")])
        .policy(docker())
        .violates("ioctl")
        .run();
}

// ---------------------------------------------------------------------------
// Tampering with its own sandbox
// ---------------------------------------------------------------------------

const PRCTL: &str = "hostile_prctl(i32, u64) -> i64";

#[test]
fn prctl_set_seccomp() {
    attack(PRCTL)
        .args([Value::I32(libc::PR_SET_SECCOMP), Value::U64(1)])
        .violates("prctl")
        .run();
}

#[test]
fn prctl_set_seccomp_where_prctl_is_allowed() {
    attack(PRCTL)
        .args([Value::I32(libc::PR_SET_SECCOMP), Value::U64(1)])
        .policy(pure_allowing(&["prctl"]))
        .violates("prctl")
        .run();
}

#[test]
fn prctl_set_mm_where_prctl_is_allowed() {
    // PR_SET_MM rewrites what /proc shows of the process (and its auxv):
    // it needs CAP_SYS_RESOURCE, which no helper keeps.
    attack(PRCTL)
        .args([
            Value::I32(libc::PR_SET_MM),
            Value::U64(libc::PR_SET_MM_START_CODE as u64),
        ])
        .policy(pure_allowing(&["prctl"]))
        .refused_with(libc::EPERM)
        .run();
}

#[test]
fn a_second_seccomp_filter() {
    attack("hostile_seccomp_filter() -> i64")
        .violates("seccomp")
        .run();
}

#[test]
fn a_sigsys_handler_hides_nothing() {
    attack("hostile_sigsys_hide() -> i64")
        .violates("socket")
        .run();
}

#[test]
fn setsid_to_escape_the_group_kill() {
    attack("hostile_setsid_then_hang() -> i64")
        .violates("setsid")
        .run();
}

#[test]
fn setsid_where_it_is_allowed_still_dies_on_timeout() {
    attack("hostile_setsid_then_hang() -> i64")
        .policy(pure_allowing(&["setsid", "setpgid"]))
        .hangs()
        .run();
}

#[test]
fn raising_its_rlimits() {
    attack("hostile_raise_rlimits() -> i64")
        .violates("prlimit64")
        .run();
}

#[test]
fn raising_its_rlimits_where_setrlimit_is_allowed() {
    attack("hostile_raise_rlimits() -> i64")
        .policy(pure_allowing(&["prlimit64", "setrlimit"]))
        .refused_with(libc::EPERM)
        .run();
}

#[test]
fn real_time_scheduling_to_starve_the_host() {
    attack("hostile_sched_fifo(i64) -> i64")
        .args([Value::I64(host_pid())])
        .policy(pure_allowing(&["sched_setscheduler"]))
        .violates("sched_setscheduler")
        .run();
}

#[test]
fn real_time_scheduling_of_itself() {
    attack("hostile_sched_fifo(i64) -> i64")
        .args([Value::I64(0)])
        .policy(pure_allowing(&["sched_setscheduler"]))
        .refused_with(libc::EPERM)
        .run();
}

#[test]
fn renicing_the_host() {
    attack("hostile_renice(i64, i32) -> i64")
        .args([Value::I64(host_pid()), Value::I32(19)])
        .policy(pure_allowing(&["setpriority"]))
        .violates("setpriority")
        .run();
}

// ---------------------------------------------------------------------------
// The helper's channels
// ---------------------------------------------------------------------------

#[test]
fn closing_the_helpers_fds() {
    attack("hostile_close_fds() -> i64")
        .expect(Expect::TypedLieOr(&[
            "protocol", "timeout", "crashed", "exited",
        ]))
        .run();
}

#[test]
fn dup2_over_the_helpers_fds() {
    attack("hostile_dup2_over_fds() -> i64")
        .violates("dup2")
        .run();
}

#[test]
fn dup2_over_the_helpers_fds_where_dup2_is_allowed() {
    attack("hostile_dup2_over_fds() -> i64")
        .policy(pure_allowing(&["dup2"]))
        .expect(Expect::TypedLieOr(&[
            "protocol", "timeout", "crashed", "exited",
        ]))
        .run();
}

#[test]
fn forged_protocol_text_on_stdout_and_stderr() {
    let a = attack("hostile_forge_stdio() -> i64");
    let out = a.scratch.path("extension.out");
    let mut a = a.returns(Value::I64(7));
    a.output = Some(out.clone());
    a.outside(move |_| {
        let text = fs::read_to_string(&out).unwrap();
        assert!(
            text.contains("\"ret\":1337") && text.contains("policy_violation: forged"),
            "{text:?}"
        );
    })
    .run();
}

// ---------------------------------------------------------------------------
// Memory tricks
// ---------------------------------------------------------------------------

#[test]
fn scribbling_around_its_own_argument() {
    attack("hostile_scribble_around(bytes, u64, u64) -> i64")
        .args([
            Value::bytes([0u8; 64]),
            Value::U64(TO_ARENA_START),
            Value::U64(7),
        ])
        .timeout(Duration::from_secs(1))
        .expect(Expect::TypedLieOr(&["protocol", "timeout"]))
        .run();
}

#[test]
fn scribbling_over_the_whole_arena() {
    let mut a = attack("hostile_scribble_arena(bytes, u64, u64, u64) -> i64")
        .args([
            Value::bytes([0u8; 64]),
            Value::U64(TO_ARENA_START),
            Value::U64(1 << 20),
            Value::U64(11),
        ])
        .expect(Expect::TypedLieOr(&["protocol", "timeout"]));
    a.arena = Some(1 << 20);
    a.timeout = Duration::from_secs(1);
    a.run();
}

#[test]
fn flipping_the_answer_while_the_host_decodes() {
    attack("hostile_flip_answer(bytes, u64, i64) -> i64")
        .args([
            Value::bytes([0u8; 16]),
            Value::U64(TO_HELPER_LINE),
            Value::I64(100),
        ])
        .timeout(Duration::from_secs(1))
        .expect(Expect::TypedLieOr(&["protocol", "timeout"]))
        .settle(Duration::from_millis(250))
        .run();
}

#[test]
fn writing_past_an_out_buffer() {
    attack("hostile_write_past_out(out[16], u64) -> i64")
        .args([Value::U64(1024)])
        .returns(Value::I64(1024))
        .outside(|seen| assert_eq!(seen.out_bytes(0), &[0x5a; 16]))
        .run();
}

#[test]
fn an_invalid_cstr() {
    attack("hostile_cstr_invalid() -> cstr")
        .expect(Expect::Protocol)
        .run();
}

#[test]
fn an_unterminated_cstr() {
    attack("hostile_cstr_unterminated() -> cstr")
        .expect(Expect::Protocol)
        .run();
}

#[test]
fn a_huge_cstr() {
    let mut a = attack("hostile_cstr_huge(u64) -> cstr")
        .args([Value::U64(1 << 20)])
        .expect(Expect::ResourceLimit);
    a.max_cstr = Some(64 << 10);
    a.run();
}

#[test]
fn mprotect_rwx() {
    attack("hostile_mprotect_rwx() -> i64")
        .violates("mprotect")
        .run();
}

#[test]
fn a_forged_handle_is_only_a_token() {
    attack("hostile_forged_handle(u64) -> handle")
        .args([Value::U64(sentinel_address())])
        .expect(Expect::ReturnsSuch("a handle", |v| {
            matches!(v, Value::Handle(_))
        }))
        .outside(|seen| {
            let Ok(out) = seen.result else { unreachable!() };
            let Value::Handle(h) = &out.ret else {
                unreachable!()
            };
            // The caller sees a token, never the pointer the library chose.
            assert!(
                !h.to_string().contains(&sentinel_address().to_string()),
                "{h}"
            );
            // A token the caller makes up is refused before anything is sent.
            let forged: ffb_loader::Handle = "handle:999999:7".parse().unwrap();
            seen.bridge
                .declare("hostile_handle_peek(handle) -> i64")
                .unwrap();
            let e = seen
                .bridge
                .call_by_name("hostile_handle_peek", &[Value::Handle(forged)])
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
        })
        .run();
}

// ---------------------------------------------------------------------------
// Exhaustion
// ---------------------------------------------------------------------------

#[test]
fn eating_memory() {
    let mut p = SandboxPolicy::pure();
    p.limits.memory_mb = 256;
    attack("hostile_eat_memory(i64) -> i64")
        .args([Value::I64(4096)])
        .policy(p)
        .expect(Expect::ReturnsSuch(
            "fewer MiB than the limit",
            |v| matches!(v, Value::I64(n) if (0..256).contains(n)),
        ))
        .run();
}

#[test]
fn eating_fds() {
    attack("hostile_eat_fds() -> i64")
        .policy(pure_allowing(&["dup"]))
        .refused_with(libc::EMFILE)
        .run();
}

#[test]
fn a_thread_bomb() {
    attack("hostile_thread_bomb(i64) -> i64")
        .args([Value::I64(10_000)])
        .expect(Expect::ReturnsSuch(
            "at most the thread limit",
            |v| matches!(v, Value::I64(n) if (0..16).contains(n)),
        ))
        .audited_refusal("clone", "errno:EAGAIN")
        .run();
}

#[test]
fn exhausting_mappings() {
    attack("hostile_eat_mappings() -> i64")
        .expect(Expect::ReturnsSuch(
            "under the address-space limit",
            |v| matches!(v, Value::I64(n) if (0..1).contains(n)),
        ))
        .run();
}

#[test]
fn a_signal_storm_on_itself() {
    // Each kill(getpid()) is supervised (aimed at itself, let through) and
    // delivered before it returns.
    attack("hostile_signal_storm(i64) -> i64")
        .args([Value::I64(500)])
        .returns(Value::I64(500))
        .run();
}

#[test]
fn timers() {
    attack("hostile_timers_after_return(i64) -> i64")
        .args([Value::I64(20)])
        .violates("setitimer")
        .run();
}

#[test]
fn alarm() {
    attack("hostile_alarm(u32) -> i64")
        .args([Value::U32(1)])
        .violates("alarm")
        .run();
}

/// A timer armed by one call kills the helper after that call returned.
/// The next call never ran: it gets the helper's end as a typed error that
/// says so (not as a crash of its own), the audit line says so too, and
/// the call after that runs on a fresh helper. The bridge does not run
/// the call again by itself: the library's state died with the helper, and
/// only the caller knows whether the call still makes sense without it.
#[test]
fn timers_that_fire_after_the_call() {
    let scratch = Scratch::new("hostile-timer");
    let audit = scratch.path("audit.jsonl");
    let mut bridge = bridge_builder(corpus_lib(), &["hostile_timers_after_return(i64) -> i64", PING])
        .policy(pure_allowing(&["setitimer"]))
        .audit_log(&audit)
        .load()
        .expect("loading the corpus");
    let armed = bridge
        .call_by_name("hostile_timers_after_return", &[Value::I64(20)])
        .expect("arming the timer");
    assert_eq!(armed.ret, Value::I64(0));
    let old = bridge.helper_pid().expect("a helper");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !has_ended(old) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(has_ended(old), "the timer never fired");
    let e = bridge
        .call_by_name("hostile_ping", &[Value::I64(41)])
        .expect_err("the helper is gone");
    assert_eq!(e.kind, ffb_tests::bridge::crashed("SIGALRM"), "{e}");
    assert!(
        e.message.contains("before it took this call") && e.message.contains("did not run"),
        "{e}"
    );
    let next = bridge
        .call_by_name("hostile_ping", &[Value::I64(41)])
        .expect("a fresh helper");
    assert_eq!(next.ret, Value::I64(42));
    let lines = audit_lines(&audit);
    let crash: Vec<&Json> = lines.iter().filter(|l| l["event"] == "crash").collect();
    assert_eq!(crash.len(), 1, "{lines:#?}");
    // The host names the call it posted, and says it did not run: the
    // helper's claim cannot take the blame off a function.
    assert_eq!(crash[0]["function"], "hostile_ping", "{lines:#?}");
    let detail = crash[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(detail.contains("did not run"), "{lines:#?}");
    assert_eq!(crash[0]["pid"], Json::from(old), "{lines:#?}");
}
