//! Every error kind, produced on purpose with the hostile corpus under the
//! default `pure` policy, each followed by a successful call on the same
//! Bridge (the helper is replaced automatically).
//!
//! Several tests count the fork server's children and this process's, which
//! concurrent tests would disturb: so this file is a test binary of its own
//! (not a module of `integration`), and its tests take a process-wide lock.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ffb_loader::{
    Bridge, BridgeBuilder, BridgeMode, Error, ErrorKind, Handle, SandboxPolicy, Value,
};
use ffb_tests::bridge::{crashed, violation};
use ffb_tests::procfs::namespaced_pid;
use ffb_tests::procfs::{fork_server_children, has_ended};
use ffb_tests::rng::XorShift;
use ffb_tests::{bridge_builder, child_processes, fixture_lib, hostile_lib, shim_bin};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The harmless probe used after each failure: RLIMIT_NOFILE is 64.
const PROBE: &str = "ffb_rlimit_cur(i32) -> i64";
const RLIMIT_CPU: i32 = 0;
const RLIMIT_CORE: i32 = 4;
const RLIMIT_NOFILE: i32 = 7;
const RLIMIT_AS: i32 = 9;

/// Short, so that the hangs time out quickly, and still far above what a
/// harmless call takes.
const TIMEOUT: Duration = Duration::from_millis(1500);

fn builder(lib: impl AsRef<std::path::Path>, decls: &[&str]) -> BridgeBuilder {
    bridge_builder(lib, decls).timeout(TIMEOUT)
}

fn hostile(decls: &[&str]) -> Bridge {
    let mut all = vec![PROBE];
    all.extend_from_slice(decls);
    builder(hostile_lib(), &all)
        .load()
        .expect("loading the hostile corpus")
}

fn hostile_with(policy: SandboxPolicy, decls: &[&str]) -> Bridge {
    let mut all = vec![PROBE];
    all.extend_from_slice(decls);
    builder(hostile_lib(), &all)
        .policy(policy)
        .load()
        .expect("loading the hostile corpus")
}

fn probe(b: &mut Bridge) -> Value {
    b.call_by_name("ffb_rlimit_cur", &[Value::I32(RLIMIT_NOFILE)])
        .unwrap_or_else(|e| panic!("probe call: {e}"))
        .ret
}

/// Calls `name(args)`, expects exactly `kind`, then checks the bridge
/// recovers: the old helper is gone, the next call succeeds in a new one and
/// `respawns()` went up by one.
fn fails_then_recovers(b: &mut Bridge, name: &str, args: &[Value], kind: ErrorKind) -> Error {
    let before = b.respawns();
    let old_pid = b.helper_pid().expect("a live helper before the call");
    let e = match b.call_by_name(name, args) {
        Ok(out) => panic!("{name}: expected {kind:?}, got success {out:?}"),
        Err(e) => e,
    };
    assert_eq!(e.kind, kind, "{name}: {e}");
    assert!(e.kind.ends_helper(), "{name}: {e}");
    assert_eq!(b.helper_pid(), None, "{name}: the helper is gone");
    assert!(
        has_ended(old_pid),
        "{name}: the old helper {old_pid} still runs"
    );
    assert_eq!(probe(b), Value::I64(64), "{name}: the next call works");
    assert_eq!(b.respawns(), before + 1, "{name}: respawns()");
    assert_ne!(b.helper_pid(), Some(old_pid));
    e
}

/// This process's children as `(pid, comm)` (the state of the fork server
/// changes as it works, so it is left out), after checking none is a zombie.
fn children() -> Vec<(i32, String)> {
    let all = child_processes();
    assert!(
        all.iter().all(|(_, state, _)| *state != 'Z'),
        "zombie children: {all:?}"
    );
    all.into_iter().map(|(pid, _, comm)| (pid, comm)).collect()
}

/// Children of the fork server (live helpers and unreaped ones), sorted.
fn helpers() -> Vec<i32> {
    fork_server_children(&shim_bin())
}

/// Polls `f` until it returns `want` or 2 s pass; returns the last value.
fn settle<T: PartialEq>(want: &T, mut f: impl FnMut() -> T) -> T {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let v = f();
        if &v == want || Instant::now() >= deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// crashes, exits, hangs
// ---------------------------------------------------------------------------

#[test]
fn crashes_are_reported_with_their_signal() {
    let _g = serial();
    let mut b = hostile(&[
        "ffb_segv() -> void",
        "ffb_abort() -> void",
        "ffb_stack_overflow() -> void",
        "ffb_raise(i32) -> void",
    ]);
    let e = fails_then_recovers(&mut b, "ffb_segv", &[], crashed("SIGSEGV"));
    assert_eq!(e.kind_name(), "crashed");
    assert_eq!(e.to_json()["signal"], "SIGSEGV");
    fails_then_recovers(&mut b, "ffb_abort", &[], crashed("SIGABRT"));
    // A stack overflow hits the guard page. The shim is a Rust program,
    // whose runtime turns a guard-page fault into "has overflowed its
    // stack" and abort(), so the helper may die from SIGABRT instead.
    let before = b.respawns();
    let e = b.call_by_name("ffb_stack_overflow", &[]).unwrap_err();
    assert!(
        e.kind == crashed("SIGSEGV") || e.kind == crashed("SIGABRT"),
        "ffb_stack_overflow: {e}"
    );
    assert_eq!(probe(&mut b), Value::I64(64));
    assert_eq!(b.respawns(), before + 1);
    fails_then_recovers(
        &mut b,
        "ffb_raise",
        &[Value::I32(libc::SIGTERM)],
        crashed("SIGTERM"),
    );
}

/// A fatal signal the library raises kills the helper with that signal,
/// as it would kill a plain C process. Each signal is raised in a fresh
/// helper, so nothing an earlier one did can interfere.
#[test]
fn raised_fatal_signals_kill_the_helper() {
    let _g = serial();
    let mut b = hostile(&["ffb_raise(i32) -> void"]);
    let signals = [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGPIPE,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGUSR1,
        libc::SIGTERM,
    ];
    let mut got = Vec::new();
    let mut want = Vec::new();
    for sig in signals {
        b.respawn().unwrap();
        let name = ffb_loader::signal_name(sig);
        let outcome = match b.call_by_name("ffb_raise", &[Value::I32(sig)]) {
            Ok(out) => format!("raise({name}) returned {:?}", out.ret),
            Err(e) => {
                format!("raise({name}): {}", e.kind_name())
                    + &match e.kind {
                        ErrorKind::Crashed { signal } => format!(" {signal}"),
                        _ => String::new(),
                    }
            }
        };
        got.push(outcome);
        want.push(format!("raise({name}): crashed {name}"));
    }
    assert_eq!(got, want);
    assert_eq!(probe(&mut b), Value::I64(64));
}

#[test]
fn exits_are_reported_with_their_code() {
    let _g = serial();
    let mut b = hostile(&["ffb_exit(i32) -> void", "ffb_exit_now(i32) -> void"]);
    let e = fails_then_recovers(
        &mut b,
        "ffb_exit",
        &[Value::I32(7)],
        ErrorKind::Exited { code: 7 },
    );
    assert_eq!(e.to_json()["code"], 7);
    fails_then_recovers(
        &mut b,
        "ffb_exit_now",
        &[Value::I32(3)],
        ErrorKind::Exited { code: 3 },
    );
    fails_then_recovers(
        &mut b,
        "ffb_exit",
        &[Value::I32(0)],
        ErrorKind::Exited { code: 0 },
    );
}

#[test]
fn hangs_time_out() {
    let _g = serial();
    let mut b = hostile(&["ffb_spin_forever() -> void", "ffb_sigstop() -> void"]);
    let e = fails_then_recovers(&mut b, "ffb_spin_forever", &[], ErrorKind::Timeout);
    assert_eq!(e.kind_name(), "timeout");
    fails_then_recovers(&mut b, "ffb_sigstop", &[], ErrorKind::Timeout);
}

#[test]
fn cpu_limit_is_a_resource_limit() {
    let _g = serial();
    let mut policy = SandboxPolicy::pure();
    policy.limits.cpu_seconds = 1;
    let mut b = builder(hostile_lib(), &[PROBE, "ffb_burn_cpu_ms(i64) -> i64"])
        .policy(policy)
        .timeout(Duration::from_secs(15))
        .load()
        .unwrap();
    // A short burn is fine.
    assert_eq!(
        b.call_by_name("ffb_burn_cpu_ms", &[Value::I64(20)])
            .unwrap()
            .ret,
        Value::I64(20)
    );
    let before = b.respawns();
    let e = b
        .call_by_name("ffb_burn_cpu_ms", &[Value::I64(3000)])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceLimit, "{e}");
    assert_eq!(e.kind_name(), "resource_limit");
    let old_pid = b.helper_pid();
    // The helper died from SIGXCPU: the next calls run in a new one.
    for attempt in 1..=2 {
        let next = b.call_by_name("ffb_rlimit_cur", &[Value::I32(RLIMIT_NOFILE)]);
        assert!(
            matches!(&next, Ok(out) if out.ret == Value::I64(64)),
            "call {attempt} after the CPU-limit kill: {next:?} (helper_pid {:?} -> {:?}, respawns {} -> {})",
            old_pid,
            b.helper_pid(),
            before,
            b.respawns()
        );
    }
    assert_eq!(b.respawns(), before + 1);
}

#[test]
fn memory_limit_makes_malloc_fail() {
    let _g = serial();
    let mut b = hostile(&["ffb_malloc_touch(u64) -> i64"]);
    // RLIMIT_AS is 1 GiB: 2 GiB cannot be had, small amounts can.
    assert_eq!(
        b.call_by_name("ffb_malloc_touch", &[Value::U64(2 << 30)])
            .unwrap()
            .ret,
        Value::I64(0)
    );
    assert_eq!(
        b.call_by_name("ffb_malloc_touch", &[Value::U64(1 << 20)])
            .unwrap()
            .ret,
        Value::I64(1)
    );
}

// ---------------------------------------------------------------------------
// policy violations
// ---------------------------------------------------------------------------

#[test]
fn forbidden_syscalls_are_policy_violations() {
    let _g = serial();
    let mut b = hostile(&[
        "ffb_execve() -> i32",
        "ffb_open(cstr) -> i32",
        "ffb_socket() -> i32",
        "ffb_fork() -> i32",
        "ffb_ptrace_parent() -> i32",
        "ffb_bpf() -> i32",
        "ffb_io_uring_setup() -> i32",
        "ffb_userfaultfd() -> i32",
        "ffb_perf_event_open() -> i32",
        "ffb_keyctl() -> i32",
        "ffb_process_vm_readv_parent() -> i32",
        "ffb_mount() -> i32",
        "ffb_sigsys_ignore_then_execve() -> i32",
        "ffb_sigsys_handler_then_socket() -> i32",
        "ffb_thread_socket() -> i32",
        "ffb_read_file(cstr, out[64], usize) -> i32",
    ]);
    let cases: &[(&str, &[Value], &str, i64)] = &[
        ("ffb_execve", &[], "execve", 59),
        (
            "ffb_open",
            &[Value::Str(b"/etc/passwd".to_vec())],
            "openat",
            257,
        ),
        ("ffb_socket", &[], "socket", 41),
        ("ffb_fork", &[], "clone", 56),
        ("ffb_ptrace_parent", &[], "ptrace", 101),
        ("ffb_bpf", &[], "bpf", 321),
        ("ffb_io_uring_setup", &[], "io_uring_setup", 425),
        ("ffb_userfaultfd", &[], "userfaultfd", 323),
        ("ffb_perf_event_open", &[], "perf_event_open", 298),
        ("ffb_keyctl", &[], "keyctl", 250),
        ("ffb_process_vm_readv_parent", &[], "process_vm_readv", 310),
        ("ffb_mount", &[], "mount", 165),
        ("ffb_sigsys_ignore_then_execve", &[], "execve", 59),
        ("ffb_sigsys_handler_then_socket", &[], "socket", 41),
        ("ffb_thread_socket", &[], "socket", 41),
        (
            "ffb_read_file",
            &[Value::Str(b"/etc/hostname".to_vec()), Value::Usize(64)],
            "openat",
            257,
        ),
    ];
    for (name, args, syscall, nr) in cases {
        let e = fails_then_recovers(&mut b, name, args, violation(syscall, *nr));
        assert_eq!(e.kind_name(), "policy_violation");
        assert_eq!(e.to_json()["syscall"], *syscall);
        assert_eq!(e.to_json()["nr"], *nr);
        assert!(e.message.contains("'pure'"), "{name}: {e}");
    }
}

#[test]
fn signals_to_other_processes_are_violations() {
    let _g = serial();
    let mut b = hostile(&["ffb_kill_parent() -> i32", "ffb_kill_pid(i64, i32) -> i32"]);
    let server = ffb_loader::fork_server_pid(&shim_bin()).expect("a fork server runs");
    fails_then_recovers(&mut b, "ffb_kill_parent", &[], violation("kill", 62));
    // The fork server (the helper's parent) was not killed...
    assert_eq!(ffb_loader::fork_server_pid(&shim_bin()), Some(server));
    assert!(!has_ended(server as i32));
    // ...and neither is this process, by pid (signal 0: harmless if it got through).
    let me = std::process::id() as i64;
    fails_then_recovers(
        &mut b,
        "ffb_kill_pid",
        &[Value::I64(me), Value::I32(0)],
        violation("kill", 62),
    );
    // Signalling itself is allowed: kill(own pid, 0) returns 0 (its pid as
    // it counts it, in the fork server's pid namespace).
    let pid = namespaced_pid(b.helper_pid().unwrap()).unwrap();
    assert_eq!(
        b.call_by_name("ffb_kill_pid", &[Value::I64(pid), Value::I32(0)])
            .unwrap()
            .ret,
        Value::I32(0)
    );
}

#[test]
fn threads_work_under_pure() {
    let _g = serial();
    let mut b = hostile(&["ffb_thread_sum(i32) -> i64"]);
    for n in [1i64, 8, 64] {
        assert_eq!(
            b.call_by_name("ffb_thread_sum", &[Value::I32(n as i32)])
                .unwrap()
                .ret,
            Value::I64(500_500 * n * (n + 1) / 2),
            "{n} threads"
        );
    }
}

// ---------------------------------------------------------------------------
// the helper's privileges, seen from inside
// ---------------------------------------------------------------------------

#[test]
fn helper_has_no_privileges() {
    let _g = serial();
    let policy = SandboxPolicy::pure()
        .allow("capget")
        .and_then(|p| p.allow("prctl"))
        .and_then(|p| p.allow("prlimit64"))
        .and_then(|p| p.allow("setrlimit"))
        .and_then(|p| p.allow("socket"))
        .and_then(|p| p.allow("fcntl"))
        .unwrap();
    let mut b = hostile_with(
        policy,
        &[
            "ffb_capeff() -> u64",
            "ffb_capbnd_count() -> u64",
            "ffb_securebits() -> i64",
            "ffb_no_new_privs() -> i64",
            "ffb_raise_nofile() -> i32",
            "ffb_raw_socket() -> i32",
            "ffb_count_open_fds() -> i32",
        ],
    );
    let mut call = |name: &str, args: &[Value]| {
        b.call_by_name(name, args)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .ret
    };
    assert_eq!(call("ffb_capeff", &[]), Value::U64(0));
    assert_eq!(call("ffb_capbnd_count", &[]), Value::U64(0));
    assert_eq!(call("ffb_no_new_privs", &[]), Value::I64(1));
    // NOROOT, NO_SETUID_FIXUP and NO_CAP_AMBIENT_RAISE, each locked, and
    // KEEP_CAPS_LOCKED: bits 0, 1, 2, 3, 5, 6, 7.
    assert_eq!(call("ffb_securebits", &[]), Value::I64(0xef));
    assert_eq!(
        call("ffb_raise_nofile", &[]),
        Value::I32(-libc::EPERM),
        "raising RLIMIT_NOFILE"
    );
    assert_eq!(
        call("ffb_raw_socket", &[]),
        Value::I32(-libc::EPERM),
        "raw socket without CAP_NET_RAW"
    );
    assert_eq!(
        call("ffb_rlimit_cur", &[Value::I32(RLIMIT_AS)]),
        Value::I64(1 << 30)
    );
    assert_eq!(
        call("ffb_rlimit_cur", &[Value::I32(RLIMIT_CORE)]),
        Value::I64(0)
    );
    assert_eq!(
        call("ffb_rlimit_cur", &[Value::I32(RLIMIT_NOFILE)]),
        Value::I64(64)
    );
    assert_eq!(
        call("ffb_rlimit_cur", &[Value::I32(RLIMIT_CPU)]),
        Value::I64(3600)
    );
    let fds = call("ffb_count_open_fds", &[]);
    let Value::I32(n) = fds else {
        panic!("{fds:?}")
    };
    assert!((3..=8).contains(&n), "the helper has {n} open fds");
}

// ---------------------------------------------------------------------------
// stale handles
// ---------------------------------------------------------------------------

#[test]
fn handles_die_with_their_helper() {
    let _g = serial();
    let mut b = builder(
        fixture_lib(),
        &[
            "ffb_counter_new(i64) -> handle",
            "ffb_counter_next(handle) -> i64",
            "ffb_counter_peek_ptr(*handle) -> i64",
            "ffb_reverse_bytes(bytes, usize) -> void",
        ],
    )
    .load()
    .unwrap();
    let h = b
        .call_by_name("ffb_counter_new", &[Value::I64(5)])
        .unwrap()
        .ret;
    let Value::Handle(token) = h.clone() else {
        panic!("{h:?}")
    };
    assert_eq!(
        b.call_by_name("ffb_counter_next", std::slice::from_ref(&h))
            .unwrap()
            .ret,
        Value::I64(5)
    );
    // A handle index this helper never issued, in the current generation.
    let text = token.to_string();
    let generation = text.split(':').nth(1).unwrap();
    let forged: Handle = format!("handle:{generation}:77").parse().unwrap();
    let e = b
        .call_by_name("ffb_counter_next", &[Value::Handle(forged)])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    // Force a crash: reverse a "buffer" of 2^40 bytes runs off the arena.
    let e = b
        .call_by_name(
            "ffb_reverse_bytes",
            &[Value::bytes([1, 2, 3]), Value::Usize(1 << 40)],
        )
        .unwrap_err();
    assert_eq!(e.kind, crashed("SIGSEGV"), "{e}");
    let e = b
        .call_by_name("ffb_counter_next", std::slice::from_ref(&h))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    assert_eq!(e.kind_name(), "stale_handle");
    let e = b
        .call_by_name("ffb_counter_peek_ptr", std::slice::from_ref(&h))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    // New handles from the new helper work; the old one stays stale.
    let h2 = b
        .call_by_name("ffb_counter_new", &[Value::I64(9)])
        .unwrap()
        .ret;
    assert_ne!(h2, h);
    assert_eq!(
        b.call_by_name("ffb_counter_next", &[h2]).unwrap().ret,
        Value::I64(9)
    );
    // An explicit respawn makes handles stale too.
    let h3 = b
        .call_by_name("ffb_counter_new", &[Value::I64(1)])
        .unwrap()
        .ret;
    b.respawn().unwrap();
    let e = b.call_by_name("ffb_counter_next", &[h3]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
}

// ---------------------------------------------------------------------------
// load-time errors
// ---------------------------------------------------------------------------

#[test]
fn missing_symbol_fails_the_load_and_leaves_no_helper() {
    let _g = serial();
    // Make sure the fork server runs, so its children can be counted.
    let warm = hostile(&[]);
    drop(warm);
    let baseline = settle(&Vec::new(), helpers);
    assert_eq!(baseline, Vec::<i32>::new());
    let kids = children();
    let e = builder(hostile_lib(), &[PROBE, "no_such_fn() -> void"])
        .load()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::SymbolNotFound, "{e}");
    assert_eq!(e.kind_name(), "symbol_not_found");
    assert!(e.message.contains("no_such_fn"), "{e}");
    assert_eq!(settle(&baseline, helpers), baseline, "a helper was left");
    assert_eq!(settle(&kids, children), kids);

    // Declaring a missing symbol on a live bridge fails at once, and the
    // helper survives.
    let mut b = hostile(&[]);
    let pid = b.helper_pid();
    let e = b.declare("also_missing(i32) -> i32").unwrap_err();
    assert_eq!(e.kind, ErrorKind::SymbolNotFound, "{e}");
    assert_eq!(b.helper_pid(), pid);
    assert!(b.function("also_missing").is_none());
    assert_eq!(probe(&mut b), Value::I64(64));
    let f = b.declare("ffb_thread_sum(i32) -> i64").unwrap();
    assert_eq!(
        b.call(f, &[Value::I32(2)]).unwrap().ret,
        Value::I64(1_501_500)
    );
}

#[test]
fn missing_library_is_load_failed() {
    let _g = serial();
    let e = builder("/nonexistent/libffb_nope.so", &["f() -> void"])
        .load()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::LoadFailed, "{e}");
    assert_eq!(e.kind_name(), "load_failed");
    assert!(e.message.contains("libffb_nope"), "{e}");
    assert_eq!(settle(&Vec::new(), helpers), Vec::<i32>::new());
}

#[test]
fn variadic_declaration_is_bad_signature_and_spawns_nothing() {
    let _g = serial();
    let server = ffb_loader::fork_server_pid(&shim_bin());
    let before = helpers();
    let kids = children();
    let e = builder("libc.so.6", &["printf(cstr, ...) -> i32"])
        .load()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadSignature, "{e}");
    assert_eq!(e.kind_name(), "bad_signature");
    assert!(e.message.contains("variadic"), "{e}");
    assert_eq!(ffb_loader::fork_server_pid(&shim_bin()), server);
    assert_eq!(helpers(), before);
    assert_eq!(settle(&kids, children), kids);
}

#[test]
fn bridge_disabled_spawns_nothing() {
    let _g = serial();
    let server = ffb_loader::fork_server_pid(&shim_bin());
    let before = helpers();
    let kids = children();
    let e = builder(fixture_lib(), &["ffb_nop() -> void"])
        .bridge_mode(BridgeMode::Disabled)
        .load()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BridgeDisabled, "{e}");
    assert_eq!(e.kind_name(), "bridge_disabled");
    // The default is disabled too.
    let e = Bridge::builder(fixture_lib().to_str().unwrap())
        .shim(shim_bin())
        .declare("ffb_nop() -> void")
        .load()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BridgeDisabled, "{e}");
    assert_eq!(ffb_loader::fork_server_pid(&shim_bin()), server);
    assert_eq!(helpers(), before);
    assert_eq!(settle(&kids, children), kids);
}

// ---------------------------------------------------------------------------
// bad arguments
// ---------------------------------------------------------------------------

#[test]
fn bad_arguments_are_rejected_before_the_call() {
    let _g = serial();
    let mut b = builder(
        fixture_lib(),
        &[
            "ffb_id_i8(i8) -> i8",
            "ffb_add_i64(i64, i64) -> i64",
            "ffb_strlen(cstr) -> usize",
            "ffb_fill_out(out[8], usize) -> i32",
            "ffb_calls() -> i64",
        ],
    )
    .load()
    .unwrap();
    let pid = b.helper_pid();
    assert_eq!(b.call_by_name("ffb_calls", &[]).unwrap().ret, Value::I64(1));
    let cases: Vec<(&str, Vec<Value>)> = vec![
        ("ffb_add_i64", vec![Value::I64(1)]),
        (
            "ffb_add_i64",
            vec![Value::I64(1), Value::I64(2), Value::I64(3)],
        ),
        ("ffb_id_i8", vec![]),
        ("ffb_id_i8", vec![Value::I32(200)]),
        ("ffb_id_i8", vec![Value::I64(-129)]),
        ("ffb_id_i8", vec![Value::F64(1.0)]),
        ("ffb_id_i8", vec![Value::str("1")]),
        ("ffb_strlen", vec![Value::str("a\0b")]),
        ("ffb_strlen", vec![Value::bytes([0])]),
        ("ffb_strlen", vec![Value::I32(3)]),
        // out[N] takes no value.
        ("ffb_fill_out", vec![Value::bytes([0; 8]), Value::Usize(8)]),
    ];
    for (name, args) in &cases {
        let e = b.call_by_name(name, args).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadArgument, "{name}{args:?}: {e}");
        assert_eq!(e.kind_name(), "bad_argument");
        assert!(!e.kind.ends_helper());
    }
    let e = b
        .call_by_name("ffb_strlen", &[Value::str("a\0b")])
        .unwrap_err();
    assert!(e.message.contains("NUL"), "{e}");
    // Nothing was called and the helper is the same one.
    assert_eq!(b.helper_pid(), pid);
    assert_eq!(b.call_by_name("ffb_calls", &[]).unwrap().ret, Value::I64(2));
    // An undeclared name is not an argument error.
    let e = b.call_by_name("ffb_nop", &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadSignature, "{e}");
}

#[test]
fn buffers_larger_than_the_arena_are_bad_arguments() {
    let _g = serial();
    let mut b = builder(fixture_lib(), &["ffb_sum_bytes(bytes, usize) -> u32"])
        .arena_size(64 << 10)
        .load()
        .unwrap();
    let e = b
        .call_by_name(
            "ffb_sum_bytes",
            &[Value::bytes(vec![1u8; 100 << 10]), Value::Usize(100 << 10)],
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    assert_eq!(
        b.call_by_name(
            "ffb_sum_bytes",
            &[Value::bytes(vec![1u8; 50 << 10]), Value::Usize(50 << 10)]
        )
        .unwrap()
        .ret,
        Value::U32(50 << 10)
    );
}

// ---------------------------------------------------------------------------
// respawn accounting
// ---------------------------------------------------------------------------

/// `respawns()` is "how many helpers this bridge has started after the
/// first": a freshly loaded bridge has started none.
#[test]
fn fresh_bridges_report_zero_respawns() {
    let _g = serial();
    let first = hostile(&[]);
    let second = hostile(&[]);
    assert_eq!(
        (first.respawns(), second.respawns()),
        (0, 0),
        "respawns() of two freshly loaded bridges"
    );
}

#[test]
fn explicit_respawn_replaces_the_helper() {
    let _g = serial();
    let mut b = hostile(&[]);
    let before = b.respawns();
    let pid = b.helper_pid().unwrap();
    b.respawn().unwrap();
    assert_ne!(b.helper_pid(), Some(pid));
    assert_eq!(b.respawns(), before + 1);
    assert_eq!(probe(&mut b), Value::I64(64));
}

// ---------------------------------------------------------------------------
// protocol attacks on the arena
// ---------------------------------------------------------------------------

const SCRIBBLE_U64: &str = "ffb_scribble_u64(bytes, u64, u64) -> void";
const SCRIBBLE: &str = "ffb_scribble(bytes, u64, u64, u64) -> void";
/// The first buffer is at arena offset 4096, so `back = 4096` reaches the
/// arena's start (the host line: req_seq at 0, op at 4).
const TO_ARENA_START: u64 = 4096;
/// `resp_seq` at 64, `status` at 68.
const TO_HELPER_LINE: u64 = 4096 - 64;

/// Runs `ffb_scribble_u64(p, 4096, forged)` as the first call of a fresh
/// helper (sequence number 1) whose host spins for the answer.
fn forge_request(forged: u64) -> (Bridge, ffb_loader::Result<ffb_loader::CallOutput>) {
    let mut b = builder(hostile_lib(), &[PROBE, SCRIBBLE_U64])
        .host_spin(Duration::from_millis(500))
        .timeout(Duration::from_millis(300))
        .load()
        .unwrap();
    // The host spins on one CPU and the helper runs on the other: on one
    // CPU the helper would always replay before the host looked.
    let _pinned = PinnedApart::new(b.helper_pid().expect("a helper"));
    let first = b.call_by_name(
        "ffb_scribble_u64",
        &[
            Value::bytes([0u8; 16]),
            Value::U64(TO_ARENA_START),
            Value::U64(forged),
        ],
    );
    // Let the helper act on the forged request before the next real one.
    std::thread::sleep(Duration::from_millis(200));
    (b, first)
}

/// While alive, this thread runs on CPU 0 and the helper on CPU 1 (where
/// the machine has two); dropping it gives this thread every CPU back.
struct PinnedApart {
    before: Option<libc::cpu_set_t>,
}

impl PinnedApart {
    fn new(helper: i32) -> PinnedApart {
        let one = |cpu: usize| {
            // SAFETY: cpu_set_t is plain bits; all zeroes is the empty set.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            // SAFETY: `set` is a live cpu_set_t and `cpu` is below its size.
            unsafe { libc::CPU_SET(cpu, &mut set) };
            set
        };
        // SAFETY: as above.
        let mut before: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: pid 0 is this thread; `before` is a live set of `size` bytes.
        if unsafe { libc::sched_getaffinity(0, size, &mut before) } != 0
            // SAFETY: `before` was just filled in.
            || unsafe { libc::CPU_COUNT(&before) } < 2
        {
            return PinnedApart { before: None };
        }
        // SAFETY: sched_setaffinity reads `size` bytes of the live set; the
        // helper is this test's own bridge's, which the test may move.
        unsafe { libc::sched_setaffinity(helper, size, &one(1)) };
        // SAFETY: as above, for this thread (pid 0).
        unsafe { libc::sched_setaffinity(0, size, &one(0)) };
        PinnedApart {
            before: Some(before),
        }
    }
}

impl Drop for PinnedApart {
    fn drop(&mut self) {
        if let Some(before) = &self.before {
            // SAFETY: pid 0 is this thread; `before` is a live set.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), before) };
        }
    }
}

/// A forged request: the helper moves `req_seq` on to the next sequence
/// number with an unknown op, so it "answers" the host's next request
/// before it is made. The host must see the bad answer and report protocol.
///
/// The helper answers the forged request right after the real one, so the
/// host may miss the real answer (a timeout) or read the forged status with
/// it (protocol on the first call); otherwise the second call must fail.
#[test]
fn forged_request_with_unknown_op_is_protocol() {
    let _g = serial();
    let (mut b, first) = forge_request(2 | (99 << 32));
    let before = b.respawns();
    let e = match first {
        Ok(out) => {
            assert_eq!(out.ret, Value::Null);
            let e = b
                .call_by_name("ffb_rlimit_cur", &[Value::I32(RLIMIT_NOFILE)])
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
            e
        }
        Err(e) if e.kind == ErrorKind::Timeout => e,
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
            e
        }
    };
    if e.kind == ErrorKind::Protocol {
        assert_eq!(e.kind_name(), "protocol");
        assert!(
            e.message.contains("unknown op") || e.message.contains("rewritten"),
            "{e}"
        );
    }
    assert_eq!(b.helper_pid(), None);
    assert_eq!(probe(&mut b), Value::I64(64));
    assert_eq!(b.respawns(), before + 1);
}

/// The same forgery with a valid op: the helper replays the scribbling
/// call as "request 2" and answers it before the host's real request 2 is
/// made. The host's next call must not return that replayed answer as its
/// own result: either the real result (64) or a protocol error.
///
/// Whether the host sees the real answer to the scribbling call before the
/// replay overwrites it is a race (a miss is a timeout). The helper's
/// direct calls make the replay fast enough that most attempts miss, so
/// this tries up to forty fresh helpers until one gets that far (a miss
/// costs half a second; the first hit ends the test).
#[test]
fn forged_request_replay_is_not_taken_as_the_next_result() {
    let _g = serial();
    let mut misses = 0;
    for _ in 0..40 {
        let (mut b, first) = forge_request(2 | (1 << 32)); // req_seq = 2, op = Call
        match first {
            Ok(out) => assert_eq!(out.ret, Value::Null),
            // The host saw its request rewritten: the forgery is caught at once.
            Err(e) if e.kind == ErrorKind::Protocol => {
                assert!(e.message.contains("rewritten"), "{e}");
                assert_eq!(probe(&mut b), Value::I64(64));
                return;
            }
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
                assert_eq!(probe(&mut b), Value::I64(64));
                misses += 1;
                continue;
            }
        }
        let got = b.call_by_name("ffb_rlimit_cur", &[Value::I32(RLIMIT_NOFILE)]);
        match &got {
            Ok(out) if out.ret == Value::I64(64) => {}
            Err(e) if e.kind == ErrorKind::Protocol => {}
            other => panic!(
                "ffb_rlimit_cur(RLIMIT_NOFILE) after a forged request (after {misses} missed attempts): expected Ok(I64(64)) or a protocol error, got {other:?}"
            ),
        }
        return;
    }
    panic!("the host missed the real answer in all {misses} attempts");
}

/// A forged response header (resp_seq = 1 with an unknown status) written
/// during the call itself, while the host spins on resp_seq. Whether the
/// host sees it before the helper's real answer overwrites it is a race;
/// either way the result is the real one or a protocol error.
#[test]
fn forged_response_header_is_protocol_or_ignored() {
    let _g = serial();
    let mut b = builder(hostile_lib(), &[PROBE, SCRIBBLE_U64])
        .host_spin(Duration::from_millis(500))
        .load()
        .unwrap();
    let forged = 1u64 | (0xdead_u64 << 32); // resp_seq = 1, status = 0xdead
    let got = b.call_by_name(
        "ffb_scribble_u64",
        &[
            Value::bytes([0u8; 16]),
            Value::U64(TO_HELPER_LINE),
            Value::U64(forged),
        ],
    );
    match &got {
        Ok(out) => assert_eq!(out.ret, Value::Null),
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
            assert!(e.message.contains("unknown status 57005"), "{e}");
        }
    }
    b.respawn().unwrap();
    assert_eq!(probe(&mut b), Value::I64(64));
}

/// Random bytes over the whole control block, a few hundred times. The
/// host must never panic; every result is Ok or a typed Error, and the
/// bridge keeps working.
#[test]
fn scribble_fuzz_never_breaks_the_host() {
    let _g = serial();
    let mut b = builder(hostile_lib(), &[PROBE, SCRIBBLE])
        .timeout(Duration::from_millis(500))
        .host_spin(Duration::from_millis(20))
        .load()
        .unwrap();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut next = move || rng.next_u64();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..300 {
        let len = 1 + next() % 4096;
        // The write [4096 - back, 4096 - back + len) stays in the control block.
        let back = len + next() % (4097 - len);
        let seed = next();
        let results = [
            b.call_by_name(
                "ffb_scribble",
                &[
                    Value::bytes([0u8; 32]),
                    Value::U64(back),
                    Value::U64(len),
                    Value::U64(seed),
                ],
            )
            .map(|o| o.ret),
            b.call_by_name("ffb_rlimit_cur", &[Value::I32(RLIMIT_NOFILE)])
                .map(|o| o.ret),
        ];
        for r in results {
            let key = match r {
                Ok(v) => format!("ok {v:?}"),
                Err(e) => {
                    // Every error is one of the typed kinds, with a message.
                    assert!(!e.message.is_empty());
                    e.kind_name().to_string()
                }
            };
            *kinds.entry(key).or_default() += 1;
        }
    }
    eprintln!("scribble fuzz outcomes: {kinds:?}");
    assert_eq!(kinds.values().sum::<usize>(), 600);
    b.respawn().unwrap();
    assert_eq!(probe(&mut b), Value::I64(64));
}

// ---------------------------------------------------------------------------
// the extension's output
// ---------------------------------------------------------------------------

#[test]
fn extension_output_goes_to_the_file_not_to_the_host() {
    let _g = serial();
    let path =
        std::env::temp_dir().join(format!("ffb-errors-print-fake-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut b = builder(hostile_lib(), &["ffb_print_fake() -> i32"])
        .extension_output(&path)
        .load()
        .unwrap();
    assert_eq!(
        b.call_by_name("ffb_print_fake", &[]).unwrap().ret,
        Value::I32(7)
    );
    // The helper writes into a pipe the host drains into the file (under
    // its cap, 16 MiB by default): it never holds the file itself.
    let pid = b.helper_pid().unwrap();
    let [out, err] = helper_stdio(pid);
    assert_eq!(out, err);
    assert!(out.to_string_lossy().starts_with("pipe:["), "{out:?}");
    drop(b);
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let out = "{\"ok\":true,\"ret\":999,\"out\":[]}\n";
    let err = "FFB-FAKE-STDERR policy_violation\n";
    assert_eq!(text, format!("{out}{err}{out}{err}"));

    // Without an output file the call succeeds the same way.
    let mut b = builder(hostile_lib(), &["ffb_print_fake() -> i32"])
        .load()
        .unwrap();
    assert_eq!(
        b.call_by_name("ffb_print_fake", &[]).unwrap().ret,
        Value::I32(7)
    );
    assert_eq!(
        b.call_by_name("ffb_print_fake", &[]).unwrap().ret,
        Value::I32(7)
    );
    // The helper's stdout and stderr are /dev/null, not this process's.
    let null = std::path::PathBuf::from("/dev/null");
    assert_eq!(helper_stdio(b.helper_pid().unwrap()), [null.clone(), null]);
}

/// Where a helper's fds 1 and 2 point.
fn helper_stdio(pid: i32) -> [std::path::PathBuf; 2] {
    [1, 2].map(|fd| {
        std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/fd/{fd}: {e}"))
    })
}
